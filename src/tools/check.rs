//! `ako check`: the admission rules applied offline to manifests (files or directories of YAML/JSON, multi-doc,
//! `kind: List` included), with cross-object ownership across everything given. For CI pipelines and GitOps
//! repositories. Objects without a creationTimestamp are ordered by namespace/name for ownership.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use ako_core::admission::{self, Decision};
use ako_core::config::Config;
use ako_core::index::{IngressClaims, ObjKey, ServiceEntry, Snapshot};

/// One object read from a file.
#[derive(Debug, Clone)]
pub enum Manifest {
    Ingress(Box<Ingress>),
    Service(Box<Service>),
    IngressClass(Box<IngressClass>),
    /// A HostRule or an HTTPRule.
    Rule(Box<admission::RuleReview>),
}

/// A manifest with where it came from.
#[derive(Debug, Clone)]
pub struct Located {
    pub file: PathBuf,
    pub manifest: Manifest,
}

/// What went wrong reading manifests.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: document {doc}: {message}")]
    Parse {
        path: PathBuf,
        doc: usize,
        message: String,
    },
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), CheckError> {
    let io = |source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let is_manifest = p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
            if p.is_dir() || is_manifest {
                collect_files(&p, out)?;
            }
        }
    } else {
        std::fs::metadata(path).map_err(io)?;
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn push_value(
    v: serde_json::Value,
    file: &Path,
    doc: usize,
    default_ns: &str,
    out: &mut Vec<Located>,
) -> Result<(), CheckError> {
    let kind = v
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("")
        .to_string();
    let api = v
        .get("apiVersion")
        .and_then(|k| k.as_str())
        .unwrap_or("")
        .to_string();
    let err = |e: serde_json::Error| CheckError::Parse {
        path: file.to_path_buf(),
        doc,
        message: format!("{kind}: {e}"),
    };
    let manifest = match (api.as_str(), kind.as_str()) {
        (_, "List") => {
            if let Some(items) = v.get("items").and_then(|i| i.as_array()) {
                for item in items.clone() {
                    push_value(item, file, doc, default_ns, out)?;
                }
            }
            return Ok(());
        }
        ("networking.k8s.io/v1", "Ingress") => {
            let mut ing: Ingress = serde_json::from_value(v).map_err(err)?;
            ing.metadata
                .namespace
                .get_or_insert_with(|| default_ns.to_string());
            Manifest::Ingress(Box::new(ing))
        }
        ("v1", "Service") => {
            let mut svc: Service = serde_json::from_value(v).map_err(err)?;
            svc.metadata
                .namespace
                .get_or_insert_with(|| default_ns.to_string());
            Manifest::Service(Box::new(svc))
        }
        ("networking.k8s.io/v1", "IngressClass") => {
            Manifest::IngressClass(Box::new(serde_json::from_value(v).map_err(err)?))
        }
        (api, k)
            if ako_core::crd::RuleKind::of(ako_core::crd::GROUP, k).is_some_and(|kind| {
                api.strip_prefix("ako.vmware.com/")
                    .is_some_and(|v| kind.versions().contains(&v))
            }) =>
        {
            let Some(kind) = ako_core::crd::RuleKind::of(ako_core::crd::GROUP, k) else {
                return Ok(());
            };
            let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta = v
                .get("metadata")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(err)?
                .unwrap_or_default();
            let mut key = ObjKey::of(&meta);
            if key.namespace.is_empty() {
                key.namespace = default_ns.to_string();
            }
            Manifest::Rule(Box::new(admission::RuleReview {
                kind,
                key,
                created: None,
                spec: v.get("spec").cloned().unwrap_or_default(),
            }))
        }
        _ => return Ok(()),
    };
    out.push(Located {
        file: file.to_path_buf(),
        manifest,
    });
    Ok(())
}

/// Reads every Ingress, Service and IngressClass under `paths`.
pub fn load(paths: &[PathBuf], default_ns: &str) -> Result<Vec<Located>, CheckError> {
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files)?;
    }
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| CheckError::Io {
            path: file.clone(),
            source,
        })?;
        for (doc, de) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value: serde_json::Value =
                serde::Deserialize::deserialize(de).map_err(|e| CheckError::Parse {
                    path: file.clone(),
                    doc: doc + 1,
                    message: e.to_string(),
                })?;
            if value.is_null() {
                continue;
            }
            push_value(value, &file, doc + 1, default_ns, &mut out)?;
        }
    }
    Ok(out)
}

/// One checked object.
#[derive(Debug, Clone)]
pub struct Finding {
    pub file: PathBuf,
    pub kind: &'static str,
    pub object: String,
    pub decision: Decision,
}

/// Checks all manifests together: classes, host claims and requested VIPs are taken from the whole set.
pub fn check(manifests: &[Located], cfg: &Config) -> Vec<Finding> {
    let mut snap = Snapshot::default();
    for m in manifests {
        match &m.manifest {
            Manifest::IngressClass(ic) => snap.upsert_class(ic),
            Manifest::Ingress(ing) => snap.upsert_ingress(IngressClaims::of(ing, cfg)),
            Manifest::Service(svc) => snap.upsert_service(ServiceEntry::of(svc, cfg)),
            Manifest::Rule(_) => {}
        }
    }
    // HostRules claim their FQDNs in the order given: the first one holds it.
    let mut rules: Vec<(usize, admission::RuleReview)> = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        if let Manifest::Rule(r) = &m.manifest {
            let mut r = (**r).clone();
            r.created = i64::try_from(i).ok();
            if r.kind == ako_core::crd::RuleKind::HostRule {
                let fqdn = ako_core::crd::hostrule::claimed_fqdn(&r.spec);
                snap.upsert_host_rule(
                    ako_core::index::HostRuleClaim {
                        key: r.key.clone(),
                        created: r.created,
                        rejected: false,
                    },
                    fqdn,
                );
            }
            rules.push((i, r));
        }
    }
    let mut findings = Vec::new();
    for m in manifests {
        let (kind, meta, decision) = match &m.manifest {
            Manifest::Ingress(ing) => {
                let mut d = admission::validate_ingress(ing, cfg, &snap);
                d.patch_summary = admission::mutate_ingress(ing, cfg, &snap).patch_summary;
                ("Ingress", &ing.metadata, d)
            }
            Manifest::Service(svc) => {
                let mut d = admission::validate_service(svc, cfg, &snap);
                d.patch_summary = admission::mutate_service(svc, true, cfg).patch_summary;
                ("Service", &svc.metadata, d)
            }
            Manifest::IngressClass(_) => continue,
            Manifest::Rule(r) => {
                // Offline: the controller's names are not known, so never a reason to deny.
                let r = rules
                    .iter()
                    .find(|(_, x)| x.key == r.key && x.kind == r.kind)
                    .map_or_else(|| (**r).clone(), |(_, x)| x.clone());
                let d = admission::validate_rule(&r, cfg, &snap, &|_: &str, _: &str| {
                    ako_core::crd::Lookup::Unknown
                });
                findings.push(Finding {
                    file: m.file.clone(),
                    kind: r.kind.kind(),
                    object: r.key.to_string(),
                    decision: d,
                });
                continue;
            }
        };
        let object = format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or(""),
            meta.name.as_deref().unwrap_or("")
        );
        findings.push(Finding {
            file: m.file.clone(),
            kind,
            object,
            decision,
        });
    }
    findings
}

/// Human-readable report; returns the text and whether anything would be denied.
pub fn report(findings: &[Finding]) -> (String, bool) {
    let mut out = String::new();
    let (mut denied, mut warned, mut in_scope) = (0, 0, 0);
    for f in findings {
        if !f.decision.in_scope {
            continue;
        }
        in_scope += 1;
        let at = format!("{}: {} {}", f.file.display(), f.kind, f.object);
        for r in &f.decision.reasons {
            let _ = writeln!(out, "{at}: DENIED: {r}");
        }
        for w in &f.decision.warnings {
            let _ = writeln!(out, "{at}: warning: {w}");
        }
        for p in &f.decision.patch_summary {
            let _ = writeln!(out, "{at}: would mutate: {p}");
        }
        denied += usize::from(!f.decision.allowed);
        warned += usize::from(!f.decision.warnings.is_empty());
    }
    let _ = writeln!(
        out,
        "{} objects read, {in_scope} handled by ako: {denied} would be denied, {warned} with warnings",
        findings.len()
    );
    (out, denied > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules_and_http_rules_are_checked_offline_with_the_ingresses_given() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("app.yaml"),
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: shop, namespace: a}\nspec: {ingressClassName: avi-lb, rules: [{host: shop.avi.jarvis.lab, http: {paths: [{path: /cart, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]}\n---\napiVersion: ako.vmware.com/v1beta1\nkind: HostRule\nmetadata: {name: first, namespace: a}\nspec: {virtualhost: {fqdn: shop.avi.jarvis.lab, wafPolicy: any, useRegex: true}}\n---\napiVersion: ako.vmware.com/v1alpha1\nkind: HostRule\nmetadata: {name: second, namespace: b}\nspec: {virtualhost: {fqdn: shop.avi.jarvis.lab}}\n---\napiVersion: ako.vmware.com/v1beta1\nkind: HTTPRule\nmetadata: {name: pools, namespace: a}\nspec: {fqdn: shop.avi.jarvis.lab, paths: [{target: /api}]}\n",
        )
        .expect("write");
        let cfg = Config {
            dns_domains: vec!["avi.jarvis.lab".into()],
            ..Config::default()
        };
        let manifests = load(&[dir.path().to_path_buf()], "default").expect("load");
        assert_eq!(manifests.len(), 4);
        let (text, denied) = report(&check(&manifests, &cfg));
        assert!(denied, "{text}");
        assert!(
            text.contains(
                "HostRule b/second: DENIED: duplicate fqdn shop.avi.jarvis.lab found in a/first"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "HTTPRule a/pools: DENIED: spec.paths[0].target \"/api\" selects no path"
            ),
            "{text}"
        );
        // The first HostRule names a WAF policy the offline check cannot look up: admitted, with a warning for
        // the field ako does not apply yet.
        assert!(!text.contains("HostRule a/first: DENIED"), "{text}");
        assert!(text.contains("useRegex"), "{text}");
    }

    #[test]
    fn hijack_across_files_is_found_and_other_classes_are_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: shop, namespace: a}\nspec: {ingressClassName: avi-lb, rules: [{host: shop.avi.jarvis.lab}]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("b.yml"),
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.k8s.io/v1\n  kind: Ingress\n  metadata: {name: steal, namespace: b}\n  spec: {ingressClassName: avi-lb, rules: [{host: shop.avi.jarvis.lab}]}\n- apiVersion: networking.k8s.io/v1\n  kind: Ingress\n  metadata: {name: other}\n  spec: {ingressClassName: nginx, rules: [{host: x.example.com}]}\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let cfg = Config {
            dns_domains: vec!["avi.jarvis.lab".into()],
            fqdn_reuse_policy: ako_core::config::FqdnReusePolicy::Strict,
            ..Config::default()
        };
        let manifests = load(&[dir.path().to_path_buf()], "default").expect("load");
        assert_eq!(manifests.len(), 3);
        let findings = check(&manifests, &cfg);
        let (text, denied) = report(&findings);
        assert!(denied, "{text}");
        assert!(
            text.contains("Ingress b/steal: DENIED: host \"shop.avi.jarvis.lab\""),
            "{text}"
        );
        assert!(!text.contains("default/other"), "{text}");
        assert!(
            text.contains("3 objects read, 2 handled by ako: 1 would be denied"),
            "{text}"
        );
    }

    #[test]
    fn two_services_asking_for_one_vip_across_files_are_found() {
        let dir = tempfile::tempdir().expect("tmp");
        let svc = |ns: &str, name: &str| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{type: LoadBalancer, loadBalancerIP: 10.10.18.9}}\n"
            )
        };
        std::fs::write(dir.path().join("a.yaml"), svc("a", "web")).expect("write");
        std::fs::write(dir.path().join("b.yaml"), svc("b", "web")).expect("write");
        let cfg = Config {
            dns_domains: vec!["avi.jarvis.lab".into()],
            ..Config::default()
        };
        let manifests = load(&[dir.path().to_path_buf()], "default").expect("load");
        let (text, denied) = report(&check(&manifests, &cfg));
        assert!(denied, "{text}");
        assert!(
            text.contains(
                "Service b/web: DENIED: VIP 10.10.18.9 is already requested by Service a/web"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_broken_document_names_file_and_document() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("bad.yaml");
        std::fs::write(&f, "kind: Service\napiVersion: v1\n---\nkind: Ingress\napiVersion: networking.k8s.io/v1\nspec: {rules: 5}\n")
            .expect("write");
        let e = load(&[f], "default").expect_err("bad");
        assert!(e.to_string().contains("document 2"), "{e}");
    }
}
