//! The plain health port: `/healthz`, `/readyz` (the index synced), `/metrics`, and `/claims` when turned on.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The plain-HTTP router with health and metrics (and `/claims` when turned on).
pub fn health_router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    let router = if state.expose_claims {
        router.route("/claims", get(claims))
    } else {
        router.route("/claims", get(claims_off))
    };
    router.with_state(state)
}

/// Live unless the reconciler of the same process is stalled or gone.
async fn healthz(State(s): State<AppState>) -> Response {
    match s.controller.as_ref().map(|c| c.live()) {
        Some(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

async fn claims_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "/claims is off: it lists namespaces, names and hosts without authentication; start ako webhook with --expose-claims (AKO_EXPOSE_CLAIMS=true) to serve it",
    )
        .into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let sync = s.index.sync_state();
    if sync.all() {
        (StatusCode::OK, "ready").into_response()
    } else {
        let msg = format!(
            "index not synced: ingresses={} ingressclasses={} secrets={} services={}",
            sync.ingresses, sync.classes, sync.secrets, sync.services
        );
        (StatusCode::SERVICE_UNAVAILABLE, msg).into_response()
    }
}

#[derive(Debug, serde::Deserialize)]
struct ClaimsQuery {
    host: Option<String>,
    vip: Option<String>,
}

/// Who claims a host (Ingresses) or a VIP (LoadBalancer Services of ours), oldest first: under
/// fqdnReusePolicy Strict, and always for a VIP, the owner comes first.
async fn claims(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ClaimsQuery>,
) -> Response {
    match (q.host, q.vip) {
        (Some(host), None) => host_claims(&s, &host),
        (None, Some(vip)) => match vip.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => vip_claims(&s, ip),
            Err(_) => (
                StatusCode::BAD_REQUEST,
                format!("vip={vip:?} is not an IP address"),
            )
                .into_response(),
        },
        _ => (
            StatusCode::BAD_REQUEST,
            "give exactly one of ?host=NAME or ?vip=ADDRESS",
        )
            .into_response(),
    }
}

fn host_claims(s: &AppState, host: &str) -> Response {
    let host = ako_core::hosts::normalize(host);
    let cfg = s.index.config();
    let list = s.index.read(|snap| {
        let mut v: Vec<_> = snap.claims_for_host(&host).to_vec();
        v.sort_by(|a, b| a.order().cmp(&b.order()));
        v.iter()
            .map(|c| {
                let paths: Vec<String> = c
                    .hosts
                    .iter()
                    .filter(|(h, _)| *h == host)
                    .flat_map(|(_, p)| p.iter().map(|p| format!("{} ({})", p.path, p.path_type)))
                    .collect();
                serde_json::json!({
                    "ingress": c.key.to_string(),
                    "ours": snap.classes.is_ours(&c.class, &cfg),
                    "created": c.created,
                    "paths": paths,
                })
            })
            .collect::<Vec<_>>()
    });
    axum::Json(serde_json::json!({ "host": host, "claims": list })).into_response()
}

fn vip_claims(s: &AppState, ip: std::net::IpAddr) -> Response {
    let list = s.index.read(|snap| {
        let mut v: Vec<_> = snap.vip_claims(&ip).to_vec();
        v.sort_by(|a, b| a.order().cmp(&b.order()));
        v.iter()
            .map(|c| {
                serde_json::json!({
                    "service": c.key.to_string(),
                    "created": c.created,
                    "sharedVip": c.shared,
                })
            })
            .collect::<Vec<_>>()
    });
    axum::Json(serde_json::json!({ "vip": ip.to_string(), "claims": list })).into_response()
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    let count = s.index.read(|snap| snap.ingress_count());
    s.metrics.indexed_ingresses.set(count as i64);
    let encoded = s.metrics.encode_with(|out| match &s.controller {
        Some(c) => c.encode_into(out),
        None => Ok(()),
    });
    match encoded {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
