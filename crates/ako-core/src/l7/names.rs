//! The names of the L7 objects: AKO's, so a cluster moving from AKO keeps its virtual services; a shard is
//! `fnv1a32(host) & (shards - 1)`.

#[allow(clippy::wildcard_imports)]
use super::*;

/// FNV-1a, 32 bits (Go's `hash/fnv` New32a, which AKO's `utils.Bkt` uses).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// AKO's shard of a host: `fnv1a32(host) & (shards - 1)`.
pub fn shard_of(host: &str, shards: u32) -> u32 {
    fnv1a32(host.as_bytes()) & shards.saturating_sub(1)
}

/// `<cluster>--Shared-L7-<n>`: a shared parent, its VsVip and its HTTPPolicySet.
pub fn shared_vs_name(cluster: &str, shard: u32) -> String {
    shared_vs_name_in(cluster, None, shard)
}

/// A shared parent of an AviInfraSetting's Ingresses: `<cluster>--Shared-L7-<infra>-<n>` (AKO's), or the global
/// one's name.
pub fn shared_vs_name_in(cluster: &str, infra: Option<&str>, shard: u32) -> String {
    avi_name(format!(
        "{cluster}--Shared-L7-{}",
        in_infra(infra, &shard.to_string())
    ))
}

/// A label of an AviInfraSetting's objects: `<infra>-<label>` (AKO puts the setting's name after the cluster's
/// in every name of its hosts), or the label alone.
pub fn in_infra(infra: Option<&str>, label: &str) -> String {
    match infra {
        Some(i) => format!("{i}-{label}"),
        None => label.to_string(),
    }
}

/// `<cluster>--<host>-L7-dedicated`: the VS, VsVip and HTTPPolicySet of a host in dedicated mode.
pub fn dedicated_vs_name(cluster: &str, host: &str) -> String {
    avi_name(format!("{cluster}--{host}{DEDICATED_SUFFIX}"))
}

/// `<cluster>--<ns>-<ing>-default-backend`: the VS, VsVip, HTTPPolicySet, pool and pool group of an Ingress of
/// only a default backend.
pub fn default_backend_vs_name(cluster: &str, namespace: &str, ingress: &str) -> String {
    avi_name(format!("{cluster}--{namespace}-{ingress}-default-backend"))
}

/// `<cluster>--Shared-L7-<n>--<host>`: a host's HTTPPolicySet on its shared parent.
pub fn parent_policy_name(cluster: &str, shard: u32, host: &str) -> String {
    parent_policy_name_in(cluster, None, shard, host)
}

/// A host's HTTPPolicySet on its shared parent of an AviInfraSetting: `<cluster>--Shared-L7-<infra>-<n>--<host>`.
pub fn parent_policy_name_in(cluster: &str, infra: Option<&str>, shard: u32, host: &str) -> String {
    avi_name(format!(
        "{cluster}--Shared-L7-{}--{host}",
        in_infra(infra, &shard.to_string())
    ))
}

/// `<cluster>--<host>`: the SNI child and the SSLKeyAndCertificate of a secure host.
pub fn sni_child_name(cluster: &str, host: &str) -> String {
    avi_name(format!("{cluster}--{host}"))
}

/// `<cluster>--<ns>-<host>`: the HTTPPolicySet of an SNI child.
pub fn sni_policy_name(cluster: &str, namespace: &str, host: &str) -> String {
    avi_name(format!("{cluster}--{namespace}-{host}"))
}

/// `<cluster>--<host>_<path>-<ns>-<ing>`: pool and pool group of an insecure route (`/` -> `_`).
pub fn insecure_pool_name(
    cluster: &str,
    host: &str,
    path: &str,
    namespace: &str,
    ingress: &str,
) -> String {
    let label = format!("{host}{path}").replace('/', "_");
    avi_name(format!("{cluster}--{label}-{namespace}-{ingress}"))
}

/// `<cluster>--<ns>-<host>_<path>-<ing>`: pool and pool group of a secure route; dedicated mode adds
/// `-L7-dedicated`.
pub fn secure_pool_name(
    cluster: &str,
    namespace: &str,
    host: &str,
    path: &str,
    ingress: &str,
    dedicated: bool,
) -> String {
    let path = path.replace('/', "_");
    let suffix = if dedicated { DEDICATED_SUFFIX } else { "" };
    avi_name(format!(
        "{cluster}--{namespace}-{host}{path}-{ingress}{suffix}"
    ))
}

/// `<cluster>--router-certs-default`: the SSLKeyAndCertificate of the default certificate.
pub fn default_cert_name(cluster: &str) -> String {
    avi_name(format!("{cluster}--{DEFAULT_CERT_SECRET}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_and_shard_table() {
        // FNV-1a 32 reference vectors, then hosts (value computed from the algorithm: start 0x811c9dc5, per byte
        // xor then multiply by 0x01000193 mod 2^32); shard = value & (n - 1).
        let vectors = [
            ("", 0x811c_9dc5_u32),
            ("a", 0xe40c_292c),
            ("foobar", 0xbf9c_f968),
        ];
        for (s, want) in vectors {
            assert_eq!(fnv1a32(s.as_bytes()), want, "{s:?}");
        }
        let hosts = [
            ("hackazon.avi.jarvis.lab", 0xc71e_0eb8_u32, 0, 0),
            ("a.avi.jarvis.lab", 0x710a_e766, 6, 2),
            ("shop.avi.jarvis.lab", 0xddc3_a3f9, 1, 1),
        ];
        for (h, hash, large, medium) in hosts {
            assert_eq!(fnv1a32(h.as_bytes()), hash, "{h}");
            assert_eq!(shard_of(h, 8), large, "{h} LARGE");
            assert_eq!(shard_of(h, 4), medium, "{h} MEDIUM");
            assert_eq!(shard_of(h, 1), 0, "{h} SMALL");
        }
        assert_eq!(ShardSize::parse("large"), Some(ShardSize::Large));
        assert_eq!(
            ShardSize::parse("DEDICATED").and_then(ShardSize::shards),
            None
        );
        assert_eq!(
            ShardSize::parse("MEDIUM").and_then(ShardSize::shards),
            Some(4)
        );
        assert_eq!(ShardSize::parse("HUGE"), None);
    }
}
