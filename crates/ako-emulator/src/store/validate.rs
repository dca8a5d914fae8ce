//! Field rules of the object types the operator writes, checked on every create/update after refs
//! are resolved (so a ref rule sees the canonical `/api/<type>/<uuid>`). One table per type: a rule is a
//! path (`services[].port`: `[]` walks every list entry; a missing parent skips the rule) and a check.
//!
//! Errors are 400 with the controller's field-error shape (avi-api.md §2.9, tf-provider-avi#525): the
//! message is a JSON-ish string keyed by field, nested per level, e.g.
//! `{"services":"{"port":"This field is required."}"}`. The reason texts follow the controller's
//! serializer wording where known (`This field is required.`, `"X" is not a valid choice.`, the
//! `Ensure this value is …` range texts); address and ref-target texts are the emulator's own, the
//! reference being silent on them.

use std::net::{Ipv4Addr, Ipv6Addr};

use ako_model::schema::{self, Problem};
use serde_json::{Map, Value};

use super::{ApiError, type_info};

/// What a rule checks at its path.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// Present, not null, not an empty string.
    Required,
    Str,
    /// A JSON boolean, or the strings `true`/`false` (a recorded tenant `"local": "true"` was accepted).
    Bool,
    Enum(&'static [&'static str]),
    Int {
        min: i64,
        max: i64,
    },
    /// A TCP/UDP port, 1..=65535.
    Port,
    /// `{addr, type}`: both required, `type` V4/V6/DNS, `addr` parses as that family.
    IpAddr,
    /// `{ip_addr: IpAddr, mask}`, mask within the family's width.
    IpPrefix,
    /// A ref to an object of this type.
    Ref(&'static str),
}

/// One rule: where and what.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub path: &'static str,
    pub check: Check,
}

const fn rule(path: &'static str, check: Check) -> Rule {
    Rule { path, check }
}

use Check::{Bool, Enum, Int, IpAddr, IpPrefix, Port, Ref, Required, Str};

mod rules;
use rules::IP_TYPES;
pub use rules::rules_for;

/// The first way `body` breaks the controller's published schema for `obj_type` (ako-model's copy of vmware/alb-sdk
/// swagger, API 30.2.1), worded as the controller's serializer words it: a field the kind does not have, a wrong
/// JSON type, an enumeration value or an integer the controller would refuse, a required field missing. Kinds
/// without an embedded schema pass.
fn schema_failure(obj_type: &str, body: &Map<String, Value>) -> Option<Failure> {
    let v = schema::schemas()
        .validate_object(obj_type, body, schema::Mode::Controller)
        .into_iter()
        .next()?;
    // The serializer's names of JSON types.
    let found = |kind: &str| match kind {
        "a boolean" => "bool",
        "a number" => "int",
        "a string" => "str",
        "a list" => "list",
        "an object" => "dict",
        _ => "null",
    };
    let text = match v.problem {
        Problem::Required => "This field is required.".to_string(),
        Problem::UnknownField => "Unknown field.".to_string(),
        Problem::NotAChoice => {
            let choice = v.reason.split(" (one of").next().unwrap_or(&v.reason);
            format!("{choice}.")
        }
        Problem::TooLarge { max } => format!("Ensure this value is less than or equal to {max}."),
        Problem::TooSmall { min } => {
            format!("Ensure this value is greater than or equal to {min}.")
        }
        Problem::WrongType {
            expected,
            found: kind,
        } => match expected {
            "integer" => "A valid integer is required.".to_string(),
            "number" => "A valid number is required.".to_string(),
            "string" => "Not a valid string.".to_string(),
            "boolean" => "Must be a valid boolean.".to_string(),
            "list" => format!("Expected a list of items but got type \"{}\".", found(kind)),
            _ => format!(
                "Invalid data. Expected a dictionary, but got {}.",
                found(kind)
            ),
        },
        Problem::ReadOnly => format!("{}.", v.reason),
    };
    Some((v.fields(), text))
}

/// Checks a resolved body against its type's rules; the first failure is the 400.
pub fn check(obj_type: &str, body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some((trail, reason)) = schema_failure(obj_type, body) {
        return Err(ApiError::new(400, field_error(&trail, &reason)));
    }
    for r in rules_for(obj_type) {
        let segs: Vec<&str> = r.path.split('.').collect();
        let mut trail = Vec::with_capacity(segs.len() + 2);
        walk(body, &segs, &mut trail, r.check)
            .map_err(|(trail, reason)| ApiError::new(400, field_error(&trail, &reason)))?;
    }
    Ok(())
}

type Failure = (Vec<String>, String);

fn walk(
    map: &Map<String, Value>,
    segs: &[&str],
    trail: &mut Vec<String>,
    check: Check,
) -> Result<(), Failure> {
    let Some((seg, rest)) = segs.split_first() else {
        return Ok(());
    };
    let (field, each) = match seg.strip_suffix("[]") {
        Some(f) => (f, true),
        None => (*seg, false),
    };
    trail.push(field.to_string());
    let value = map.get(field).filter(|v| !v.is_null());
    let result = match (value, each, rest.is_empty()) {
        (None, _, true) if matches!(check, Required) => Err(required(trail)),
        (None, _, _) => Ok(()),
        (Some(v), true, last) => {
            let Value::Array(items) = v else {
                return Err((
                    trail.clone(),
                    format!("Expected a list of items but got type \"{}\".", kind_of(v)),
                ));
            };
            items.iter().try_for_each(|item| match (last, item) {
                (true, item) => check_value(item, check, trail),
                (false, Value::Object(m)) => walk(m, rest, trail, check),
                (false, other) => Err(not_an_object(trail, other)),
            })
        }
        (Some(v), false, true) => check_value(v, check, trail),
        (Some(Value::Object(m)), false, false) => walk(m, rest, trail, check),
        (Some(other), false, false) => Err(not_an_object(trail, other)),
    };
    trail.pop();
    result
}

fn required(trail: &[String]) -> Failure {
    (trail.to_vec(), "This field is required.".into())
}

fn not_an_object(trail: &[String], v: &Value) -> Failure {
    (
        trail.to_vec(),
        format!(
            "Invalid data. Expected a dictionary, but got {}.",
            kind_of(v)
        ),
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The controller's nested field-error string: `{"a":"{"b":"reason"}"}`.
pub fn field_error(trail: &[String], reason: &str) -> String {
    trail.iter().rev().fold(reason.to_string(), |inner, field| {
        format!("{{\"{field}\":\"{inner}\"}}")
    })
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn check_value(v: &Value, check: Check, trail: &[String]) -> Result<(), Failure> {
    let fail = |reason: String| Err((trail.to_vec(), reason));
    match check {
        Required => match v {
            Value::String(s) if s.is_empty() => fail("This field may not be blank.".into()),
            _ => Ok(()),
        },
        Str => match v {
            Value::String(_) => Ok(()),
            _ => fail("Not a valid string.".into()),
        },
        Bool => match v {
            Value::Bool(_) => Ok(()),
            Value::String(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                Ok(())
            }
            _ => fail("Must be a valid boolean.".into()),
        },
        Enum(choices) => match v.as_str() {
            Some(s) if choices.contains(&s) => Ok(()),
            _ => fail(format!("\"{}\" is not a valid choice.", display(v))),
        },
        Int { min, max } => int_in(v, min, max).map_or(Ok(()), fail),
        Port => int_in(v, 1, 65535).map_or(Ok(()), fail),
        IpAddr => ip_addr(v).map(|_| ()).map_err(|(sub, reason)| {
            let mut t = trail.to_vec();
            t.extend(sub);
            (t, reason)
        }),
        IpPrefix => ip_prefix(v).map_err(|(sub, reason)| {
            let mut t = trail.to_vec();
            t.extend(sub);
            (t, reason)
        }),
        Ref(want) => {
            let Some(s) = v.as_str() else {
                return fail("Not a valid string.".into());
            };
            // Resolved refs are canonical `/api/<type>/<uuid>`; an empty ref means "unset".
            let got = s.strip_prefix("/api/").and_then(|r| r.split('/').next());
            match got {
                _ if s.is_empty() => Ok(()),
                Some(t) if t == want => Ok(()),
                other => {
                    let model = |t: &str| type_info(t).map_or("Object", |i| i.model);
                    fail(format!(
                        "Refers to a {} object; this field takes a {}",
                        other.map_or("non-API", model),
                        model(want)
                    ))
                }
            }
        }
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int_in(v: &Value, min: i64, max: i64) -> Option<String> {
    match as_int(v) {
        None => Some("A valid integer is required.".into()),
        Some(n) if n < min => Some(format!(
            "Ensure this value is greater than or equal to {min}."
        )),
        Some(n) if n > max => Some(format!("Ensure this value is less than or equal to {max}.")),
        Some(_) => None,
    }
}

/// Which family an address object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
    Dns,
}

type SubFailure = (Vec<String>, String);

fn sub(field: &str, reason: impl Into<String>) -> SubFailure {
    (vec![field.to_string()], reason.into())
}

/// Checks `{addr, type}`: both present, `type` known, `addr` of that family.
pub fn ip_addr(v: &Value) -> Result<Family, SubFailure> {
    let Value::Object(m) = v else {
        return Err((Vec::new(), not_an_object(&[], v).1));
    };
    let addr = match m.get("addr") {
        None | Some(Value::Null) => return Err(sub("addr", "This field is required.")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(sub("addr", "Not a valid string.")),
    };
    let family = match m.get("type").and_then(Value::as_str) {
        None if m.get("type").is_none_or(Value::is_null) => {
            return Err(sub("type", "This field is required."));
        }
        Some("V4") => Family::V4,
        Some("V6") => Family::V6,
        Some("DNS") => Family::Dns,
        _ => {
            let shown = m.get("type").map(display).unwrap_or_default();
            return Err(sub(
                "type",
                format!("\"{shown}\" is not a valid choice. Choices: {IP_TYPES:?}"),
            ));
        }
    };
    let ok = match family {
        Family::V4 => addr.parse::<Ipv4Addr>().is_ok(),
        Family::V6 => addr.parse::<Ipv6Addr>().is_ok(),
        Family::Dns => !addr.is_empty(),
    };
    if ok {
        Ok(family)
    } else {
        Err(sub(
            "addr",
            format!("{addr} is not a valid {} address", family_name(family)),
        ))
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
        Family::Dns => "DNS",
    }
}

fn ip_prefix(v: &Value) -> Result<(), SubFailure> {
    let Value::Object(m) = v else {
        return Err((Vec::new(), not_an_object(&[], v).1));
    };
    let ip = m
        .get("ip_addr")
        .filter(|v| !v.is_null())
        .ok_or_else(|| sub("ip_addr", "This field is required."))?;
    let family = ip_addr(ip).map_err(|(mut t, r)| {
        t.insert(0, "ip_addr".into());
        (t, r)
    })?;
    let mask = m
        .get("mask")
        .filter(|v| !v.is_null())
        .ok_or_else(|| sub("mask", "This field is required."))?;
    let max = if family == Family::V6 { 128 } else { 32 };
    match int_in(mask, 0, max) {
        Some(reason) => Err(sub("mask", reason)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
