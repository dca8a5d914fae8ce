//! Watches that feed the admission [`Index`]: Ingresses, IngressClasses and Services as full objects (only
//! what admission needs is kept, never the object: host claims, classes, existence and requested VIPs),
//! TLS Secrets (`type=kubernetes.io/tls`) as metadata only (existence is all the webhook needs).
//! A re-list replaces a kind's view atomically at `InitDone`; watch errors back off and retry, and the last
//! good view stays in place meanwhile.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use ako_core::index::{Index, IngressClaims, ObjKey, ServiceEntry, Snapshot, SyncState};

/// How one watched kind updates the index.
trait Feed<K>: Send + 'static {
    /// What is computed per object outside the write lock.
    type Item: Send;
    fn item(&self, obj: &K) -> Self::Item;
    fn key(&self, obj: &K) -> ObjKey;
    fn upsert(snap: &mut Snapshot, item: Self::Item);
    fn remove(snap: &mut Snapshot, key: &ObjKey);
    fn replace(snap: &mut Snapshot, all: Vec<Self::Item>);
    fn mark(s: &mut SyncState);
    const KIND: &'static str;
}

struct Ingresses(Arc<Index>);
impl Feed<Ingress> for Ingresses {
    type Item = IngressClaims;
    const KIND: &'static str = "Ingress";
    fn item(&self, obj: &Ingress) -> IngressClaims {
        IngressClaims::of(obj, &self.0.config())
    }
    fn key(&self, obj: &Ingress) -> ObjKey {
        ObjKey::of(&obj.metadata)
    }
    fn upsert(snap: &mut Snapshot, item: IngressClaims) {
        snap.upsert_ingress(item);
    }
    fn remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.remove_ingress(key);
    }
    fn replace(snap: &mut Snapshot, all: Vec<IngressClaims>) {
        snap.replace_ingresses(all);
    }
    fn mark(s: &mut SyncState) {
        s.ingresses = true;
    }
}

struct Classes;
impl Feed<IngressClass> for Classes {
    type Item = IngressClass;
    const KIND: &'static str = "IngressClass";
    fn item(&self, obj: &IngressClass) -> IngressClass {
        obj.clone()
    }
    fn key(&self, obj: &IngressClass) -> ObjKey {
        ObjKey::of(&obj.metadata)
    }
    fn upsert(snap: &mut Snapshot, item: IngressClass) {
        snap.upsert_class(&item);
    }
    fn remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.remove_class(&key.name);
    }
    fn replace(snap: &mut Snapshot, all: Vec<IngressClass>) {
        snap.replace_classes(&all);
    }
    fn mark(s: &mut SyncState) {
        s.classes = true;
    }
}

/// Existence-only feed for the Secret metadata watch.
struct SecretsExist;
impl<K: kube::Resource> Feed<K> for SecretsExist {
    type Item = ObjKey;
    const KIND: &'static str = "Secret";
    fn item(&self, obj: &K) -> ObjKey {
        ObjKey::of(obj.meta())
    }
    fn key(&self, obj: &K) -> ObjKey {
        ObjKey::of(obj.meta())
    }
    fn upsert(snap: &mut Snapshot, item: ObjKey) {
        snap.set_secret(item, true)
    }
    fn remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.set_secret(key.clone(), false)
    }
    fn replace(snap: &mut Snapshot, all: Vec<ObjKey>) {
        snap.replace_secrets(all.into_iter().collect::<HashSet<_>>())
    }
    fn mark(s: &mut SyncState) {
        s.secrets = true
    }
}

/// Services: existence, and the VIP a LoadBalancer Service of ours asks for.
struct Services(Arc<Index>);
impl Feed<Service> for Services {
    type Item = ServiceEntry;
    const KIND: &'static str = "Service";
    fn item(&self, obj: &Service) -> ServiceEntry {
        ServiceEntry::of(obj, &self.0.config())
    }
    fn key(&self, obj: &Service) -> ObjKey {
        ObjKey::of(&obj.metadata)
    }
    fn upsert(snap: &mut Snapshot, item: ServiceEntry) {
        snap.upsert_service(item)
    }
    fn remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.remove_service(key)
    }
    fn replace(snap: &mut Snapshot, all: Vec<ServiceEntry>) {
        snap.replace_services(all)
    }
    fn mark(s: &mut SyncState) {
        s.services = true
    }
}

/// Applies an update to the index without blocking the runtime's thread: while a reader holds the index (a large
/// review is decided on an idle-priority thread and can hold it long), the update waits here, asleep, and the
/// thread runs the other tasks (in `ako run`, the reconciler's).
async fn write<R, F: FnOnce(&mut Snapshot) -> R>(index: &Index, mut f: F) -> R {
    let mut pause = std::time::Duration::from_micros(200);
    loop {
        match index.try_write(f) {
            Ok(r) => return r,
            Err(back) => f = back,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

async fn drive<K, F, S>(index: Arc<Index>, feed: F, stream: S)
where
    K: Debug + Send,
    F: Feed<K>,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    let mut staging: Vec<F::Item> = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => staging.clear(),
            Ok(Event::InitApply(obj)) => staging.push(feed.item(&obj)),
            Ok(Event::InitDone) => {
                let all = std::mem::take(&mut staging);
                let n = all.len();
                write(&index, |s| F::replace(s, all)).await;
                index.mark_synced(F::mark);
                tracing::info!(kind = F::KIND, objects = n, "admission index synced");
            }
            Ok(Event::Apply(obj)) => {
                let item = feed.item(&obj);
                write(&index, |s| F::upsert(s, item)).await;
            }
            Ok(Event::Delete(obj)) => {
                let key = feed.key(&obj);
                write(&index, |s| F::remove(s, &key)).await;
            }
            Err(error) => {
                tracing::warn!(kind = F::KIND, %error, "watch failed; retrying with backoff, the last view stays in use")
            }
        }
    }
}

/// Starts all watches; they run until the returned tasks are aborted.
pub fn spawn_index_watches(client: Client, index: Arc<Index>) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = watcher::Config::default();
    let ing = watcher::watcher(Api::<Ingress>::all(client.clone()), cfg.clone()).default_backoff();
    let classes =
        watcher::watcher(Api::<IngressClass>::all(client.clone()), cfg.clone()).default_backoff();
    // Only the Secrets an Ingress can use: kubernetes.io/tls (a cluster's other Secrets, often thousands, are
    // none of ako's business).
    let secrets = watcher::watcher(
        Api::<PartialObjectMeta<Secret>>::all(client.clone()),
        cfg.clone().fields("type=kubernetes.io/tls"),
    )
    .default_backoff();
    let services = watcher::watcher(Api::<Service>::all(client), cfg).default_backoff();
    vec![
        tokio::spawn(drive(index.clone(), Ingresses(index.clone()), ing)),
        tokio::spawn(drive(index.clone(), Classes, classes)),
        tokio::spawn(drive(index.clone(), SecretsExist, secrets)),
        tokio::spawn(drive(index.clone(), Services(index), services)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ako_core::config::Config;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn an_index_update_waiting_for_a_long_read_leaves_its_thread_to_other_tasks() {
        let index = Arc::new(Index::new(Arc::new(Config::default())));
        // A large review's decision holds a read view on another thread for 300 ms.
        let (held_tx, held) = std::sync::mpsc::channel::<()>();
        let reader = {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                index.read(|_| {
                    let _ = held_tx.send(());
                    std::thread::sleep(Duration::from_millis(300));
                })
            })
        };
        held.recv().expect("the read holds the index");
        // Another task of this (single) thread counts while the update waits.
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let update = tokio::spawn({
            let index = Arc::clone(&index);
            async move { write(&index, |s| s.set_secret(ObjKey::new("n", "s"), true)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!update.is_finished(), "the update waits for the read");
        let counted = ticks.load(Ordering::Relaxed);
        assert!(
            counted >= 20,
            "the thread kept running other tasks: {counted} ticks in 100 ms"
        );
        reader.join().expect("reader");
        tokio::time::timeout(Duration::from_secs(2), update)
            .await
            .expect("the update lands once the read ends")
            .expect("update task");
        ticker.abort();
    }
}
