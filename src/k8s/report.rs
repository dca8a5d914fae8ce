//! Report: what the reconciler tells Kubernetes. `status.loadBalancer.ingress` of Services (kubectl's
//! EXTERNAL-IP) and of Ingresses (kubectl's ADDRESS), and Events on the objects (kubectl describe): Normal when a virtual service is programmed, Warning
//! for everything that cannot be, in words a user can act on. kube's event recorder aggregates repeats into a
//! series, so a failure retried every few seconds does not flood.

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, ObjectReference, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use serde_json::json;

use ako_core::index::ObjKey;

use super::observe::RuleKind;

/// One Event about a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    /// PascalCase reason, e.g. `Synced`, `InvalidHost`, `AviError`.
    pub reason: String,
    pub message: String,
}

impl Notice {
    pub fn normal(reason: &str, message: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn warning(reason: &str, message: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The kind of object a status or an Event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Service,
    Ingress,
    /// A HostRule or an HTTPRule (Events only; their status is [`Sink::rule_status`]).
    Rule(RuleKind),
}

impl Target {
    fn api_version(self) -> String {
        match self {
            Target::Service => "v1".into(),
            Target::Ingress => "networking.k8s.io/v1".into(),
            Target::Rule(k) => k.api_version(),
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Target::Service => "Service",
            Target::Ingress => "Ingress",
            Target::Rule(k) => k.kind(),
        }
    }
}

/// Where status and Events go: the API server, or a recorder in tests.
pub trait Sink: Send + Sync + 'static {
    /// Sets (or, with an empty list, removes) `status.loadBalancer.ingress` of a Service or an Ingress.
    fn status<'a>(
        &'a self,
        target: Target,
        key: &'a ObjKey,
        ingress: &'a [LoadBalancerIngress],
    ) -> BoxFut<'a, Result<(), String>>;
    /// Sets `status` (`{status, error}`, as AKO writes it) of a HostRule or an HTTPRule.
    fn rule_status<'a>(
        &'a self,
        _kind: RuleKind,
        _key: &'a ObjKey,
        _status: &'a serde_json::Value,
    ) -> BoxFut<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    /// Records an Event about ako itself (on its Pod when known, and always as a log line): environment
    /// problems, deleteConfig done.
    fn operator_event<'a>(&'a self, notice: &'a Notice) -> BoxFut<'a, ()> {
        Box::pin(async move { log_notice(notice) })
    }
    /// Records an Event on a Service or an Ingress.
    fn event<'a>(
        &'a self,
        target: Target,
        key: &'a ObjKey,
        uid: Option<&'a str>,
        notice: &'a Notice,
    ) -> BoxFut<'a, ()>;
}

fn log_notice(notice: &Notice) {
    if notice.warning {
        tracing::warn!(reason = %notice.reason, message = %notice.message, "operator event");
    } else {
        tracing::info!(reason = %notice.reason, message = %notice.message, "operator event");
    }
}

/// The API server.
pub struct KubeSink {
    client: Client,
    reporter: Reporter,
    /// Publishes Warnings. It keeps every Event it published for six minutes, so that a Warning repeated by
    /// retries becomes one Event with a growing count (a series) rather than a new Event each time.
    recorder: Recorder,
    /// ako's own Pod (`POD_NAMESPACE`/`POD_NAME`), which operator Events are about.
    pod: Option<ObjKey>,
    /// Asked before every status write and Event about a Service or Ingress: `None` (no longer leading) skips
    /// it, `Some(left)` bounds the request by the leadership's remaining time.
    fence: Option<Fence>,
}

/// See [`KubeSink::with_fence`].
pub type Fence = std::sync::Arc<dyn Fn() -> Option<std::time::Duration> + Send + Sync>;

/// The longest a status write may take.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl KubeSink {
    pub fn new(client: Client, instance: Option<String>) -> Self {
        Self::for_pod(client, instance, None)
    }

    /// Operator Events go to `pod` (namespace, name) when given.
    pub fn for_pod(client: Client, instance: Option<String>, pod: Option<ObjKey>) -> Self {
        let reporter = Reporter {
            controller: "ako".into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            client,
            pod,
            fence: None,
        }
    }

    /// Fences the writes made for reconciliation (statuses, Events on Services and Ingresses) by leadership.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// The time a write may take now; `None` when it must not be made.
    fn allowed(&self) -> Option<std::time::Duration> {
        match &self.fence {
            None => Some(STATUS_TIMEOUT),
            Some(f) => f().map(|left| left.min(STATUS_TIMEOUT)),
        }
    }

    async fn publish(&self, reference: &ObjectReference, notice: &Notice) {
        let mut note = notice.message.clone();
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = Event {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason.clone(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        // A Normal Event (Synced: one per object and change) goes through a recorder of its own that is dropped
        // after: the shared one would keep each for six minutes (about 2 KB apiece, 10,000 at a cold start) and
        // scan them all at every publication.
        let published = if reference.namespace.is_none() {
            self.publish_cluster_scoped(&event, reference).await
        } else if notice.warning {
            self.recorder.publish(&event, reference).await
        } else {
            Recorder::new(self.client.clone(), self.reporter.clone())
                .publish(&event, reference)
                .await
        };
        if let Err(error) = published {
            tracing::warn!(object = ?reference.name, %error, reason = %notice.reason, "could not record an Event");
        }
    }
}

impl KubeSink {
    /// An Event about a cluster-scoped object (an AviInfraSetting): kube's recorder would file it in `default`
    /// with the object's empty namespace, which API servers before 1.22 refuse for a new-style Event unless it is
    /// in `kube-system`; it goes there, its object keeping no namespace so `kubectl describe` finds it.
    async fn publish_cluster_scoped(
        &self,
        ev: &Event,
        reference: &ObjectReference,
    ) -> Result<(), kube::Error> {
        use k8s_openapi::api::events::v1::Event as K8sEvent;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
        let now = jiff::Timestamp::now();
        let event = K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(CLUSTER_EVENTS_NAMESPACE.into()),
                name: Some(format!(
                    "{}.{:x}",
                    reference.name.as_deref().unwrap_or("ako"),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..K8sEvent::default()
        };
        Api::<K8sEvent>::namespaced(self.client.clone(), CLUSTER_EVENTS_NAMESPACE)
            .create(&kube::api::PostParams::default(), &event)
            .await
            .map(|_| ())
    }
}

/// Where Events about cluster-scoped objects go.
const CLUSTER_EVENTS_NAMESPACE: &str = "kube-system";

fn reference(api_version: &str, kind: &str, key: &ObjKey, uid: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        // A cluster-scoped object (AviInfraSetting) has none.
        namespace: (!key.namespace.is_empty()).then(|| key.namespace.clone()),
        name: Some(key.name.clone()),
        uid: uid.map(String::from),
        ..ObjectReference::default()
    }
}

impl Sink for KubeSink {
    fn status<'a>(
        &'a self,
        target: Target,
        key: &'a ObjKey,
        ingress: &'a [LoadBalancerIngress],
    ) -> BoxFut<'a, Result<(), String>> {
        Box::pin(async move {
            let Some(left) = self.allowed() else {
                return Err("not written: this replica no longer leads".to_string());
            };
            // A merge patch: null removes the list when the object leaves ako.
            let value = if ingress.is_empty() {
                json!(null)
            } else {
                json!(ingress)
            };
            let patch = json!({"status": {"loadBalancer": {"ingress": value}}});
            let (pp, patch) = (PatchParams::default(), Patch::Merge(&patch));
            let write = async {
                match target {
                    Target::Service => {
                        Api::<Service>::namespaced(self.client.clone(), &key.namespace)
                            .patch_status(&key.name, &pp, &patch)
                            .await
                            .map(|_| ())
                    }
                    Target::Ingress => {
                        Api::<Ingress>::namespaced(self.client.clone(), &key.namespace)
                            .patch_status(&key.name, &pp, &patch)
                            .await
                            .map(|_| ())
                    }
                    Target::Rule(_) => Ok(()),
                }
            };
            match tokio::time::timeout(left, write).await {
                Ok(res) => res.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "no answer within {} ms (bounded by the lease)",
                    left.as_millis()
                )),
            }
        })
    }

    fn event<'a>(
        &'a self,
        target: Target,
        key: &'a ObjKey,
        uid: Option<&'a str>,
        notice: &'a Notice,
    ) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(left) = self.allowed() else {
                tracing::debug!(object = %key, reason = %notice.reason, "Event not recorded: this replica no longer leads");
                return;
            };
            let r = reference(&target.api_version(), target.kind(), key, uid);
            if tokio::time::timeout(left, self.publish(&r, notice))
                .await
                .is_err()
            {
                tracing::warn!(object = %key, reason = %notice.reason, "Event not recorded in time");
            }
        })
    }

    fn rule_status<'a>(
        &'a self,
        kind: RuleKind,
        key: &'a ObjKey,
        status: &'a serde_json::Value,
    ) -> BoxFut<'a, Result<(), String>> {
        Box::pin(async move {
            let Some(left) = self.allowed() else {
                return Err("not written: this replica no longer leads".to_string());
            };
            let resource = super::observe::api_resource(kind);
            let api = if kind.namespaced() {
                Api::<DynamicObject>::namespaced_with(
                    self.client.clone(),
                    &key.namespace,
                    &resource,
                )
            } else {
                Api::<DynamicObject>::all_with(self.client.clone(), &resource)
            };
            let patch = json!({"status": status});
            let (pp, patch) = (PatchParams::default(), Patch::Merge(&patch));
            let write = api.patch_status(&key.name, &pp, &patch);
            match tokio::time::timeout(left, write).await {
                Ok(res) => res.map(|_| ()).map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", left.as_millis())),
            }
        })
    }

    fn operator_event<'a>(&'a self, notice: &'a Notice) -> BoxFut<'a, ()> {
        Box::pin(async move {
            log_notice(notice);
            if let Some(pod) = &self.pod {
                self.publish(&reference("v1", "Pod", pod, None), notice)
                    .await;
            }
        })
    }
}
