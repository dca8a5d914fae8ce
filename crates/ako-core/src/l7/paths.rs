//! Kubernetes path semantics on Avi's path matches: Exact, Prefix (element-wise), ImplementationSpecific as
//! Prefix.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A Kubernetes path match, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathMatch {
    /// `Exact`: the path as written.
    Exact(String),
    /// `Prefix` / `ImplementationSpecific`: without trailing slashes; `/` matches everything.
    Prefix(String),
}

impl PathMatch {
    pub(super) fn path(&self) -> &str {
        match self {
            Self::Exact(p) | Self::Prefix(p) => p,
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Self::Exact(_) => "Exact",
            Self::Prefix(_) => "Prefix",
        }
    }

    /// Rule order: longest path first, Exact before Prefix for the same path, then by path.
    pub(super) fn order_key(&self) -> (Reverse<usize>, u8, &str) {
        let exact = u8::from(!matches!(self, Self::Exact(_)));
        (Reverse(self.path().len()), exact, self.path())
    }
}

/// Reads an Ingress path and pathType. ImplementationSpecific (and anything unknown) is Prefix; a Prefix path
/// loses its trailing slashes (`/foo/` = `/foo`), and an empty one is `/`.
pub fn path_match(path: &str, path_type: &str) -> PathMatch {
    if path_type == "Exact" {
        return PathMatch::Exact(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        });
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        PathMatch::Prefix("/".into())
    } else {
        PathMatch::Prefix(trimmed.into())
    }
}

/// The Avi path match criteria expressing a [`PathMatch`], one per policy rule (Avi has no OR within a match):
/// `None` means no path match (everything). Paths are case-sensitive, as in Kubernetes.
pub fn path_criteria(m: &PathMatch) -> Vec<Option<Value>> {
    let crit = |c: &str, s: &str| {
        Some(json!({"match_criteria": c, "match_case": "SENSITIVE", "match_str": [s]}))
    };
    match m {
        PathMatch::Exact(p) => vec![crit("EQUALS", p)],
        PathMatch::Prefix(p) if p == "/" => vec![None],
        PathMatch::Prefix(p) => vec![crit("EQUALS", p), crit("BEGINS_WITH", &format!("{p}/"))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_type_table() {
        // (path, type, normalized, criteria, requests that match, requests that do not)
        type Case<'a> = (
            &'a str,
            &'a str,
            PathMatch,
            Value,
            Vec<&'a str>,
            Vec<&'a str>,
        );
        let eq = |s: &str| json!({"match_criteria": "EQUALS", "match_case": "SENSITIVE", "match_str": [s]});
        let bw = |s: &str| json!({"match_criteria": "BEGINS_WITH", "match_case": "SENSITIVE", "match_str": [s]});
        let cases: Vec<Case<'_>> = vec![
            (
                "/foo",
                "Exact",
                PathMatch::Exact("/foo".into()),
                json!([eq("/foo")]),
                vec!["/foo"],
                vec!["/foo/", "/foo/bar", "/foobar", "/Foo"],
            ),
            (
                "/foo/",
                "Exact",
                PathMatch::Exact("/foo/".into()),
                json!([eq("/foo/")]),
                vec!["/foo/"],
                vec!["/foo", "/foo/bar"],
            ),
            (
                "/foo",
                "Prefix",
                PathMatch::Prefix("/foo".into()),
                json!([eq("/foo"), bw("/foo/")]),
                vec!["/foo", "/foo/", "/foo/bar"],
                vec!["/foobar", "/fo", "/"],
            ),
            (
                "/foo/",
                "Prefix",
                PathMatch::Prefix("/foo".into()),
                json!([eq("/foo"), bw("/foo/")]),
                vec!["/foo", "/foo/bar"],
                vec!["/foobar"],
            ),
            (
                "/foo//",
                "ImplementationSpecific",
                PathMatch::Prefix("/foo".into()),
                json!([eq("/foo"), bw("/foo/")]),
                vec!["/foo"],
                vec!["/foobar"],
            ),
            (
                "/",
                "Prefix",
                PathMatch::Prefix("/".into()),
                json!([null]),
                vec!["/", "/anything/at/all"],
                vec![],
            ),
            (
                "",
                "ImplementationSpecific",
                PathMatch::Prefix("/".into()),
                json!([null]),
                vec!["/x"],
                vec![],
            ),
            (
                "/",
                "Exact",
                PathMatch::Exact("/".into()),
                json!([eq("/")]),
                vec!["/"],
                vec!["/x"],
            ),
        ];
        for (path, ty, want, criteria, yes, no) in cases {
            let m = path_match(path, ty);
            assert_eq!(m, want, "{path} {ty}");
            let got = path_criteria(&m);
            assert_eq!(json!(got), criteria, "{path} {ty}");
            let hit = |req: &str| {
                got.iter().any(|c| match c {
                    None => true,
                    Some(c) => {
                        let s = c["match_str"][0].as_str().unwrap_or_default();
                        match c["match_criteria"].as_str() {
                            Some("EQUALS") => req == s,
                            Some("BEGINS_WITH") => req.starts_with(s),
                            _ => false,
                        }
                    }
                })
            };
            for r in yes {
                assert!(hit(r), "{path} {ty} should match {r}");
            }
            for r in no {
                assert!(!hit(r), "{path} {ty} should not match {r}");
            }
        }
    }
}
