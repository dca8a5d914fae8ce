//! What the reconciler tests share: a recording sink standing in for the API server, the lab's configuration and
//! placement, the seed's demo Service, and a running reconciler against the embedded emulator with helpers to wait
//! for its progress.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ako::avi::{AviClient, ListQuery};
use ako::core::config::Config;
use ako::core::index::ObjKey;
use ako::core::l4::{EndpointAddress, EndpointGroup, MemberMode, Placement};
use ako::core::l7::TlsPair;
use ako::emulator::EmulatorHandle;
use ako::k8s::observe::{Change, RuleKind, View};
use ako::k8s::report::{Notice, Sink, Target};
use ako::reconcile::{Progress, Reconciler, Settings};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::avi_support;

pub const OWNER: &str = "ako-veba-of";

/// Records what the reconciler tells Kubernetes.
#[derive(Default)]
pub struct Recorder {
    pub status: Mutex<Vec<(ObjKey, Vec<LoadBalancerIngress>)>>,
    pub events: Mutex<Vec<(ObjKey, Notice)>>,
    pub ingress_status: Mutex<Vec<(ObjKey, Vec<LoadBalancerIngress>)>>,
    pub ingress_events: Mutex<Vec<(ObjKey, Notice)>>,
    pub rule_events: Mutex<Vec<(ObjKey, Notice)>>,
    /// HostRule/HTTPRule statuses written: (kind, key, status).
    pub rule_statuses: Mutex<Vec<(RuleKind, ObjKey, serde_json::Value)>>,
    /// Events about ako itself (on its Pod).
    pub operator: Mutex<Vec<Notice>>,
    /// Status written back into the view, as the API server would.
    pub view: Mutex<Option<Arc<View>>>,
    /// When set, the first status write waits (up to 10 s) until this holds, and records whether it did.
    pub hold_first_status: Mutex<Option<Box<dyn Fn() -> bool + Send + Sync>>>,
    pub first_status_released: Mutex<Option<bool>>,
}

impl Sink for Recorder {
    fn status<'a>(
        &'a self,
        target: Target,
        key: &'a ObjKey,
        ingress: &'a [LoadBalancerIngress],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let hold = self.hold_first_status.lock().take();
            if let Some(until) = hold {
                let released = tokio::time::timeout(Duration::from_secs(10), async {
                    while !until() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
                .await
                .is_ok();
                *self.first_status_released.lock() = Some(released);
            }
            let view = self.view.lock().clone();
            match target {
                Target::Service => {
                    self.status.lock().push((key.clone(), ingress.to_vec()));
                    if let Some(view) = view
                        && let Some(svc) = view.service(key)
                    {
                        let mut svc = (*svc).clone();
                        let st = svc.status.get_or_insert_with(Default::default);
                        st.load_balancer
                            .get_or_insert_with(Default::default)
                            .ingress = Some(ingress.to_vec());
                        view.upsert_service(svc);
                    }
                }
                Target::Ingress => {
                    self.ingress_status
                        .lock()
                        .push((key.clone(), ingress.to_vec()));
                    if let Some(view) = view
                        && let Some(ing) = view.ingress(key)
                    {
                        let mut ing = (*ing).clone();
                        let list = ingress
                            .iter()
                            .map(|i| IngressLoadBalancerIngress {
                                ip: i.ip.clone(),
                                hostname: i.hostname.clone(),
                                ..Default::default()
                            })
                            .collect();
                        ing.status
                            .get_or_insert_with(Default::default)
                            .load_balancer
                            .get_or_insert_with(Default::default)
                            .ingress = Some(list);
                        view.upsert_ingress(ing);
                    }
                }
                Target::Rule(_) => {}
            }
            Ok(())
        })
    }

    fn rule_status<'a>(
        &'a self,
        kind: RuleKind,
        key: &'a ObjKey,
        status: &'a serde_json::Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            self.rule_statuses
                .lock()
                .push((kind, key.clone(), status.clone()));
            let view = self.view.lock().clone();
            if let Some(view) = view
                && let Some(mut obj) = view.rules(kind).remove(key)
            {
                let text = |k: &str| {
                    status
                        .get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                obj.status = Some((text("status"), text("error")));
                view.upsert_rule(kind, key.clone(), obj);
            }
            Ok(())
        })
    }

    fn operator_event<'a>(
        &'a self,
        notice: &'a Notice,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move { self.operator.lock().push(notice.clone()) })
    }

    fn event<'a>(
        &'a self,
        target: Target,
        key: &'a ObjKey,
        _uid: Option<&'a str>,
        notice: &'a Notice,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match target {
                Target::Service => self.events.lock().push((key.clone(), notice.clone())),
                Target::Ingress => self
                    .ingress_events
                    .lock()
                    .push((key.clone(), notice.clone())),
                Target::Rule(_) => self.rule_events.lock().push((key.clone(), notice.clone())),
            }
        })
    }
}

/// The last value recorded for a key.
pub fn last_for<T: Clone>(log: &Mutex<Vec<(ObjKey, T)>>, key: &ObjKey) -> Option<T> {
    log.lock()
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Every value recorded for a key, in order.
pub fn all_for<T: Clone>(log: &Mutex<Vec<(ObjKey, T)>>, key: &ObjKey) -> Vec<T> {
    log.lock()
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

impl Recorder {
    pub fn last_status(&self, key: &ObjKey) -> Option<Vec<LoadBalancerIngress>> {
        last_for(&self.status, key)
    }
    pub fn events_for(&self, key: &ObjKey) -> Vec<Notice> {
        all_for(&self.events, key)
    }
    pub fn last_ingress_status(&self, key: &ObjKey) -> Option<Vec<LoadBalancerIngress>> {
        last_for(&self.ingress_status, key)
    }
    pub fn ingress_events_for(&self, key: &ObjKey) -> Vec<Notice> {
        all_for(&self.ingress_events, key)
    }
}

pub fn cfg() -> Config {
    Config {
        cluster_name: "veba-of".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    }
}

pub fn placement() -> Placement {
    Placement {
        rhi: Default::default(),
        cluster_name: "veba-of".into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("dpg-sedatapath-18".into(), "10.10.18.0/26".parse().ok())),
        member_mode: MemberMode::ClusterIp,
        license_tier: Default::default(),
        vip_family: Default::default(),
    }
}

pub fn service(yaml: &str) -> Service {
    serde_yaml_ng::from_str(yaml).expect("service yaml")
}

pub const DEMO: &str = r#"
metadata: {name: avisvc-lb, namespace: vmug, uid: u-1, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: web, protocol: TCP}]
"#;

pub fn demo_key() -> ObjKey {
    ObjKey::new("vmug", "avisvc-lb")
}

pub fn endpoints(ips: &[(&str, bool)]) -> EndpointGroup {
    EndpointGroup {
        ports: vec![(Some("http".into()), 8080, "TCP".into())],
        addresses: ips
            .iter()
            .map(|(ip, ready)| EndpointAddress {
                ip: ip.parse().expect("ip"),
                ready: *ready,
                terminating: false,
            })
            .collect(),
    }
}

pub fn client(emu: &EmulatorHandle) -> AviClient {
    AviClient::new(avi_support::client_config(emu).with_cluster_name("veba-of")).expect("client")
}

/// A running reconciler.
pub struct Running {
    pub tx: ako::k8s::changes::ChangeSender,
    pub progress: watch::Receiver<Progress>,
    pub leader: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
    pub sink: Arc<Recorder>,
}

impl Running {
    pub fn start(emu: &EmulatorHandle, view: Arc<View>, full_sync: Option<Duration>) -> Running {
        Self::start_with(emu, view, |s| s.full_sync = full_sync)
    }

    pub fn start_with(
        emu: &EmulatorHandle,
        view: Arc<View>,
        tune: impl FnOnce(&mut Settings),
    ) -> Running {
        Self::start_live(emu, view, tune, None)
    }

    pub fn start_live(
        emu: &EmulatorHandle,
        view: Arc<View>,
        tune: impl FnOnce(&mut Settings),
        live: Option<watch::Receiver<ako::reconcile::live::Live>>,
    ) -> Running {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("ako=debug")
            .try_init();
        let sink = Arc::new(Recorder::default());
        *sink.view.lock() = Some(view.clone());
        let mut settings = Settings::new(placement());
        settings.full_sync = None;
        settings.retry_base = Duration::from_millis(50);
        tune(&mut settings);
        let mut r = Reconciler::new(client(emu), view, Arc::new(cfg()), settings, sink.clone());
        if let Some(l) = live {
            r = r.with_live(l);
        }
        let (tx, rx) = ako::k8s::changes::channel();
        let (leader, leader_rx) = watch::channel(true);
        let (ptx, progress) = watch::channel(Progress::default());
        let task = tokio::spawn(r.run(rx, leader_rx, ptx));
        Running {
            tx,
            progress,
            leader,
            task,
            sink,
        }
    }

    /// Waits until `f` holds for the published progress (bounded).
    /// Sends a change and waits until the worker has taken it and gone back to waiting: whatever it does about
    /// the change is done (or scheduled) by then. The observable for "nothing happens".
    pub async fn taken(&mut self, c: Change) -> Progress {
        let before = self.progress.borrow().stats.changes_taken;
        self.tx.send(c).expect("reconciler running");
        self.until("the change taken and dealt with", |p| {
            p.stats.changes_taken > before
        })
        .await
    }

    pub async fn until(&mut self, what: &str, f: impl Fn(&Progress) -> bool) -> Progress {
        let wait = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if f(&self.progress.borrow_and_update()) {
                    return self.progress.borrow().clone();
                }
                if self.progress.changed().await.is_err() {
                    panic!("the reconciler stopped while waiting for {what}");
                }
            }
        });
        wait.await.unwrap_or_else(|_| {
            panic!("timed out waiting for {what}: {:?}", self.progress.borrow())
        })
    }

    /// Sends a change and waits for the pass it causes.
    pub async fn change(&mut self, c: Change) -> Progress {
        let before = self.progress.borrow().stats.passes + self.progress.borrow().stats.full_syncs;
        self.tx.send(c).expect("reconciler running");
        self.until("the next pass", |p| {
            p.stats.passes + p.stats.full_syncs > before
        })
        .await
    }

    /// The last Service status the reconciler wrote, to any Service.
    pub fn last_status_write(&self) -> Option<(ObjKey, Vec<LoadBalancerIngress>)> {
        self.sink.status.lock().last().cloned()
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// ako's objects of a kind: by created_by, or for a kind without it (VsVip) by name prefix and ownership.
pub async fn list<T: ako::avi::models::AviObject>(c: &AviClient) -> Vec<T> {
    let query = if T::HAS_CREATED_BY {
        ListQuery {
            created_by: Some(OWNER.into()),
            ..ListQuery::default()
        }
    } else {
        ListQuery {
            extra: vec![("name.contains".into(), "veba-of--".into())],
            ..ListQuery::default()
        }
    };
    let all: Vec<T> = c.list(&query).await.expect("list");
    all.into_iter().filter(|o| o.owned_by(OWNER)).collect()
}

/// Someone else's status write: the Service's `status.loadBalancer.ingress` becomes `[{ip}]` in the view.
pub fn overwrite_service_status(view: &View, key: &ObjKey, ip: &str) {
    let mut svc = (*view.service(key).expect("service")).clone();
    svc.status = Some(
        serde_json::from_value(serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}}))
            .expect("status"),
    );
    view.upsert_service(svc);
}

/// A fresh emulator, a view holding the seed's demo Service, and a reconciler that has programmed it.
pub async fn demo_converged() -> (EmulatorHandle, Arc<View>, Running) {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once).await;
    (emu, view, r)
}

pub fn writes(emu: &EmulatorHandle) -> u64 {
    emu.counters().writes
}

// Ingresses (L7)

pub fn ingress(yaml: &str) -> Ingress {
    serde_yaml_ng::from_str(yaml).expect("ingress yaml")
}

pub const HACKAZON_ING: &str = r#"
metadata: {name: hackazon, namespace: vmug, uid: i-1, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  ingressClassName: avi-lb
  rules:
  - host: hackazon.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

/// A second application, in a namespace of its own; shop.avi.jarvis.lab hashes to shard 1 of 8.
pub const SHOP_ING: &str = r#"
metadata: {name: shop, namespace: shop, uid: i-2, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  ingressClassName: avi-lb
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: shop-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

pub fn web_service(ns: &str) -> Service {
    service(&format!(
        "metadata: {{name: web, namespace: {ns}}}\nspec: {{type: ClusterIP, ports: [{{name: http, port: 80, targetPort: 8080}}]}}"
    ))
}

/// A view with the web Services of `vmug` and `shop` (ready endpoints), and these Ingresses.
/// A fresh emulator, a view holding the seed's two Ingresses and their Services, and a reconciler that has
/// programmed them and published its Events.
pub async fn l7_demo_converged() -> (EmulatorHandle, Arc<View>, Running) {
    let emu = avi_support::start(None).await;
    let view = l7_view(&[HACKAZON_ING, SHOP_ING]);
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    (emu, view, r)
}

pub fn l7_view(ingresses: &[&str]) -> Arc<View> {
    let view = Arc::new(View::from_parts(
        vec![web_service("vmug"), web_service("shop")],
        vec![
            (
                ObjKey::new("vmug", "web"),
                endpoints(&[("10.244.0.5", true)]),
            ),
            (
                ObjKey::new("shop", "web"),
                endpoints(&[("10.244.1.5", true)]),
            ),
        ],
        vec![],
    ));
    for y in ingresses {
        view.upsert_ingress(ingress(y));
    }
    view
}

pub fn tls_pair(cn: &str) -> TlsPair {
    let ca = ako::certs::generate_ca(cn, 30).expect("certificate");
    TlsPair {
        cert_pem: ca.cert_pem,
        key_pem: ca.key_pem,
        problem: None,
    }
}

pub async fn get_named(c: &AviClient, kind: &str, name: &str) -> Option<serde_json::Value> {
    let page: serde_json::Value = c
        .get_json(&format!("/api/{kind}?name={name}"))
        .await
        .expect("get");
    page["results"].as_array().and_then(|r| r.first()).cloned()
}
