//! Writes: bodies parsed, validated and stored, persisted through the journal before they are answered.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Journals a change; a failure answers 500 and leaves the emulator refusing further writes.
pub(super) async fn persist(app: &App, ack: Option<crate::journal::Ack>) -> Result<(), ApiError> {
    let Some(ack) = ack else { return Ok(()) };
    match ack.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ApiError::new(500, format!("persistence failure: {e}"))),
        Err(_) => Err(ApiError::new(500, "persistence failure: journal closed")),
    }
    .inspect_err(
        |e| tracing::error!(error = %e.message, version = %app.version, "write not persisted"),
    )
}

pub(super) fn submit(
    app: &App,
    record: RecordRef<'_>,
) -> Result<Option<crate::journal::Ack>, ApiError> {
    match &*app.journal.lock() {
        Some(j) if j.has_failed() => {
            Err(ApiError::new(500, "persistence failure: journal is broken"))
        }
        Some(j) => Ok(Some(j.submit_ref(record))),
        None => Ok(None),
    }
}

pub(super) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(400, "JSON parse error - expected an object")),
        Err(e) => Err(ApiError::new(400, format!("JSON parse error - {e}"))),
    }
}

pub(super) async fn write(
    app: &App,
    ctx: &Ctx,
    method: &Method,
    t: &str,
    uuid: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let info = type_info(t).ok_or_else(|| ApiError::new(404, "Not found"))?;
    let input = parse_body(body)?;
    let host = ctx.host.as_str();
    let (status, out, ack) = {
        let mut store = app.store.lock();
        let sel = tenant_sel(&store, headers)?;
        sel.write_tenant()?;
        let (uuid, existing, body) = match (method, uuid) {
            (&Method::POST, None) => {
                let slug = headers
                    .get("slug")
                    .and_then(|v| v.to_str().ok())
                    .filter(|s| !s.is_empty());
                let uuid = match slug {
                    Some(s) if store.get_any(s).is_some() => {
                        return Err(ApiError::new(
                            409,
                            format!("{} with this Uuid already exists.", info.verbose),
                        ));
                    }
                    Some(s) => s.to_string(),
                    None => format!("{t}-{}", uuid::Uuid::new_v4()),
                };
                (uuid, None, input)
            }
            (_, Some(uuid)) => {
                let existing = if t == "systemconfiguration" {
                    store.get_any(uuid).cloned().ok_or_else(|| {
                        ApiError::new(404, "SystemConfiguration object not found!")
                    })?
                } else {
                    store.get(t, uuid, &sel)?.clone()
                };
                let body = if *method == Method::PATCH {
                    patched(&store, &existing, input)?
                } else {
                    // Optimistic concurrency: a PUT carrying a stale `_last_modified` is refused with 412.
                    if let (Some(sent), Some(current)) = (
                        input.get("_last_modified"),
                        existing.body.get("_last_modified"),
                    ) && sent != current
                    {
                        return Err(ApiError::new(
                            412,
                            format!("Need to reload object data {}: it was modified", info.model),
                        ));
                    }
                    if t == "systemconfiguration" {
                        // The singleton takes partial updates: given top-level fields replace, others stay.
                        let mut b = existing.body.clone();
                        b.extend(input);
                        b
                    } else {
                        input
                    }
                };
                (uuid.to_string(), Some(existing), body)
            }
            _ => return Err(ApiError::new(405, "Method not allowed")),
        };
        let obj = store.prepare(t, body, &uuid, &sel, existing.as_ref())?;
        store.commit(obj);
        let stored = store
            .get_any(&uuid)
            .ok_or_else(|| ApiError::new(500, "internal: the committed object is missing"))?;
        // Journaled from the stored body by reference: serialized once, straight into the line.
        let ack = submit(app, RecordRef::Put { t, o: &stored.body })?;
        let out = render_out(&store, stored, host, true, true);
        (
            if existing.is_none() { 201 } else { 200 },
            (out, stored.name.clone(), uuid),
            ack,
        )
    };
    persist(app, ack).await?;
    let (out, name, uuid) = out;
    let mut resp = json_resp(status, &Value::Object(out));
    if status == 201
        && let Ok(v) = HeaderValue::from_str(&format!("https://{host}/api/{t}/{uuid}#{name}"))
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub(super) fn patched(
    store: &Store,
    existing: &Obj,
    input: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let mut body = existing.body.clone();
    if let Some(ops) = input.get("json_patch") {
        let patch: json_patch::Patch = serde_json::from_value(ops.clone())
            .map_err(|e| ApiError::new(400, format!("Invalid json_patch: {e}")))?;
        let mut doc = Value::Object(body);
        json_patch::patch(&mut doc, &patch)
            .map_err(|e| ApiError::new(400, format!("json_patch failed: {e}")))?;
        return match doc {
            Value::Object(m) => Ok(m),
            _ => Err(ApiError::new(400, "json_patch must leave an object")),
        };
    }
    if input.is_empty() {
        return Err(ApiError::new(
            400,
            "PATCH needs one of add, replace, delete or json_patch",
        ));
    }
    for (op, fields) in input {
        if !matches!(op.as_str(), "add" | "replace" | "delete") {
            return Err(ApiError::new(
                400,
                format!("Unsupported PATCH operation {op}"),
            ));
        }
        let mut fields = fields;
        store.resolve_patch_payload(&mut fields, &existing.tenant, existing.cloud.as_deref())?;
        let Value::Object(fields) = fields else {
            return Err(ApiError::new(400, format!("PATCH {op} needs an object")));
        };
        apply_patch(&mut body, &op, &fields)?;
    }
    Ok(body)
}
