//! Objects AKO creates for features ako does not model yet, recognised by AKO's naming conventions. They carry
//! the same `created_by` (`ako-<clusterName>`) as ako's own, so a cluster taken over from AKO holds them among
//! "ako's" objects; none of ako's names can take these forms. The orphan scan never deletes them (no input of
//! ako could claim them, so "nothing wants them" proves nothing): it lists them and says why, once.

/// Why an object of cluster `cluster` follows an AKO convention ako leaves alone, or `None` for a name ako's
/// own model could produce (which the orphan scan may delete when nothing wants it).
pub fn left_alone(obj_type: &str, name: &str, cluster: &str) -> Option<&'static str> {
    if name.starts_with(&format!("ako-gw-{cluster}--")) {
        return Some(
            "a Gateway API object of AKO's gateway container; ako does not serve the Gateway API yet",
        );
    }
    let rest = name.strip_prefix(cluster)?.strip_prefix("--")?;
    // Encode(): <cluster>--<sha1 hex> under enableEVH (and the other encoded-name modes).
    if rest.len() == 40 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some("an object with AKO's encoded (EVH) name; ako does not model EVH yet");
    }
    if rest.contains("Shared-Passthrough") {
        return Some(
            "an object of AKO's passthrough virtual services; ako does not serve passthrough yet",
        );
    }
    if rest.contains("EVH") {
        return Some("an object of AKO's EVH virtual services; ako does not model EVH yet");
    }
    if let Some(after) = rest.strip_prefix("Shared-L7-") {
        // <n> or <infra>-<n> (an AviInfraSetting's parent), then nothing or --<host> (a host's policy set).
        let head = after.split("--").next().unwrap_or_default();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let shard = digits(head)
            || head
                .rsplit_once('-')
                .is_some_and(|(i, n)| !i.is_empty() && digits(n));
        return match (obj_type, shard) {
            // ako's parents: VsVip, VirtualService and its own HTTPPolicySet carry exactly this name.
            ("vsvip" | "virtualservice" | "httppolicyset", true) => None,
            (_, true) => Some(
                "AKO's pool group or DataScript of a shared parent (its host routing); ako routes with policy \
                 sets and detached it from the parent, and leaves it as AKO left it",
            ),
            (_, false) => {
                Some("an object of a shared parent named in a way neither AKO nor ako names them")
            }
        };
    }
    // A second AKO instance's parents: <cluster>--<namespace>-Shared-L7-<n>.
    if rest.contains("-Shared-L7-") {
        return Some(
            "an object of a non-primary AKO instance's shared parent; ako runs as the primary",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn akos_conventions_for_features_ako_lacks_are_left_alone_and_akos_own_names_are_not() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        // (type, name, left alone)
        let cases = [
            ("virtualservice", format!("c--{sha}"), true),
            ("pool", format!("c--{sha}"), true),
            (
                "virtualservice",
                "c--Shared-Passthrough-0".to_string(),
                true,
            ),
            ("virtualservice", "c--Shared-L7-EVH-3".to_string(), true),
            ("poolgroup", "c--Shared-L7-0".to_string(), true),
            ("vsdatascriptset", "c--Shared-L7-7".to_string(), true),
            ("poolgroup", "c--Shared-L7-infra-a-0".to_string(), true),
            ("virtualservice", "c--Shared-L7-x".to_string(), true),
            ("virtualservice", "c--team-ns-Shared-L7-0".to_string(), true),
            ("virtualservice", "ako-gw-c--gw-ns-gw".to_string(), true),
            // ako's names.
            ("virtualservice", "c--Shared-L7-0".to_string(), false),
            ("vsvip", "c--Shared-L7-7".to_string(), false),
            ("httppolicyset", "c--Shared-L7-1".to_string(), false),
            // An AviInfraSetting's parents (AKO's names, ako's objects).
            (
                "virtualservice",
                "c--Shared-L7-infra-a-0".to_string(),
                false,
            ),
            (
                "httppolicyset",
                "c--Shared-L7-blue-3--a.avi.jarvis.lab".to_string(),
                false,
            ),
            (
                "httppolicyset",
                "c--Shared-L7-1--a.avi.jarvis.lab".to_string(),
                false,
            ),
            ("virtualservice", "c--vmug-avisvc-lb".to_string(), false),
            ("pool", "c--vmug-avisvc-lb-TCP-80".to_string(), false),
            (
                "virtualservice",
                "c--shop.avi.jarvis.lab".to_string(),
                false,
            ),
            ("pool", "c--a.avi.jarvis.lab_-vmug-web".to_string(), false),
            // Another cluster's objects are not this cluster's concern here.
            ("virtualservice", format!("other--{sha}"), false),
        ];
        for (ty, name, want) in cases {
            assert_eq!(left_alone(ty, &name, "c").is_some(), want, "{ty} {name}");
        }
    }
}
