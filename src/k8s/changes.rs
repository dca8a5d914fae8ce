//! The changes the watches report to the reconciler, merged as they arrive.
//!
//! A watch never waits on the reconciler and the queue never grows with the event rate: each change is folded
//! into one [`Pending`] set (which Services, Ingresses, Secrets changed; whether the nodes, the classes or a
//! re-list did), so a burst of a thousand updates of one Service is one entry. What the queue holds is bounded by
//! the number of objects in the cluster, whatever the rate; the reconciler takes it all at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use ako_core::index::ObjKey;

use super::observe::Change;

/// What changed since the reconciler last looked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending {
    pub services: HashSet<ObjKey>,
    pub ingresses: HashSet<ObjKey>,
    pub secrets: HashSet<ObjKey>,
    /// Objects whose status alone changed: looked at only if it is no longer what ako wrote.
    pub service_status: HashSet<ObjKey>,
    pub ingress_status: HashSet<ObjKey>,
    pub nodes: bool,
    pub classes: bool,
    /// HostRules or HTTPRules changed: they are judged again.
    pub rules: bool,
    pub full: bool,
    /// A watch re-listed its kind: objects missing from the list were not seen deleted one by one, so what the
    /// pass deletes is not explained by deletions ako observed (the deletion guard weighs it).
    pub relisted: bool,
}

impl Pending {
    /// Folds one change in.
    pub fn absorb(&mut self, change: Change) {
        match change {
            Change::Services(keys) => self.services.extend(keys),
            Change::Ingresses(keys) => self.ingresses.extend(keys),
            Change::ServiceStatus(keys) => self.service_status.extend(keys),
            Change::IngressStatus(keys) => self.ingress_status.extend(keys),
            Change::Secrets(keys) => self.secrets.extend(keys),
            Change::Nodes => self.nodes = true,
            Change::Classes => self.classes = true,
            Change::Rules => self.rules = true,
            Change::Resync => self.full = true,
            Change::Listed => self.relisted = true,
            Change::Namespace(ns) => {
                // Resolved against the view and the state at the next pass.
                self.services.insert(ObjKey::new(ns.clone(), String::new()));
                self.ingresses.insert(ObjKey::new(ns, String::new()));
            }
        }
    }

    /// Folds another set in.
    pub fn merge(&mut self, other: Pending) {
        self.services.extend(other.services);
        self.ingresses.extend(other.ingresses);
        self.secrets.extend(other.secrets);
        self.service_status.extend(other.service_status);
        self.ingress_status.extend(other.ingress_status);
        self.nodes |= other.nodes;
        self.classes |= other.classes;
        self.rules |= other.rules;
        self.full |= other.full;
        self.relisted |= other.relisted;
    }

    /// Whether objects changed (a pass is due).
    pub fn pending(&self) -> bool {
        !self.services.is_empty()
            || !self.ingresses.is_empty()
            || !self.secrets.is_empty()
            || !self.service_status.is_empty()
            || !self.ingress_status.is_empty()
            || self.nodes
            || self.classes
            || self.rules
    }

    /// Whether there is anything at all to hand over (a re-list or a full sync asked for counts).
    fn any(&self) -> bool {
        self.pending() || self.full || self.relisted
    }

    /// Entries held: what the queue's memory is proportional to.
    pub fn len(&self) -> usize {
        self.services.len()
            + self.ingresses.len()
            + self.secrets.len()
            + self.service_status.len()
            + self.ingress_status.len()
    }

    pub fn is_empty(&self) -> bool {
        !self.any()
    }
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
    /// Changes sent since the receiver last took them (for the reconciler's liveness check).
    waiting: Arc<AtomicU64>,
}

struct State {
    pending: Pending,
    senders: usize,
    receiver: bool,
}

/// The queue: many senders (one per watch), one receiver (the reconciler's worker).
pub fn channel() -> (ChangeSender, ChangeReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            pending: Pending::default(),
            senders: 1,
            receiver: true,
        }),
        notify: Notify::new(),
        waiting: Arc::new(AtomicU64::new(0)),
    });
    (ChangeSender(shared.clone()), ChangeReceiver(shared))
}

/// The receiver is gone: the reconciler stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Sends changes; never waits.
pub struct ChangeSender(Arc<Shared>);

impl ChangeSender {
    pub fn send(&self, change: Change) -> Result<(), Closed> {
        {
            let mut s = self.0.state.lock();
            if !s.receiver {
                return Err(Closed);
            }
            s.pending.absorb(change);
        }
        self.0.waiting.fetch_add(1, Ordering::AcqRel);
        self.0.notify.notify_one();
        Ok(())
    }
}

impl Clone for ChangeSender {
    fn clone(&self) -> Self {
        self.0.state.lock().senders += 1;
        Self(self.0.clone())
    }
}

impl Drop for ChangeSender {
    fn drop(&mut self) {
        let last = {
            let mut s = self.0.state.lock();
            s.senders -= 1;
            s.senders == 0
        };
        if last {
            self.0.notify.notify_one();
        }
    }
}

/// Takes what changed, merged.
pub struct ChangeReceiver(Arc<Shared>);

impl ChangeReceiver {
    /// Waits for changes and takes all of them; `None` once every sender is gone and nothing is left.
    pub async fn recv(&mut self) -> Option<Pending> {
        loop {
            let notified = self.0.notify.notified();
            {
                let mut s = self.0.state.lock();
                if s.pending.any() {
                    return Some(self.take(&mut s));
                }
                if s.senders == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Takes what changed, if anything, without waiting.
    pub fn try_recv(&mut self) -> Option<Pending> {
        let mut s = self.0.state.lock();
        s.pending.any().then(|| self.take(&mut s))
    }

    fn take(&self, s: &mut State) -> Pending {
        self.0.waiting.store(0, Ordering::Release);
        std::mem::take(&mut s.pending)
    }

    /// Changes sent and not yet taken, shared with the reconciler's heartbeat.
    pub fn waiting(&self) -> Arc<AtomicU64> {
        self.0.waiting.clone()
    }
}

impl Drop for ChangeReceiver {
    fn drop(&mut self) {
        self.0.state.lock().receiver = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> ObjKey {
        ObjKey::new("ns", n)
    }

    #[test]
    fn a_burst_on_one_object_is_one_entry() {
        let (tx, mut rx) = channel();
        for _ in 0..10_000 {
            tx.send(Change::Services(vec![key("web")])).expect("open");
        }
        tx.send(Change::Ingresses(vec![key("shop")])).expect("open");
        tx.send(Change::Listed).expect("open");
        assert_eq!(rx.waiting().load(Ordering::Acquire), 10_002);
        let p = rx.try_recv().expect("pending");
        assert_eq!(p.len(), 2);
        assert!(p.relisted && !p.full);
        assert_eq!(rx.waiting().load(Ordering::Acquire), 0);
        assert!(rx.try_recv().is_none(), "everything was taken at once");
    }

    #[tokio::test]
    async fn the_receiver_wakes_for_a_change_and_ends_when_every_sender_is_gone() {
        let (tx, mut rx) = channel();
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        tx2.send(Change::Resync).expect("open");
        drop(tx2);
        drop(tx);
        let (first, second) = waiter.await.expect("task");
        assert!(first.is_some_and(|p| p.full));
        assert_eq!(second, None);
    }

    #[test]
    fn a_sender_learns_that_the_receiver_is_gone() {
        let (tx, rx) = channel();
        drop(rx);
        assert_eq!(tx.send(Change::Nodes), Err(Closed));
    }
}
