//! Reads beyond the plain object API: collections and objects rendered as the controller renders them, the
//! virtual service inventory, the DNS domain list, and the data plane's runtime and metrics.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `GET /api/ipamdnsproviderprofiledomainlist`: the DNS domains of a cloud's DNS profile.
pub(super) fn domain_list(
    app: &App,
    query: &[(String, Option<String>)],
) -> Result<Response, ApiError> {
    let store = app.store.lock();
    let cloud = match param(query, "cloud_uuid") {
        Some(u) => store
            .get_any(u)
            .filter(|o| o.obj_type == "cloud")
            .map(|o| o.uuid.clone()),
        None => store
            .find_by_name("cloud", "Default-Cloud", "admin", None)
            .map(|o| o.uuid.clone()),
    }
    .ok_or_else(|| ApiError::new(404, "Cloud object not found!"))?;
    let domains = store
        .dns_domains(&cloud)
        .map(|(_, d, _)| d)
        .unwrap_or_default();
    Ok(json_resp(200, &json!({"domains": domains})))
}

/// `GET /api/virtualservice-inventory[/<uuid>]`.
pub(super) fn inventory(
    app: &App,
    host: &str,
    rest: &[&str],
    query: &[(String, Option<String>)],
    headers: &HeaderMap,
    include_name: bool,
) -> Result<Response, ApiError> {
    let store = app.store.lock();
    let sel = tenant_sel(&store, headers)?;
    let inventory = |vs: &Obj| {
        let config = select_fields(store.render(vs, host, include_name), None);
        let pools: Vec<Value> = vs
            .body
            .get("pool_ref")
            .into_iter()
            .chain(vs.body.get("pool_group_ref"))
            .filter_map(Value::as_str)
            .map(|r| json!(format!("https://{host}{r}")))
            .collect();
        json!({"uuid": vs.uuid, "url": format!("https://{host}/api/virtualservice-inventory/{}", vs.uuid),
               "config": config, "runtime": vs_runtime(app, &store, vs),
               "health_score": {"health_score": 100.0}, "pools": pools,
               "app_profile_type": "APPLICATION_PROFILE_TYPE_HTTP"})
    };
    match rest {
        [uuid] => Ok(json_resp(
            200,
            &inventory(store.get("virtualservice", uuid, &sel)?),
        )),
        [] => {
            let filters: Vec<(String, Option<String>)> = query.to_vec();
            let all = store.query("virtualservice", &sel, &filters);
            Ok(json_resp(
                200,
                &page(
                    app,
                    host,
                    "virtualservice-inventory",
                    query,
                    all.len(),
                    |r| all[r].iter().map(|o| inventory(o)).collect(),
                ),
            ))
        }
        _ => Err(ApiError::new(404, "Not found")),
    }
}

/// `GET /api/<type>`: a page of a collection.
pub(super) fn list(
    app: &App,
    host: &str,
    t: &str,
    query: &[(String, Option<String>)],
    headers: &HeaderMap,
    include_name: bool,
) -> Result<Response, ApiError> {
    type_info(t).ok_or_else(|| ApiError::new(404, "Not found"))?;
    let store = app.store.lock();
    let sel = tenant_sel(&store, headers)?;
    let all = store.query(t, &sel, query);
    Ok(json_resp(
        200,
        &page(app, host, t, query, all.len(), |r| {
            all[r]
                .iter()
                .map(|o| rendered(app, &store, o, host, include_name, query))
                .collect()
        }),
    ))
}

/// An object as a read shows it: its `fields` only when asked, a virtual service's runtime joined when asked.
fn rendered(
    app: &App,
    store: &Store,
    obj: &Obj,
    host: &str,
    include_name: bool,
    query: &[(String, Option<String>)],
) -> Value {
    let mut m = select_fields(
        render_out(store, obj, host, include_name, false),
        param(query, "fields"),
    );
    if param(query, "join_subresources") == Some("runtime") && obj.obj_type == "virtualservice" {
        m.insert("runtime".into(), vs_runtime(app, store, obj));
    }
    Value::Object(m)
}

/// `GET /api/<type>/<uuid>`.
pub(super) fn get_one(
    app: &App,
    host: &str,
    t: &str,
    uuid: &str,
    query: &[(String, Option<String>)],
    headers: &HeaderMap,
    include_name: bool,
) -> Result<Response, ApiError> {
    type_info(t).ok_or_else(|| ApiError::new(404, "Not found"))?;
    let store = app.store.lock();
    let sel = tenant_sel(&store, headers)?;
    let obj = store.get(t, uuid, &sel)?;
    Ok(json_resp(
        200,
        &rendered(app, &store, obj, host, include_name, query),
    ))
}

/// `GET /api/pool/<uuid>/runtime/detail`: the data plane's view of a pool.
pub(super) fn pool_runtime(
    app: &App,
    uuid: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let store = app.store.lock();
    let sel = tenant_sel(&store, headers)?;
    let obj = store.get("pool", uuid, &sel)?;
    let detail = app
        .dataplane
        .get()
        .and_then(|p| p.pool_runtime(&obj.uuid))
        .unwrap_or_else(|| {
            json!({"name": obj.name, "uuid": obj.uuid, "oper_status": {"state": "OPER_UNKNOWN",
                   "reason": ["the data plane is not running"]}})
        });
    Ok(json_resp(200, &json!([detail])))
}

/// `GET /api/analytics/metrics/virtualservice/<uuid>`: what the data plane counted.
pub(super) fn vs_metrics(app: &App, uuid: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let store = app.store.lock();
    let sel = tenant_sel(&store, headers)?;
    let obj = store.get("virtualservice", uuid, &sel)?;
    let plane = app
        .dataplane
        .get()
        .ok_or_else(|| ApiError::new(404, "the data plane is not running"))?;
    let rt = plane
        .vs_runtime(&obj.uuid)
        .ok_or_else(|| ApiError::new(404, "VirtualService object not found!"))?;
    Ok(json_resp(
        200,
        &json!({"entity_uuid": obj.uuid, "name": obj.name, "metrics": rt["analytics"],
                "oper_status": rt["oper_status"]}),
    ))
}
