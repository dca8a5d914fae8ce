//! The controller's published object schemas (vmware/alb-sdk `swagger/`, Avi API 30.2.1, Apache-2.0; copied into
//! `schema/` with its source in `schema/SOURCE`) and a validator of write bodies against them.
//!
//! The schemas are OpenAPI 2: one `definitions` map per kind, objects with `properties` and `required`, scalar
//! types with `format` (`int32`, `uint32`, `float`), and enumerations given only in the description text
//! ("Enum options - A, B, C."), which is where this module reads them from. The validator checks what the
//! controller's serializer checks: no field the kind does not have, the right JSON type, an enumeration value the
//! controller knows, integers within their format's range, and required fields present. It is used twice: ako's
//! tests validate every body ako writes ([`Mode::Strict`]), and the emulator refuses writes that do not validate
//! ([`Mode::Controller`]), so neither can drift from the real controller's contract.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The kinds whose schema is embedded: collection name, model name, schema text.
const SOURCES: &[(&str, &str, &str)] = &[
    (
        "httppolicyset",
        "HTTPPolicySet",
        include_str!("../schema/HTTPPolicySet.json"),
    ),
    (
        "l4policyset",
        "L4PolicySet",
        include_str!("../schema/L4PolicySet.json"),
    ),
    (
        "pkiprofile",
        "PKIProfile",
        include_str!("../schema/PKIProfile.json"),
    ),
    ("pool", "Pool", include_str!("../schema/Pool.json")),
    (
        "poolgroup",
        "PoolGroup",
        include_str!("../schema/PoolGroup.json"),
    ),
    (
        "sslkeyandcertificate",
        "SSLKeyAndCertificate",
        include_str!("../schema/SSLKeyAndCertificate.json"),
    ),
    (
        "virtualservice",
        "VirtualService",
        include_str!("../schema/VirtualService.json"),
    ),
    (
        "vrfcontext",
        "VrfContext",
        include_str!("../schema/VrfContext.json"),
    ),
    ("vsvip", "VsVip", include_str!("../schema/VsVip.json")),
];

/// How strictly to read a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// What the controller accepts: booleans may also be the strings `"true"`/`"false"` (a recorded controller
    /// accepted them), and read-only fields are ignored (a body read back and PUT again carries `url` and
    /// `_last_modified`).
    Controller,
    /// What ako should write: JSON types exactly, and no read-only field.
    Strict,
}

/// One reason a body does not validate: where (`services[0].port`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub reason: String,
    pub problem: Problem,
}

/// What kind of violation: the emulator words each as the controller's serializer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    UnknownField,
    ReadOnly,
    Required,
    /// Not of the JSON type the schema names (`string`, `integer`, `number`, `boolean`, `list` or `object`);
    /// `found` is what it is (`a string`, `a number`, `a boolean`, `a list`, `an object`, `null`).
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    NotAChoice,
    TooLarge {
        max: i64,
    },
    TooSmall {
        min: i64,
    },
}

impl Violation {
    /// The path as the controller's nested field errors name it: field names only, list indices dropped
    /// (`services[0].port` -> `["services", "port"]`).
    pub fn fields(&self) -> Vec<String> {
        self.path
            .split('.')
            .map(|seg| seg.split('[').next().unwrap_or(seg).to_string())
            .collect()
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

#[derive(Debug, Clone)]
enum Type {
    Str {
        choices: Option<Vec<String>>,
    },
    /// Within `min..=max` (the format's range, narrowed by "Allowed values are A-B."), or one of the special
    /// values the description names ("Special values are 0 - infinite.").
    Int {
        min: i64,
        max: i64,
        special: Vec<i64>,
    },
    Num,
    Bool,
    Array(Box<Type>),
    Ref(String),
    /// A type the schema leaves open (no `type`, no `$ref`): anything goes.
    Any,
}

#[derive(Debug, Clone)]
struct Property {
    ty: Type,
    read_only: bool,
}

#[derive(Debug, Clone, Default)]
struct Definition {
    required: Vec<String>,
    properties: BTreeMap<String, Property>,
}

/// The embedded schemas, merged (a definition shared by several kinds, such as `IpAddr`, is the same in each).
#[derive(Debug)]
pub struct Schemas {
    definitions: HashMap<String, Definition>,
    /// Collection name (`vsvip`) to model name (`VsVip`).
    kinds: BTreeMap<&'static str, &'static str>,
}

/// The schemas, parsed once.
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        Schemas::parse(SOURCES)
            .unwrap_or_else(|e| panic!("the embedded Avi schemas are malformed: {e}"))
    })
}

impl Schemas {
    fn parse(sources: &[(&'static str, &'static str, &str)]) -> Result<Self, String> {
        let mut definitions = HashMap::new();
        let mut kinds = BTreeMap::new();
        for (obj_type, model, text) in sources {
            let doc: Value = serde_json::from_str(text).map_err(|e| format!("{model}: {e}"))?;
            let defs = doc
                .get("definitions")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("{model}: no definitions"))?;
            if !defs.contains_key(*model) {
                return Err(format!("{model}: no definition of the kind itself"));
            }
            for (name, def) in defs {
                definitions
                    .entry(name.clone())
                    .or_insert(parse_definition(name, def)?);
            }
            kinds.insert(*obj_type, *model);
        }
        let schemas = Self { definitions, kinds };
        schemas.check_refs()?;
        Ok(schemas)
    }

    fn check_refs(&self) -> Result<(), String> {
        for (name, def) in &self.definitions {
            for (field, prop) in &def.properties {
                let mut ty = &prop.ty;
                while let Type::Array(inner) = ty {
                    ty = inner;
                }
                if let Type::Ref(target) = ty
                    && !self.definitions.contains_key(target)
                {
                    return Err(format!(
                        "{name}.{field} refers to {target}, which is not defined"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The collection names (`virtualservice`, ...) with a schema.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Whether `obj_type` (a collection name) has a schema here.
    pub fn knows(&self, obj_type: &str) -> bool {
        self.kinds.contains_key(obj_type)
    }

    /// The top-level fields of a kind, if it has a schema.
    pub fn fields(&self, obj_type: &str) -> Option<impl Iterator<Item = &str> + '_> {
        let model = self.kinds.get(obj_type)?;
        let def = self.definitions.get(*model)?;
        Some(def.properties.keys().map(String::as_str))
    }

    /// Validates a write body of `obj_type`; every violation found, in field order. A kind without a schema
    /// validates (the caller decides whether that is acceptable).
    pub fn validate(&self, obj_type: &str, body: &Value, mode: Mode) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some(model) = self.kinds.get(obj_type) {
            self.check(
                &Type::Ref((*model).to_string()),
                body,
                mode,
                &mut String::new(),
                &mut out,
            );
        }
        out
    }

    /// [`Schemas::validate`] of a body held as a map (the emulator's and the planner's form), without copying it.
    pub fn validate_object(
        &self,
        obj_type: &str,
        body: &Map<String, Value>,
        mode: Mode,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some(model) = self.kinds.get(obj_type)
            && let Some(def) = self.definitions.get(*model)
        {
            self.check_fields(model, def, body, mode, &mut String::new(), &mut out);
        }
        out
    }

    fn check(&self, ty: &Type, v: &Value, mode: Mode, path: &mut String, out: &mut Vec<Violation>) {
        let mut fail = |problem: Problem, reason: String| {
            out.push(Violation {
                path: if path.is_empty() {
                    "(body)".into()
                } else {
                    path.clone()
                },
                reason,
                problem,
            });
        };
        match ty {
            Type::Any => {}
            Type::Str { choices } => match v.as_str() {
                None => fail(
                    Problem::WrongType {
                        expected: "string",
                        found: kind_of(v),
                    },
                    format!("expected a string, found {}", kind_of(v)),
                ),
                Some(s) => {
                    if let Some(choices) = choices
                        && !choices.iter().any(|c| c == s)
                    {
                        fail(
                            Problem::NotAChoice,
                            format!(
                                "\"{s}\" is not a valid choice (one of {})",
                                choices.join(", ")
                            ),
                        );
                    }
                }
            },
            Type::Int { min, max, special } => match v.as_i64() {
                Some(n) if (*min..=*max).contains(&n) || special.contains(&n) => {}
                Some(n) if n < *min => fail(
                    Problem::TooSmall { min: *min },
                    format!("{n} is outside {min}..={max}"),
                ),
                Some(n) => fail(
                    Problem::TooLarge { max: *max },
                    format!("{n} is outside {min}..={max}"),
                ),
                None if v.as_u64().is_some() => fail(
                    Problem::TooLarge { max: *max },
                    format!("{v} is outside {min}..={max}"),
                ),
                None => fail(
                    Problem::WrongType {
                        expected: "integer",
                        found: kind_of(v),
                    },
                    format!("expected an integer, found {}", kind_of(v)),
                ),
            },
            Type::Num => {
                if !v.is_number() {
                    fail(
                        Problem::WrongType {
                            expected: "number",
                            found: kind_of(v),
                        },
                        format!("expected a number, found {}", kind_of(v)),
                    );
                }
            }
            Type::Bool => {
                let lenient =
                    mode == Mode::Controller && matches!(v.as_str(), Some("true" | "false"));
                if !v.is_boolean() && !lenient {
                    fail(
                        Problem::WrongType {
                            expected: "boolean",
                            found: kind_of(v),
                        },
                        format!("expected a boolean, found {}", kind_of(v)),
                    );
                }
            }
            Type::Array(item) => match v.as_array() {
                None => fail(
                    Problem::WrongType {
                        expected: "list",
                        found: kind_of(v),
                    },
                    format!("expected a list, found {}", kind_of(v)),
                ),
                Some(items) => {
                    for (i, x) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        self.check(item, x, mode, path, out);
                        path.truncate(len);
                    }
                }
            },
            Type::Ref(name) => {
                let Some(def) = self.definitions.get(name) else {
                    return;
                };
                let Some(fields) = v.as_object() else {
                    fail(
                        Problem::WrongType {
                            expected: "object",
                            found: kind_of(v),
                        },
                        format!("expected an object ({name}), found {}", kind_of(v)),
                    );
                    return;
                };
                self.check_fields(name, def, fields, mode, path, out);
            }
        }
    }

    /// The fields of an object of definition `name`: required ones present, no unknown one, each of its type.
    fn check_fields(
        &self,
        name: &str,
        def: &Definition,
        fields: &Map<String, Value>,
        mode: Mode,
        path: &mut String,
        out: &mut Vec<Violation>,
    ) {
        for req in &def.required {
            if fields.get(req).is_none_or(Value::is_null) {
                out.push(Violation {
                    path: join(path, req),
                    reason: "this field is required".into(),
                    problem: Problem::Required,
                });
            }
        }
        for (field, value) in fields {
            let Some(prop) = def.properties.get(field) else {
                out.push(Violation {
                    path: join(path, field),
                    reason: format!("{name} has no field \"{field}\""),
                    problem: Problem::UnknownField,
                });
                continue;
            };
            if prop.read_only && mode == Mode::Strict {
                out.push(Violation {
                    path: join(path, field),
                    reason: "read-only: set by the controller, not written".into(),
                    problem: Problem::ReadOnly,
                });
                continue;
            }
            if value.is_null() {
                continue;
            }
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(field);
            self.check(&prop.ty, value, mode, path, out);
            path.truncate(len);
        }
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn parse_definition(name: &str, def: &Value) -> Result<Definition, String> {
    let required = def
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut properties = BTreeMap::new();
    if let Some(props) = def.get("properties").and_then(Value::as_object) {
        for (field, p) in props {
            let ty = parse_type(p).map_err(|e| format!("{name}.{field}: {e}"))?;
            let read_only = p.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
            properties.insert(field.clone(), Property { ty, read_only });
        }
    }
    Ok(Definition {
        required,
        properties,
    })
}

fn parse_type(p: &Value) -> Result<Type, String> {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/definitions/")
            .ok_or_else(|| format!("unsupported $ref {r}"))?;
        return Ok(Type::Ref(target.to_string()));
    }
    let description = p.get("description").and_then(Value::as_str).unwrap_or("");
    Ok(match p.get("type").and_then(Value::as_str) {
        None => Type::Any,
        Some("string") => Type::Str {
            choices: enum_options(description),
        },
        Some("integer") => {
            let (min, max) = match p.get("format").and_then(Value::as_str) {
                Some("uint32") => (0, i64::from(u32::MAX)),
                Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
                Some("uint64") => (0, i64::MAX),
                _ => (i64::MIN, i64::MAX),
            };
            let (min, max) = allowed_range(description).unwrap_or((min, max));
            Type::Int {
                min,
                max,
                special: special_values(description),
            }
        }
        Some("number") => Type::Num,
        Some("boolean") => Type::Bool,
        Some("array") => {
            let items = p.get("items").ok_or("an array without items")?;
            let mut item = parse_type(items)?;
            // The enumeration of a list of strings is in the list's description.
            if let Type::Str { choices: None } = item {
                item = Type::Str {
                    choices: enum_options(description),
                };
            }
            Type::Array(Box::new(item))
        }
        Some("object") => Type::Any,
        Some(other) => return Err(format!("unsupported type {other}")),
    })
}

/// The values of "Enum options - A, B, C." in a description.
fn enum_options(description: &str) -> Option<Vec<String>> {
    let start = description.find("Enum options - ")? + "Enum options - ".len();
    let rest = &description[start..];
    let end = rest
        .find(". ")
        .or_else(|| rest.strip_suffix('.').map(str::len))
        .unwrap_or(rest.len());
    let options: Vec<String> = rest[..end]
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!options.is_empty()).then_some(options)
}

/// "Allowed values are A-B." in a description.
fn allowed_range(description: &str) -> Option<(i64, i64)> {
    let start = description.find("Allowed values are ")? + "Allowed values are ".len();
    let rest = &description[start..];
    let (a, rest) = leading_int(rest)?;
    let (b, _) = leading_int(rest.strip_prefix('-')?)?;
    (a <= b).then_some((a, b))
}

/// The numbers of "Special values are 0 - infinite, -1 - immediate." in a description.
fn special_values(description: &str) -> Vec<i64> {
    let Some(start) = description.find("Special values are ") else {
        return Vec::new();
    };
    let rest = &description[start + "Special values are ".len()..];
    let segment = rest.split(". ").next().unwrap_or(rest);
    segment
        .split(", ")
        .filter_map(|part| leading_int(part.trim_start()).map(|(n, _)| n))
        .collect()
}

/// An optionally negative integer at the start of `s`, and what follows it.
fn leading_int(s: &str) -> Option<(i64, &str)> {
    let digits_from = usize::from(s.starts_with('-'));
    let end = s[digits_from..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(s.len(), |i| i + digits_from);
    if end == digits_from {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_embedded_schema_parses_and_its_references_resolve() {
        let s = schemas();
        let kinds: Vec<_> = s.kinds().collect();
        assert_eq!(
            kinds,
            [
                "httppolicyset",
                "l4policyset",
                "pkiprofile",
                "pool",
                "poolgroup",
                "sslkeyandcertificate",
                "virtualservice",
                "vrfcontext",
                "vsvip"
            ]
        );
        assert!(
            s.fields("vsvip")
                .is_some_and(|mut f| f.any(|f| f == "markers"))
        );
        assert!(
            s.fields("vsvip")
                .is_some_and(|mut f| f.all(|f| f != "created_by"))
        );
    }

    #[test]
    fn enumerations_are_read_from_the_description() {
        let cases = [
            (
                "Foo. Enum options - V4_ONLY, V6_ONLY, V4_V6. Field introduced in 18.1.1.",
                Some(vec!["V4_ONLY", "V6_ONLY", "V4_V6"]),
            ),
            ("Enum options - HTTP, HTTPS.", Some(vec!["HTTP", "HTTPS"])),
            ("No enumeration here.", None),
        ];
        for (text, want) in cases {
            let want = want.map(|w| w.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(enum_options(text), want, "{text}");
        }
    }

    #[test]
    fn ranges_and_special_values_are_read_from_the_description() {
        type Case = (&'static str, Option<(i64, i64)>, &'static [i64]);
        let cases: &[Case] = &[
            (
                "Port. Allowed values are 1-65535. Special values are 0- use backend port in pool.",
                Some((1, 65535)),
                &[0],
            ),
            (
                "Allowed values are 1-10. Field introduced in 30.2.1.",
                Some((1, 10)),
                &[],
            ),
            (
                "Timeout. Special values are 0 - Immediate, -1 - Infinite.",
                None,
                &[0, -1],
            ),
            ("Allowed values are -1.", None, &[]),
        ];
        for (text, range, special) in cases {
            assert_eq!(allowed_range(text), *range, "{text}");
            assert_eq!(special_values(text), *special, "{text}");
        }
    }

    #[test]
    fn a_body_is_checked_for_fields_types_choices_ranges_and_required_fields() {
        let s = schemas();
        let cases: &[(&str, Value, Mode, &[&str])] = &[
            (
                "vsvip",
                json!({"name": "a", "markers": [{"key": "clustername", "values": ["c"]}]}),
                Mode::Strict,
                &[],
            ),
            (
                "vsvip",
                json!({"name": "a", "created_by": "ako-c"}),
                Mode::Controller,
                &["created_by: VsVip has no field \"created_by\""],
            ),
            (
                "vsvip",
                json!({"markers": []}),
                Mode::Controller,
                &["name: this field is required"],
            ),
            (
                "vsvip",
                json!({"name": "a", "vip": [{"vip_id": "0", "auto_allocate_ip_type": "V5"}]}),
                Mode::Strict,
                &[
                    "vip[0].auto_allocate_ip_type: \"V5\" is not a valid choice (one of V4_ONLY, V6_ONLY, V4_V6)",
                ],
            ),
            (
                "vsvip",
                json!({"name": "a", "vip": [{"vip_id": 0}]}),
                Mode::Strict,
                &["vip[0].vip_id: expected a string, found a number"],
            ),
            (
                "pool",
                json!({"name": "p", "servers": [{"ip": {"addr": "127.0.0.1", "type": "V4"}, "port": 70000}]}),
                Mode::Strict,
                &["servers[0].port: 70000 is outside 1..=65535"],
            ),
            (
                "pool",
                json!({"name": "p", "servers": [{"ip": {"addr": "127.0.0.1", "type": "V4"}, "port": 0}]}),
                Mode::Strict,
                &[],
            ),
            (
                "pool",
                json!({"name": "p", "enabled": "true"}),
                Mode::Controller,
                &[],
            ),
            (
                "pool",
                json!({"name": "p", "enabled": "true"}),
                Mode::Strict,
                &["enabled: expected a boolean, found a string"],
            ),
            (
                "pool",
                json!({"name": "p", "url": "/api/pool/x", "_last_modified": "1"}),
                Mode::Controller,
                &[],
            ),
            (
                "pool",
                json!({"name": "p", "url": "/api/pool/x"}),
                Mode::Strict,
                &["url: read-only: set by the controller, not written"],
            ),
            (
                "sslkeyandcertificate",
                json!({"name": "c"}),
                Mode::Controller,
                &["certificate: this field is required"],
            ),
            (
                "virtualservice",
                json!({"name": "v", "services": "80"}),
                Mode::Controller,
                &["services: expected a list, found a string"],
            ),
            ("network", json!({"anything": 1}), Mode::Strict, &[]),
        ];
        for (kind, body, mode, want) in cases {
            let got: Vec<String> = s
                .validate(kind, body, *mode)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, *want, "{kind} {body} {mode:?}");
        }
    }
}
