//! The keys of the configuration (the `avi-k8s-config` ConfigMap): ako's own, and every key of AKO's ConfigMap,
//! so that AKO's ConfigMap (or values rendered by AKO's chart) is accepted unchanged. A key that neither knows is
//! refused with the closest known key named (a misspelt key would otherwise be ignored silently, as AKO does). AKO
//! keys whose value asks for a feature ako does not have get a warning naming what ako does instead.

/// The keys ako reads (ConfigMap data keys; `nsSyncLabelKey`/`nsSyncLabelValue` are AKO's names of the namespace
/// selector, `nsSelectorLabelKey`/`nsSelectorLabelValue` ako's earlier ones).
pub const AKO_KEYS: &[&str] = &[
    "allowDefaultClusterName",
    "autoFQDN",
    "aviMaxRequestsPerSecond",
    "aviRequestTimeoutSeconds",
    "blockedNamespaceList",
    "cloudName",
    "clusterName",
    "controllerIP",
    "controllerVersion",
    "defaultDomain",
    "defaultIngController",
    "defaultLBController",
    "deleteConfig",
    "deletionGuardMaxObjects",
    "deletionGuardMaxPercent",
    "disableStaticRouteSync",
    "dnsDomains",
    "fqdnReusePolicy",
    "fullSyncFrequency",
    "ingressClassName",
    "legacyIngressClass",
    "logLevel",
    "nodeKey",
    "nodeValue",
    "nsSelectorLabelKey",
    "nsSelectorLabelValue",
    "nsSyncLabelKey",
    "nsSyncLabelValue",
    "releaseHeldDeletions",
    "serviceEngineGroupName",
    "serviceType",
    "shardVSSize",
    "tenantName",
    "vipNetworkList",
    "vrfName",
];

/// AKO's keys ako accepts without using them: with the values that change nothing (`None`: any value), and what
/// ako does when another value is given.
const AKO_ONLY: &[(&str, Option<&[&str]>, &str)] = &[
    ("akoCRDOperatorEnabled", None, ""),
    ("apiServerPort", None, ""),
    ("enableEvents", None, ""),
    ("enablePrometheus", None, ""),
    (
        "primaryInstance",
        Some(&["", "true"]),
        "ako runs as the only (primary) instance of its clusterName",
    ),
    ("cniPlugin", None, ""),
    ("nodeNetworkList", None, ""),
    ("ipFamily", Some(&["", "V4"]), "ako allocates IPv4 VIPs"),
    (
        "enableEVH",
        Some(&["", "false"]),
        "ako serves Ingresses with SNI virtual services, not EVH",
    ),
    (
        "layer7Only",
        Some(&["", "false"]),
        "ako also serves LoadBalancer Services",
    ),
    (
        "servicesAPI",
        Some(&["", "false"]),
        "ako does not serve the Gateway API",
    ),
    (
        "vipPerNamespace",
        Some(&["", "false"]),
        "ako shares parents across namespaces",
    ),
    (
        "noPGForSNI",
        Some(&["", "false"]),
        "ako gives every route a pool group",
    ),
    ("passthroughShardSize", None, ""),
    (
        "enableRHI",
        Some(&["", "false"]),
        "ako does not program route health injection",
    ),
    (
        "bgpPeerLabels",
        Some(&["", "[]"]),
        "ako does not program BGP peers",
    ),
    (
        "enableMCI",
        Some(&["", "false"]),
        "ako does not serve multi-cluster ingress",
    ),
    (
        "istioEnabled",
        Some(&["", "false"]),
        "ako does not integrate with Istio",
    ),
    (
        "useDefaultSecretsOnly",
        Some(&["", "false"]),
        "ako reads Secrets in every namespace it serves",
    ),
    (
        "dedicatedTenantMode",
        Some(&["", "false"]),
        "ako uses the tenant named by tenantName",
    ),
    (
        "vpcMode",
        Some(&["", "false"]),
        "ako does not support NSX VPC mode",
    ),
    (
        "nsxtT1LR",
        Some(&[""]),
        "ako does not support NSX-T clouds' tier-1 routers",
    ),
];

/// What a configuration's keys say: keys neither ako nor AKO knows (errors), and AKO keys asking for something
/// ako does not do (warnings).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyCheck {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks the keys of a configuration (ConfigMap data).
pub fn check<'a>(values: impl IntoIterator<Item = (&'a String, &'a String)>) -> KeyCheck {
    let mut out = KeyCheck::default();
    for (key, value) in values {
        if AKO_KEYS.contains(&key.as_str()) {
            continue;
        }
        match AKO_ONLY.iter().find(|(k, _, _)| k == key) {
            Some((_, Some(inert), instead)) => {
                let v = value.trim();
                if !inert.iter().any(|i| i.eq_ignore_ascii_case(v)) {
                    out.warnings.push(format!(
                        "{key}: {v:?} is AKO's setting for a feature ako does not have yet; it is ignored ({instead})"
                    ));
                }
            }
            Some((_, None, _)) => {}
            None => {
                let hint = closest(key)
                    .map(|k| format!("; did you mean {k:?}?"))
                    .unwrap_or_default();
                out.errors.push(format!(
                    "{key}: not a configuration key of ako or AKO{hint} (keys are case-sensitive)"
                ));
            }
        }
    }
    out
}

/// The known key closest to `key` (case-insensitive edit distance at most a third of its length).
fn closest(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    AKO_KEYS
        .iter()
        .copied()
        .chain(AKO_ONLY.iter().map(|(k, _, _)| *k))
        .map(|k| (distance(&lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= key.len().div_ceil(3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (keys are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(pairs: &[(&str, &str)]) -> KeyCheck {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        check(&m)
    }

    #[test]
    fn akos_configmap_keys_are_accepted_and_unknown_keys_refused_with_the_closest_known_one() {
        /// (ConfigMap data, errors, warnings, a text in them)
        type Case<'a> = (&'a [(&'a str, &'a str)], usize, usize, &'a str);
        let cases: &[Case<'_>] = &[
            // AKO's chart's ConfigMap as rendered by default: accepted, nothing to warn about.
            (
                &[
                    ("nsSyncLabelKey", ""),
                    ("enableEVH", "false"),
                    ("layer7Only", "false"),
                    ("cniPlugin", ""),
                    ("akoCRDOperatorEnabled", "true"),
                    ("apiServerPort", "8080"),
                    ("enableEvents", "true"),
                    ("ipFamily", "V4"),
                    ("clusterName", "c"),
                ],
                0,
                0,
                "",
            ),
            // A feature ako does not have: accepted with a warning.
            (&[("enableEVH", "true")], 0, 1, "SNI virtual services"),
            (&[("enableEVH", "true")], 0, 1, "EVH"),
            // Misspelt keys: refused, naming the key meant.
            (
                &[("nsSelectorLabelkey", "app")],
                1,
                0,
                "\"nsSelectorLabelKey\"",
            ),
            (&[("shardVsSize", "LARGE")], 1, 0, "\"shardVSSize\""),
            (&[("clustrName", "c")], 1, 0, "\"clusterName\""),
            (&[("somethingElse", "1")], 1, 0, "not a configuration key"),
        ];
        for (pairs, errors, warnings, text) in cases {
            let got = run(pairs);
            assert_eq!(got.errors.len(), *errors, "{pairs:?}: {got:?}");
            assert_eq!(got.warnings.len(), *warnings, "{pairs:?}: {got:?}");
            let all = [got.errors.clone(), got.warnings.clone()]
                .concat()
                .join(" ");
            assert!(all.contains(text), "{pairs:?}: {all}");
        }
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
    }
}
