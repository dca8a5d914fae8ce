//! HTTPPolicySet request rules, evaluated as Avi defines them: the VS's `http_policies` by `index`, each set's
//! enabled rules by `index`; a rule matches when every match it carries holds; the first matching rule with a
//! switching or redirect action decides. Matches: `host_hdr` (HostHdrMatch, case-insensitive by default; the
//! Host header without its port), `path` (StringMatch on the path without the query, case-insensitive by
//! default), `vs_port`, `protocol` and `method`. A rule with a match kind the emulator does not evaluate never
//! matches and is listed in the runtime API.

use serde_json::Value;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pool(String),
    PoolGroup(String),
}

/// A redirect (HTTPRedirectAction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub https: bool,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub keep_query: bool,
    pub status: u16,
}

/// The terminal action of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Switch(Target),
    Redirect(Redirect),
    /// HTTP_SWITCHING_SELECT_LOCAL: a local response with this status.
    Local(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exists,
    NotExists,
    BeginsWith,
    EndsWith,
    Contains,
    Equals,
}

/// A string match: operation, negation, case sensitivity, values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StrMatch {
    op: Op,
    negate: bool,
    sensitive: bool,
    values: Vec<String>,
}

impl StrMatch {
    fn parse(criteria: &str, case: Option<&str>, values: Vec<String>) -> Option<Self> {
        let c = criteria.strip_prefix("HDR_").unwrap_or(criteria);
        let (op, negate) = match c {
            "EXISTS" => (Op::Exists, false),
            "DOES_NOT_EXIST" => (Op::NotExists, false),
            "BEGINS_WITH" => (Op::BeginsWith, false),
            "DOES_NOT_BEGIN_WITH" => (Op::BeginsWith, true),
            "ENDS_WITH" => (Op::EndsWith, false),
            "DOES_NOT_END_WITH" => (Op::EndsWith, true),
            "CONTAINS" => (Op::Contains, false),
            "DOES_NOT_CONTAIN" => (Op::Contains, true),
            "EQUALS" => (Op::Equals, false),
            "DOES_NOT_EQUAL" => (Op::Equals, true),
            _ => return None,
        };
        let sensitive = case == Some("SENSITIVE");
        // Values are compared lowercased when the match is case-insensitive.
        let values = if sensitive {
            values
        } else {
            values.iter().map(|v| v.to_ascii_lowercase()).collect()
        };
        Some(Self {
            op,
            negate,
            sensitive,
            values,
        })
    }

    fn holds(&self, subject: Option<&str>) -> bool {
        let Some(s) = subject else {
            return self.op == Op::NotExists;
        };
        let s: std::borrow::Cow<'_, str> = if self.sensitive {
            s.into()
        } else {
            s.to_ascii_lowercase().into()
        };
        let one = |v: &String| match self.op {
            Op::Exists => true,
            Op::NotExists => false,
            Op::BeginsWith => s.starts_with(v.as_str()),
            Op::EndsWith => s.ends_with(v.as_str()),
            Op::Contains => s.contains(v.as_str()),
            Op::Equals => *s == **v,
        };
        match self.op {
            Op::Exists => true,
            Op::NotExists => false,
            _ if self.negate => !self.values.iter().any(one),
            _ => self.values.iter().any(one),
        }
    }
}

/// One request rule, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    host: Option<StrMatch>,
    path: Option<StrMatch>,
    ports: Option<(bool, Vec<u16>)>,
    https: Option<(bool, bool)>,
    methods: Option<(bool, Vec<String>)>,
    /// Why the rule can never match, if it carries something the emulator does not evaluate.
    pub unsupported: Option<String>,
    pub action: Action,
}

/// What a request is matched on.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The Host header without its port.
    pub host: Option<&'a str>,
    /// The path, without the query.
    pub path: &'a str,
    /// The port the request arrived on (the parent's for an SNI child).
    pub port: u16,
    pub https: bool,
    pub method: &'a str,
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn uuid_of(v: Option<&Value>) -> Option<String> {
    Some(v?.as_str()?.rsplit('/').next()?.to_string())
}

fn status_of(code: Option<&str>, default: u16) -> u16 {
    code.and_then(|c| c.rsplit('_').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn parse_action(rule: &Value) -> Option<Action> {
    if let Some(r) = rule.get("redirect_action").filter(|v| v.is_object()) {
        let host = r
            .get("host")
            .and_then(|h| h.get("tokens"))
            .and_then(Value::as_array)
            .map(|tokens| {
                tokens
                    .iter()
                    .filter_map(|t| t.get("str_value").and_then(Value::as_str))
                    .collect::<String>()
            })
            .filter(|h| !h.is_empty());
        let path = r
            .get("path")
            .and_then(|h| h.get("tokens"))
            .and_then(Value::as_array)
            .map(|tokens| {
                tokens
                    .iter()
                    .filter_map(|t| t.get("str_value").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .filter(|p| !p.is_empty());
        return Some(Action::Redirect(Redirect {
            https: r.get("protocol").and_then(Value::as_str) == Some("HTTPS"),
            host,
            port: r
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok()),
            path,
            keep_query: r.get("keep_query").and_then(Value::as_bool).unwrap_or(true),
            status: status_of(r.get("status_code").and_then(Value::as_str), 302),
        }));
    }
    let s = rule.get("switching_action").filter(|v| v.is_object())?;
    match s.get("action").and_then(Value::as_str)? {
        "HTTP_SWITCHING_SELECT_POOL" => {
            Some(Action::Switch(Target::Pool(uuid_of(s.get("pool_ref"))?)))
        }
        "HTTP_SWITCHING_SELECT_POOLGROUP" => Some(Action::Switch(Target::PoolGroup(uuid_of(
            s.get("pool_group_ref"),
        )?))),
        "HTTP_SWITCHING_SELECT_LOCAL" => Some(Action::Local(status_of(
            s.get("status_code").and_then(Value::as_str),
            200,
        ))),
        _ => None,
    }
}

fn in_list(m: &Value, key: &str) -> (bool, Vec<Value>) {
    let negate = m.get("match_criteria").and_then(Value::as_str) == Some("IS_NOT_IN");
    let list = m
        .get(key)
        .map(|v| match v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
        .unwrap_or_default();
    (negate, list)
}

/// Compiles one `http_request_policy.rules[]` entry; `None` for a disabled rule or one without a terminal
/// action (header rewrites and the like do not decide where a request goes).
pub fn compile_rule(rule: &Value) -> Option<Rule> {
    if rule.get("enable").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    let action = parse_action(rule)?;
    let name = rule
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut out = Rule {
        name,
        host: None,
        path: None,
        ports: None,
        https: None,
        methods: None,
        unsupported: None,
        action,
    };
    let Some(m) = rule.get("match").and_then(Value::as_object) else {
        return Some(out);
    };
    for (key, v) in m {
        let criteria = v.get("match_criteria").and_then(Value::as_str);
        let case = v.get("match_case").and_then(Value::as_str);
        match key.as_str() {
            "host_hdr" => {
                out.host = criteria.and_then(|c| StrMatch::parse(c, case, strs(v.get("value"))));
                if out.host.is_none() {
                    out.unsupported = Some(format!("host_hdr match_criteria {criteria:?}"));
                }
            }
            "path" => {
                if v.get("string_group_refs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                {
                    out.unsupported = Some("path string_group_refs".into());
                }
                out.path = StrMatch::parse(
                    criteria.unwrap_or("CONTAINS"),
                    case,
                    strs(v.get("match_str")),
                );
                if out.path.is_none() {
                    out.unsupported = Some(format!("path match_criteria {criteria:?}"));
                }
            }
            "vs_port" => {
                let (negate, list) = in_list(v, "ports");
                let ports = list
                    .iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|p| u16::try_from(p).ok())
                    .collect();
                out.ports = Some((negate, ports));
            }
            "protocol" => {
                let (negate, list) = in_list(v, "protocols");
                let https = list.iter().any(|p| p.as_str() == Some("HTTPS"));
                out.https = Some((negate, https));
            }
            "method" => {
                let (negate, list) = in_list(v, "methods");
                let methods = list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|m| m.trim_start_matches("HTTP_METHOD_").to_string())
                    .collect();
                out.methods = Some((negate, methods));
            }
            other => out.unsupported = Some(format!("match on {other}")),
        }
    }
    Some(out)
}

impl Rule {
    /// Whether every match of the rule holds for the request.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        if self.unsupported.is_some() {
            return false;
        }
        if let Some(h) = &self.host
            && !h.holds(req.host)
        {
            return false;
        }
        if let Some(p) = &self.path
            && !p.holds(Some(req.path))
        {
            return false;
        }
        if let Some((negate, ports)) = &self.ports
            && ports.contains(&req.port) == *negate
        {
            return false;
        }
        if let Some((negate, https)) = &self.https
            && (req.https == *https) == *negate
        {
            return false;
        }
        if let Some((negate, methods)) = &self.methods
            && methods.iter().any(|m| m == req.method) == *negate
        {
            return false;
        }
        true
    }
}

/// Compiles the request rules of one HTTPPolicySet body, in `index` order.
pub fn compile_set(body: &serde_json::Map<String, Value>) -> Vec<Rule> {
    let mut rules: Vec<&Value> = body
        .get("http_request_policy")
        .and_then(|p| p.get("rules"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    rules.sort_by_key(|r| r.get("index").and_then(Value::as_i64).unwrap_or(i64::MAX));
    rules.into_iter().filter_map(compile_rule).collect()
}

/// The first matching rule's action.
pub fn decide<'r>(rules: &'r [Rule], req: &RequestView<'_>) -> Option<&'r Rule> {
    rules.iter().find(|r| r.matches(req))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(host: &'a str, path: &'a str) -> RequestView<'a> {
        RequestView {
            host: Some(host),
            path,
            port: 80,
            https: false,
            method: "GET",
        }
    }

    fn set(rules: Value) -> Vec<Rule> {
        compile_set(
            json!({"http_request_policy": {"rules": rules}})
                .as_object()
                .expect("object"),
        )
    }

    fn sw(pg: &str) -> Value {
        json!({"action": "HTTP_SWITCHING_SELECT_POOLGROUP", "pool_group_ref": format!("/api/poolgroup/{pg}")})
    }

    fn pick(rules: &[Rule], r: &RequestView<'_>) -> Option<String> {
        decide(rules, r).map(|r| r.name.clone())
    }

    #[test]
    fn equals_and_begins_with_follow_avi_and_not_kubernetes_prefix_semantics() {
        let rules = set(json!([
            {"name": "eq", "index": 0, "enable": true, "switching_action": sw("a"),
             "match": {"host_hdr": {"match_criteria": "HDR_EQUALS", "value": ["a.lab"]},
                       "path": {"match_criteria": "EQUALS", "match_case": "SENSITIVE", "match_str": ["/foo"]}}},
            {"name": "bw", "index": 1, "enable": true, "switching_action": sw("b"),
             "match": {"path": {"match_criteria": "BEGINS_WITH", "match_case": "SENSITIVE", "match_str": ["/foo"]}}},
        ]));
        assert_eq!(pick(&rules, &req("A.LAB", "/foo")).as_deref(), Some("eq"));
        // Avi's BEGINS_WITH /foo does match /foobar: the operator must write /foo/ (ako does).
        assert_eq!(
            pick(&rules, &req("a.lab", "/foobar")).as_deref(),
            Some("bw")
        );
        assert_eq!(pick(&rules, &req("a.lab", "/FOO")), None, "sensitive");
        assert_eq!(pick(&rules, &req("a.lab", "/bar")), None);
    }

    #[test]
    fn rules_run_in_index_order_and_disabled_or_actionless_rules_are_skipped() {
        let rules = set(json!([
            {"name": "late", "index": 5, "enable": true, "switching_action": sw("b")},
            {"name": "off", "index": 0, "enable": false, "switching_action": sw("a")},
            {"name": "hdr", "index": 1, "enable": true, "hdr_action": [{"action": "HTTP_ADD_HDR"}]},
            {"name": "early", "index": 2, "enable": true, "switching_action": sw("c"),
             "match": {"path": {"match_criteria": "CONTAINS", "match_str": ["X"]}}},
        ]));
        assert_eq!(
            pick(&rules, &req("h", "/ax")).as_deref(),
            Some("early"),
            "insensitive default"
        );
        assert_eq!(pick(&rules, &req("h", "/")).as_deref(), Some("late"));
    }

    #[test]
    fn port_protocol_negation_and_redirects_are_read() {
        let rules = set(json!([
            {"name": "r", "index": 0, "enable": true,
             "match": {"vs_port": {"match_criteria": "IS_IN", "ports": [80]},
                       "host_hdr": {"match_criteria": "HDR_DOES_NOT_EQUAL", "value": ["x"]}},
             "redirect_action": {"protocol": "HTTPS", "port": 443, "status_code": "HTTP_REDIRECT_STATUS_CODE_301"}},
        ]));
        let hit = decide(&rules, &req("shop", "/")).expect("redirect");
        assert_eq!(
            hit.action,
            Action::Redirect(Redirect {
                https: true,
                host: None,
                port: Some(443),
                path: None,
                keep_query: true,
                status: 301
            })
        );
        assert!(decide(&rules, &req("x", "/")).is_none());
        let mut on_443 = req("shop", "/");
        on_443.port = 443;
        assert!(decide(&rules, &on_443).is_none());
    }

    #[test]
    fn an_unevaluated_match_never_matches() {
        let rules = set(json!([
            {"name": "q", "index": 0, "enable": true, "switching_action": sw("a"),
             "match": {"query": {"match_criteria": "QUERY_MATCH_CONTAINS", "match_str": ["a"]}}},
        ]));
        assert!(rules[0].unsupported.is_some());
        assert!(decide(&rules, &req("h", "/")).is_none());
    }
}
