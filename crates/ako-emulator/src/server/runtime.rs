//! The runtime view of a virtual service the controller answers: its operational state, from the data plane
//! when one runs, else from whether it and its SNI parent are enabled, and its VIPs.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn oper_state(store: &Store, vs: &Obj) -> &'static str {
    let enabled = |o: &Obj| o.body.get("enabled") != Some(&Value::Bool(false));
    if !enabled(vs) {
        return "OPER_DISABLED";
    }
    if let Some(parent) = vs
        .body
        .get("vh_parent_vs_ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|u| store.get_any(u))
        && !enabled(parent)
    {
        return "OPER_DISABLED";
    }
    "OPER_UP"
}

pub(super) fn vs_runtime(app: &App, store: &Store, vs: &Obj) -> Value {
    let (state, reasons) = match app.dataplane.get().and_then(|p| p.oper_status(&vs.uuid)) {
        Some((state, reasons)) => (state, Some(reasons)),
        None => (oper_state(store, vs), None),
    };
    let vips: Vec<Value> = vs
        .body
        .get("vsvip_ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|u| store.get_any(u))
        .and_then(|v| v.body.get("vip").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|v| json!({"vip_id": v.get("vip_id").cloned().unwrap_or(json!("0")), "oper_status": {"state": state},
                         "ip_address": v.get("ip_address").cloned().unwrap_or(Value::Null)}))
        .collect();
    let reason: Vec<String> = reasons.unwrap_or_else(|| {
        vec![if state == "OPER_UP" {
            "Virtual Service is up".into()
        } else {
            "Virtual Service is disabled".into()
        }]
    });
    json!({"name": vs.name, "uuid": vs.uuid,
           "oper_status": {"state": state, "reason": reason, "reason_code_string": state,
                           "last_changed_time": {"secs": vs.body.get("_last_modified").and_then(Value::as_str)
                               .and_then(|s| s.parse::<u64>().ok()).map_or(0, |us| us / 1_000_000), "usecs": 0}},
           "vip_summary": vips, "percent_ses_up": if state == "OPER_UP" { 100 } else { 0 }})
}
