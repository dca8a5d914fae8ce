//! AKO's CustomResourceDefinitions, kept current by ako itself. Helm installs the files of the chart's `crds/`
//! directory once and never upgrades them (AKO's users were left with stale CRDs and a manual v1alpha1 ->
//! v1beta1 step). At start, ako compares each CRD on the cluster with its own copy (the same files, compiled in)
//! by the `ako.vmware.com/crd-revision` annotation and applies its copy (server-side apply, field manager `ako`)
//! where the cluster's is missing or older: a `helm upgrade`, or a move from AKO, needs no manual step. Every
//! version AKO ever served stays served (a version in a CRD's `status.storedVersions` can never be dropped).
//!
//! Without the right to (the chart grants get/create/patch on these four names only), the cluster's CRDs are
//! used as they are and a warning says so.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// The annotation carrying a CRD file's revision.
pub const REVISION: &str = "ako.vmware.com/crd-revision";

/// The chart's CRD files, compiled in.
pub const FILES: [(&str, &str); 4] = [
    (
        "hostrules.ako.vmware.com",
        include_str!("../../charts/ako/crds/ako.vmware.com_hostrules.yaml"),
    ),
    (
        "httprules.ako.vmware.com",
        include_str!("../../charts/ako/crds/ako.vmware.com_httprules.yaml"),
    ),
    (
        "aviinfrasettings.ako.vmware.com",
        include_str!("../../charts/ako/crds/ako.vmware.com_aviinfrasettings.yaml"),
    ),
    (
        "l4rules.ako.vmware.com",
        include_str!("../../charts/ako/crds/ako.vmware.com_l4rules.yaml"),
    ),
];

/// What happened to one CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Current,
    Created,
    Upgraded { from: Option<u32> },
    Failed(String),
}

fn revision(crd: &CustomResourceDefinition) -> Option<u32> {
    crd.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok())
}

/// ako's copy of each CRD.
pub fn bundled() -> Result<Vec<CustomResourceDefinition>, String> {
    FILES
        .iter()
        .map(|(name, text)| {
            serde_yaml_ng::from_str(text).map_err(|e| format!("ako's copy of CRD {name}: {e}"))
        })
        .collect()
}

/// Creates or upgrades each of AKO's CRDs that is missing or older than ako's copy; returns what happened to
/// each (by name). Never fails: a CRD that cannot be written is reported and the cluster's copy used.
pub async fn ensure(client: &Client) -> Vec<(String, Outcome)> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mine = match bundled() {
        Ok(m) => m,
        Err(e) => return vec![("(bundle)".into(), Outcome::Failed(e))],
    };
    let mut out = Vec::new();
    for crd in mine {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let want = revision(&crd);
        let outcome = match api.get_opt(&name).await {
            Err(e) => Outcome::Failed(format!("reading it: {e}")),
            Ok(Some(have)) if revision(&have) >= want => Outcome::Current,
            Ok(existing) => {
                let from = existing.as_ref().and_then(revision);
                let pp = PatchParams::apply("ako").force();
                match api.patch(&name, &pp, &Patch::Apply(&crd)).await {
                    Ok(_) if existing.is_none() => Outcome::Created,
                    Ok(_) => Outcome::Upgraded { from },
                    Err(e) => Outcome::Failed(format!("applying ako's copy: {e}")),
                }
            }
        };
        match &outcome {
            Outcome::Current => tracing::debug!(crd = %name, "CRD current"),
            Outcome::Created => tracing::info!(crd = %name, "CRD created"),
            Outcome::Upgraded { from } => {
                tracing::info!(crd = %name, from = ?from, to = ?want, "CRD upgraded to ako's copy");
            }
            Outcome::Failed(why) => {
                tracing::warn!(crd = %name, %why, "CRD left as it is on the cluster; its resources are read with what it serves");
            }
        }
        out.push((name, outcome));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_crds_serve_akos_versions_with_one_storage_version_each() {
        let crds = bundled().expect("ako's CRDs read");
        let versions: Vec<(String, Vec<(String, bool)>)> = crds
            .iter()
            .map(|c| {
                (
                    c.spec.names.kind.clone(),
                    c.spec
                        .versions
                        .iter()
                        .map(|v| (v.name.clone(), v.storage))
                        .collect(),
                )
            })
            .collect();
        let want = |kind: &str, v: &[(&str, bool)]| {
            (
                kind.to_string(),
                v.iter()
                    .map(|(n, s)| ((*n).to_string(), *s))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            versions,
            vec![
                want("HostRule", &[("v1beta1", true), ("v1alpha1", false)]),
                want("HTTPRule", &[("v1beta1", true), ("v1alpha1", false)]),
                want("AviInfraSetting", &[("v1beta1", true), ("v1alpha1", false)]),
                want("L4Rule", &[("v1alpha2", true)]),
            ]
        );
        for c in &crds {
            assert_eq!(c.spec.group, ako_core::crd::GROUP);
            assert!(
                revision(c).is_some(),
                "{:?} has a revision",
                c.metadata.name
            );
            for v in &c.spec.versions {
                assert!(v.served);
                assert!(v.subresources.as_ref().is_some_and(|s| s.status.is_some()));
            }
        }
    }
}
