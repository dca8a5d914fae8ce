//! `*_ref` fields: collecting them from a body and resolving every accepted form (avi-api.md §2.8) to
//! the canonical `/api/<type>/<uuid>`, with the same tenant rule for refs by uuid and by name.

use serde_json::{Map, Value};

use super::{ApiError, Store, TenantSel, type_info};
use ako_core::refs::{RefTarget, parse_ref};

pub(super) fn is_ref_key(key: &str) -> bool {
    key.ends_with("_ref") || key.ends_with("_refs")
}

pub(super) fn canonical(obj_type: &str, uuid: &str) -> String {
    format!("/api/{obj_type}/{uuid}")
}

/// Collects canonical ref uuids from a body (without copying it).
pub(super) fn collect_refs_map(map: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, v) in map {
        collect_refs(v, Some(k), out);
    }
}

/// Collects canonical ref uuids from a value.
fn collect_refs(value: &Value, key: Option<&str>, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect_refs(v, Some(k), out);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_refs(v, key, out);
            }
        }
        Value::String(s) if key.is_some_and(is_ref_key) => {
            if let Some(p) = parse_ref(s)
                && let RefTarget::Uuid(u) = p.target
            {
                out.push(u);
            }
        }
        _ => {}
    }
}

pub(super) fn uuid_of_ref(v: Option<&Value>) -> Option<String> {
    let p = parse_ref(v?.as_str()?)?;
    match p.target {
        RefTarget::Uuid(u) => Some(u),
        RefTarget::Name(_) => None,
    }
}

impl Store {
    /// Resolves one ref to `(type, uuid)`.
    pub(super) fn resolve_ref(
        &self,
        raw: &str,
        field: &str,
        tenant: &str,
        cloud: Option<&str>,
    ) -> Result<(String, String), ApiError> {
        let parsed = parse_ref(raw)
            .ok_or_else(|| ApiError::new(400, format!("Invalid reference {field}: {raw}")))?;
        match parsed.target {
            // By uuid the same tenant rule applies as by name: another tenant's object does not
            // exist from here (same answer as an unknown uuid), `admin`'s are shared.
            RefTarget::Uuid(uuid) => match self.objects.get(&uuid) {
                Some(o)
                    if parsed.obj_type.as_deref().is_none_or(|t| t == o.obj_type)
                        && TenantSel::may_refer_to(tenant, o) =>
                {
                    Ok((o.obj_type.clone(), o.uuid.clone()))
                }
                _ => {
                    let model = parsed
                        .obj_type
                        .as_deref()
                        .and_then(type_info)
                        .map_or("Object", |t| t.model);
                    Err(ApiError::new(
                        400,
                        format!("{model} object not found! ({field}: {raw})"),
                    ))
                }
            },
            RefTarget::Name(name) => {
                let obj_type = parsed.obj_type.unwrap_or_default();
                let model = type_info(&obj_type).map_or("Object", |t| t.model);
                let cloud_filter = if type_info(&obj_type).is_some_and(|t| t.cloud_scoped) {
                    cloud
                } else {
                    None
                };
                match self.find_by_name(&obj_type, &name, tenant, cloud_filter) {
                    Some(o) => Ok((o.obj_type.clone(), o.uuid.clone())),
                    None => Err(ApiError::new(
                        400,
                        format!("{model} object not found! ({field}: {raw})"),
                    )),
                }
            }
        }
    }

    /// Rewrites every ref in `value` to canonical form.
    pub(super) fn resolve_all(
        &self,
        value: &mut Value,
        key: Option<&str>,
        tenant: &str,
        cloud: Option<&str>,
    ) -> Result<(), ApiError> {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.resolve_all(v, Some(k), tenant, cloud)?;
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.resolve_all(v, key, tenant, cloud)?;
                }
            }
            Value::String(s) => {
                if let Some(field) = key.filter(|k| is_ref_key(k))
                    && !s.is_empty()
                {
                    let (t, u) = self.resolve_ref(s, field, tenant, cloud)?;
                    *s = canonical(&t, &u);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Canonicalises the refs of a PATCH payload so list-entry matching compares like with like.
    pub fn resolve_patch_payload(
        &self,
        fields: &mut Value,
        tenant: &str,
        cloud: Option<&str>,
    ) -> Result<(), ApiError> {
        self.resolve_all(fields, None, tenant, cloud)
    }
}
