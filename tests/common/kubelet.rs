//! Plays the kubelet's part for test Pods (no kubelet runs in the test cluster): a Node with an InternalIP, Pods
//! bound to it whose status (pod IP, Ready) the test sets, and the last step of Pod deletion (a Pod marked for
//! deletion is removed with grace period 0, so namespace deletion can finish).
//!
//! Pod IPs are data only: they come from 10.244.0.0/16 (the API server refuses loopback pod IPs) and nothing in
//! the tests ever connects to them. Traffic to backends goes to Node InternalIPs on loopback (NodePort mode).

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde_json::json;

pub struct Kubelet {
    client: Client,
    reaper: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.reaper.abort();
    }
}

impl Kubelet {
    /// Starts the stand-in: Pods marked for deletion are removed at once.
    pub fn start(client: Client) -> Kubelet {
        let pods: Api<Pod> = Api::all(client.clone());
        let reaper_client = client.clone();
        let reaper = tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher::watcher(pods, watcher::Config::default()));
            while let Some(ev) = events.next().await {
                let Ok(Event::Apply(pod) | Event::InitApply(pod)) = ev else {
                    continue;
                };
                if pod.metadata.deletion_timestamp.is_none() {
                    continue;
                }
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(reaper_client.clone(), &ns);
                let _ = api
                    .delete(
                        &name,
                        &DeleteParams {
                            grace_period_seconds: Some(0),
                            ..DeleteParams::default()
                        },
                    )
                    .await;
            }
        });
        Kubelet { client, reaper }
    }

    /// Creates (or updates) a Ready Node with this InternalIP and labels.
    pub async fn node(&self, name: &str, internal_ip: &str, labels: &[(&str, &str)]) {
        let api: Api<Node> = Api::all(self.client.clone());
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels}
        }))
        .expect("node");
        let _ = api.create(&PostParams::default(), &node).await;
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await
        .expect("node labels");
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "addresses": [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": name}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test kubelet"}]
            }})),
        )
        .await
        .expect("node status");
    }

    /// Creates a Pod on `node` serving `port` (named `port_name`), with pod IP `ip` and the given readiness.
    #[allow(clippy::too_many_arguments)]
    pub async fn pod(
        &self,
        ns: &str,
        name: &str,
        labels: &[(&str, &str)],
        port_name: &str,
        port: u16,
        node: &str,
        ip: &str,
        ready: bool,
    ) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "app", "image": "registry.invalid/app", "ports": [{"name": port_name, "containerPort": port}]}]
            }
        }))
        .expect("pod");
        // In a namespace just created, the ServiceAccount admission refuses Pods until the controller-manager
        // made the `default` ServiceAccount and its token: retried for a bounded time, as a Deployment would be.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match api.create(&PostParams::default(), &pod).await {
                Ok(_) => break,
                Err(kube::Error::Api(s))
                    if s.message.to_ascii_lowercase().contains("service account")
                        || s.message.to_ascii_lowercase().contains("serviceaccount") =>
                {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "pod {ns}/{name} refused for 30 s: {}",
                        s.message
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("pod {ns}/{name} not created: {e}"),
            }
        }
        self.pod_status(ns, name, ip, ready).await;
    }

    /// Writes a Pod's status as a kubelet would: Running, its IP, and Ready or not.
    pub async fn pod_status(&self, ns: &str, name: &str, ip: &str, ready: bool) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let status = if ready { "True" } else { "False" };
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "phase": "Running",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "conditions": [
                    {"type": "Ready", "status": status},
                    {"type": "ContainersReady", "status": status}
                ]
            }})),
        )
        .await
        .expect("pod status");
    }
}
