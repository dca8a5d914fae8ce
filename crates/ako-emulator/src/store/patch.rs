//! Classic PATCH semantics (`add` / `replace` / `delete`, depth 1; avi-api.md §2.6).

use serde_json::{Map, Value};

use super::ApiError;

/// Applies a classic PATCH (`add`/`replace`/`delete`, depth 1) to a body whose refs are canonical.
/// Scalars: `add`/`replace` set, `delete` removes the field. Lists: `add` appends, `replace` replaces,
/// `delete` removes every entry that matches all the fields given in a patch entry.
pub fn apply_patch(
    body: &mut Map<String, Value>,
    op: &str,
    fields: &Map<String, Value>,
) -> Result<(), ApiError> {
    for (key, value) in fields {
        match (op, body.get_mut(key), value) {
            ("add", Some(Value::Array(existing)), Value::Array(new)) => {
                existing.extend(new.iter().cloned())
            }
            ("add" | "replace", _, v) => {
                body.insert(key.clone(), v.clone());
            }
            ("delete", Some(Value::Array(existing)), Value::Array(remove)) => {
                existing.retain(|e| !remove.iter().any(|r| subset_matches(r, e)));
            }
            ("delete", Some(_), _) => {
                body.remove(key);
            }
            ("delete", None, _) => {}
            (other, _, _) => {
                return Err(ApiError::new(
                    400,
                    format!("Unsupported PATCH operation {other}"),
                ));
            }
        }
    }
    Ok(())
}

/// `pattern` matches `value` when every field of `pattern` is present and matching in `value`.
pub fn subset_matches(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Object(p), Value::Object(v)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| subset_matches(pv, vv))),
        _ => pattern == value,
    }
}
