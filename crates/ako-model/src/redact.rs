//! Redaction for `Debug` output: secrets (private keys, passwords, tokens, CSRF tokens, session ids and
//! cookies) never reach logs through a `{:?}`.

use std::fmt;

use http::header::{HeaderMap, HeaderName};
use serde_json::{Map, Value};

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Headers whose values are credentials: cookies, CSRF tokens, authorization.
pub fn is_sensitive_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "set-cookie" | "cookie" | "authorization" | "proxy-authorization" | "x-csrftoken"
    )
}

/// JSON keys whose values are secrets (a certificate's `key`, passwords, tokens, session ids).
pub fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "key" | "private_key" | "csrftoken" | "sessionid" | "avi-sessionid" | "authorization"
    ) || ["password", "passphrase", "token", "secret"]
        .iter()
        .any(|s| key.contains(s))
}

/// A copy of `value` with the values of sensitive keys replaced, at every depth.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(redact_map(map)),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        other => other.clone(),
    }
}

/// [`redact_json`] of an object's fields.
pub fn redact_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = if is_sensitive_key(k) && !v.is_null() {
                Value::String(REDACTED.into())
            } else {
                redact_json(v)
            };
            (k.clone(), v)
        })
        .collect()
}

/// `Debug` of a header map with credential headers redacted.
pub struct Headers<'a>(pub &'a HeaderMap);

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            let shown = if is_sensitive_header(name) || value.is_sensitive() {
                REDACTED
            } else {
                value.to_str().unwrap_or("<binary>")
            };
            map.entry(&name.as_str(), &shown);
        }
        map.finish()
    }
}

/// `Debug` of a response body: JSON with sensitive keys redacted; anything else only by size.
pub struct Body<'a>(pub &'a [u8]);

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<empty>");
        }
        match serde_json::from_slice::<Value>(self.0) {
            Ok(value) => write!(f, "{}", redact_json(&value)),
            Err(_) => write!(f, "<{} bytes, not JSON>", self.0.len()),
        }
    }
}

/// `Debug` of an object's unknown fields with sensitive keys redacted.
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_map(self.0), f)
    }
}

/// `Debug` of an optional secret: whether it is set, never its value.
pub struct Opt<'a, T>(pub &'a Option<T>);

impl<T> fmt::Debug for Opt<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => write!(f, "Some({REDACTED})"),
            None => f.write_str("None"),
        }
    }
}
