//! Parsing and building `*_ref` strings in all the forms of avi-api.md §2.8.

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefTarget {
    Uuid(String),
    Name(String),
}

/// A parsed reference: the object type when the ref names one, and the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRef {
    pub obj_type: Option<String>,
    pub target: RefTarget,
    /// The `#name` suffix of a uuid ref, if present.
    pub name_hint: Option<String>,
}

/// Parses `https://host/api/t/uuid#name`, `/api/t/uuid`, `//api/t/uuid/`, `/api/t?name=n`, `/api/t/?name=n`,
/// `api/t/uuid` and a bare uuid. Returns `None` for strings that are none of these.
pub fn parse_ref(raw: &str) -> Option<ParsedRef> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let (body, fragment) = match raw.split_once('#') {
        Some((b, f)) => (b, Some(f.to_string()).filter(|f| !f.is_empty())),
        None => (raw, None),
    };
    // Strip scheme and authority of an absolute URL.
    let path_and_query = match body.find("://") {
        Some(i) => {
            let rest = &body[i + 3..];
            match rest.find('/') {
                Some(j) => &rest[j..],
                None => return None,
            }
        }
        None => body,
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["api", obj_type, rest @ ..] => {
            let obj_type = (*obj_type).to_string();
            if let Some(uuid) = rest.first() {
                return Some(ParsedRef {
                    obj_type: Some(obj_type),
                    target: RefTarget::Uuid((*uuid).to_string()),
                    name_hint: fragment,
                });
            }
            let name = query.and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "name")
                    .map(|(_, v)| v.into_owned())
            })?;
            Some(ParsedRef {
                obj_type: Some(obj_type),
                target: RefTarget::Name(name),
                name_hint: None,
            })
        }
        [uuid] if query.is_none() && !path.contains('/') => {
            // Bare uuid: `<type>-<uuid4>`; the type is the prefix when it has that shape.
            let obj_type = uuid_type_prefix(uuid).map(str::to_string);
            Some(ParsedRef {
                obj_type,
                target: RefTarget::Uuid((*uuid).to_string()),
                name_hint: fragment,
            })
        }
        _ => None,
    }
}

/// The object-type prefix of a controller uuid (`pool-6426…` → `pool`), if it has one.
pub fn uuid_type_prefix(uuid: &str) -> Option<&str> {
    let (prefix, rest) = uuid.split_once('-')?;
    (!prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase()) && !rest.is_empty())
        .then_some(prefix)
}

/// The uuid a ref points at (last path segment, `#name` removed), when it is a uuid ref.
pub fn ref_uuid(raw: &str) -> Option<String> {
    match parse_ref(raw)?.target {
        RefTarget::Uuid(u) => Some(u),
        RefTarget::Name(_) => None,
    }
}

/// The name carried by a ref: the `#name` suffix, or the `?name=` query.
pub fn ref_name(raw: &str) -> Option<String> {
    let parsed = parse_ref(raw)?;
    match parsed.target {
        RefTarget::Name(n) => Some(n),
        RefTarget::Uuid(_) => parsed.name_hint,
    }
}

/// A by-name ref as AKO sends it: `/api/<type>/?name=<name>`.
pub fn name_ref(obj_type: &str, name: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/api/{obj_type}/?name={encoded}")
}

/// A by-uuid ref: `/api/<type>/<uuid>`.
pub fn uuid_ref(obj_type: &str, uuid: &str) -> String {
    format!("/api/{obj_type}/{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(t: Option<&str>, u: &str, hint: Option<&str>) -> Option<ParsedRef> {
        Some(ParsedRef {
            obj_type: t.map(str::to_string),
            target: RefTarget::Uuid(u.to_string()),
            name_hint: hint.map(str::to_string),
        })
    }
    fn name(t: &str, n: &str) -> Option<ParsedRef> {
        Some(ParsedRef {
            obj_type: Some(t.to_string()),
            target: RefTarget::Name(n.to_string()),
            name_hint: None,
        })
    }

    #[test]
    fn parse_ref_accepts_every_documented_form() {
        let cases: Vec<(&str, Option<ParsedRef>)> = vec![
            (
                "https://avi-controller/api/vsvip/vsvip-d870#basic_vs_vip",
                uuid(Some("vsvip"), "vsvip-d870", Some("basic_vs_vip")),
            ),
            (
                "https://10.52.2.174:9443/api/pool/pool-11a3",
                uuid(Some("pool"), "pool-11a3", None),
            ),
            (
                "/api/network/dvportgroup-1356-cloud-2b1f",
                uuid(Some("network"), "dvportgroup-1356-cloud-2b1f", None),
            ),
            ("//api/vsvip/vsvip-1/", uuid(Some("vsvip"), "vsvip-1", None)),
            ("api/tenant/admin", uuid(Some("tenant"), "admin", None)),
            (
                "/api/cloud?name=Default-Cloud",
                name("cloud", "Default-Cloud"),
            ),
            ("/api/tenant/?name=admin", name("tenant", "admin")),
            (
                "/api/applicationprofile/?name=System%2DHTTP",
                name("applicationprofile", "System-HTTP"),
            ),
            ("/api/pool/?include_name&name=a+b", name("pool", "a b")),
            ("vsvip-0f3e", uuid(Some("vsvip"), "vsvip-0f3e", None)),
            ("admin", uuid(None, "admin", None)),
            ("/api/pool/", None),
            ("", None),
            ("https://host", None),
            ("/other/pool/x", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_ref(raw), want, "{raw}");
        }
    }

    #[test]
    fn ref_name_and_uuid_split_the_forms() {
        let cases = [
            ("https://h/api/pool/pool-1#p1", Some("pool-1"), Some("p1")),
            ("/api/pool/?name=p2", None, Some("p2")),
            ("https://h/api/pool/pool-3", Some("pool-3"), None),
        ];
        for (raw, want_uuid, want_name) in cases {
            assert_eq!(ref_uuid(raw).as_deref(), want_uuid, "{raw}");
            assert_eq!(ref_name(raw).as_deref(), want_name, "{raw}");
        }
    }

    #[test]
    fn built_refs_parse_back() {
        assert_eq!(parse_ref(&name_ref("pool", "a b&c")), name("pool", "a b&c"));
        assert_eq!(
            parse_ref(&uuid_ref("pool", "pool-1")),
            uuid(Some("pool"), "pool-1", None)
        );
    }
}
