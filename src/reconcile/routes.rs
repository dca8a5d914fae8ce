//! ClusterIP mode's static routes on the VRF (see [`ako_core::routes`]): synced after the Nodes change, in every
//! full sync, and again with backoff after a failure. Only the leader writes; routes are removed only when every
//! Node was read.

#[allow(clippy::wildcard_imports)]
use super::*;

use ako_avi::PatchOp;
use ako_avi::models::VrfContext;
use ako_core::routes;

/// Retry delays after a failed sync: doubling from 2 s up to a minute.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the worker keeps about the routes between syncs.
#[derive(Debug, Default)]
pub(super) struct RouteState {
    /// When to try again after a failure, and the delay that led there.
    pub(super) retry: Option<(Instant, Duration)>,
    /// The reasons last reported for Nodes without a route (reported when they change).
    pub(super) reported: Vec<String>,
    /// The last sync wrote nothing and found nothing missing.
    pub(super) converged: bool,
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// Whether ako syncs static routes: ClusterIP members, and `disableStaticRouteSync` not set.
    pub(super) fn syncs_routes(&self) -> bool {
        self.settings.static_routes
            && matches!(
                self.settings.placement.member_mode,
                l4::MemberMode::ClusterIp
            )
    }

    /// Brings the VRF's routes of this cluster in line with the Nodes' pod CIDRs.
    #[tracing::instrument(name = "static_routes", skip_all, fields(vrf = %self.settings.placement.vrf))]
    pub(super) async fn sync_routes(&self, state: &mut State) {
        if !self.syncs_routes() || !(self.fence)() {
            return;
        }
        let nodes = self.view.nodes();
        let (want, why) = routes::desired(&nodes);
        if why != state.routes.reported {
            for w in why.iter().filter(|w| !state.routes.reported.contains(w)) {
                tracing::warn!("{w}");
            }
            state.routes.reported = why;
        }
        match self.write_routes(&want).await {
            Ok((added, deleted)) => {
                if added + deleted > 0 {
                    tracing::info!(added, deleted, routes = want.len(), "static routes synced");
                }
                state.routes.retry = None;
                state.routes.converged = true;
            }
            Err(error) => {
                let delay = state
                    .routes
                    .retry
                    .map_or(RETRY_FIRST, |(_, d)| (d * 2).min(RETRY_MAX));
                state.routes.retry = Some((Instant::now() + delay, delay));
                state.routes.converged = false;
                tracing::warn!(%error, retry_in_s = delay.as_secs(), "static routes not synced");
                self.sink
                    .operator_event(&Notice::warning(
                        "StaticRoutesNotSynced",
                        format!(
                            "the static routes to the pods (VRF {}) could not be written: {}; ako retries in {} s \
                             (pods are unreachable from the Service Engines until then)",
                            self.settings.placement.vrf,
                            cap_text(&error.to_string(), 300),
                            delay.as_secs()
                        ),
                    ))
                    .await;
            }
        }
    }

    /// Reads the VRF and writes what differs: PATCH add, then PATCH delete. Returns (added, deleted).
    async fn write_routes(&self, want: &[routes::Route]) -> Result<(usize, usize), AviError> {
        let vrf_name = &self.settings.placement.vrf;
        let Some(vrf) = self.avi.get_by_name::<VrfContext>(vrf_name).await? else {
            return Err(AviError::Status {
                method: "GET".into(),
                path: format!("/api/vrfcontext?name={vrf_name}"),
                status: 404,
                message: format!("VRF context {vrf_name:?} does not exist"),
                retry_after: None,
            });
        };
        let uuid = vrf.uuid.clone().unwrap_or_default();
        let existing = vrf.static_routes.clone().unwrap_or_default();
        let plan = routes::plan(
            &self.cfg.cluster_name,
            want,
            &existing,
            self.view.complete(),
        );
        if plan.is_empty() {
            return Ok((0, 0));
        }
        if !(self.fence)() {
            return Ok((0, 0));
        }
        let (added, deleted) = (plan.add.len(), plan.delete.len());
        if !plan.add.is_empty() {
            self.avi
                .patch::<VrfContext>(
                    &uuid,
                    PatchOp::Add,
                    serde_json::json!({"static_routes": plan.add}),
                )
                .await?;
        }
        if !plan.delete.is_empty() {
            let ids: Vec<serde_json::Value> = plan
                .delete
                .iter()
                .map(|id| serde_json::json!({"route_id": id}))
                .collect();
            self.avi
                .patch::<VrfContext>(
                    &uuid,
                    PatchOp::Delete,
                    serde_json::json!({"static_routes": ids}),
                )
                .await?;
        }
        Ok((added, deleted))
    }
}
