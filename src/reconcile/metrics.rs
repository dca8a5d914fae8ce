//! Prometheus metrics of the reconciler (prefix `ako_reconcile_`): passes and their duration, failures and
//! retries by remedy, the longest backoff now scheduled, groups waiting, changes queued, held deletions, unknown
//! groups and when the last full sync read everything. Served with the Avi client's on the health port.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::retry::Remedy;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemedyLabels {
    pub remedy: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabels {
    /// `full_sync` or `pass`.
    pub kind: &'static str,
}

/// The reconciler's metrics.
#[derive(Debug)]
pub struct ReconcileMetrics {
    pub passes: Family<PassLabels, Counter>,
    pub pass_duration: Family<PassLabels, Histogram>,
    pub failures: Family<RemedyLabels, Counter>,
    pub retry_backoff: Gauge<f64, AtomicU64>,
    pub groups_retrying: Gauge,
    pub queue_depth: Gauge,
    pub deletions_held: Gauge,
    pub unknown_groups: Gauge,
    pub last_full_sync: Gauge<f64, AtomicU64>,
    pub writes: Family<WriteLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub op: &'static str,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        Self {
            passes: Family::default(),
            pass_duration: Family::new_with_constructor(|| {
                // 1 ms .. ~8 min
                Histogram::new(exponential_buckets(0.001, 2.0, 20))
            }),
            failures: Family::default(),
            retry_backoff: Gauge::default(),
            groups_retrying: Gauge::default(),
            queue_depth: Gauge::default(),
            deletions_held: Gauge::default(),
            unknown_groups: Gauge::default(),
            last_full_sync: Gauge::default(),
            writes: Family::default(),
        }
    }
}

impl ReconcileMetrics {
    /// Registers every metric under `ako_reconcile_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("reconcile");
        r.register(
            "passes",
            "Reconciler passes, by kind (pass, full_sync)",
            self.passes.clone(),
        );
        r.register(
            "pass_duration_seconds",
            "Duration of reconciler passes, by kind",
            self.pass_duration.clone(),
        );
        r.register(
            "failures",
            "Groups that failed, by what it takes to fix it (transient, controller, kubernetes)",
            self.failures.clone(),
        );
        r.register(
            "retry_backoff_seconds",
            "The longest delay before a failed group is tried again, among those waiting",
            self.retry_backoff.clone(),
        );
        r.register(
            "groups_retrying",
            "Groups waiting for a retry",
            self.groups_retrying.clone(),
        );
        r.register(
            "queue_depth",
            "Watch changes not yet taken by the reconciler",
            self.queue_depth.clone(),
        );
        r.register(
            "deletions_held",
            "Avi objects whose deletion the deletion guard holds until released",
            self.deletions_held.clone(),
        );
        r.register(
            "unknown_groups",
            "Groups not planned because an input could not be read (their objects are kept as they are)",
            self.unknown_groups.clone(),
        );
        r.register(
            "last_full_sync_timestamp_seconds",
            "When the last full sync that read everything ended (Unix time)",
            self.last_full_sync.clone(),
        );
        r.register(
            "avi_writes",
            "Avi objects written by the reconciler, by operation (create, update, delete)",
            self.writes.clone(),
        );
    }

    /// A failure, scheduled for a retry.
    pub fn retried(&self, remedy: Remedy) {
        self.failures
            .get_or_create(&RemedyLabels {
                remedy: remedy.as_str(),
            })
            .inc();
    }

    /// A pass (or a full sync) that took `took`.
    pub fn pass(&self, full: bool, took: Duration) {
        let labels = PassLabels {
            kind: if full { "full_sync" } else { "pass" },
        };
        self.passes.get_or_create(&labels).inc();
        self.pass_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A full sync read everything now.
    pub fn full_sync_complete(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.last_full_sync.set(now);
    }
}

/// The reconciler's liveness, read by `/healthz`: when it last took a change or finished a pass, and since when
/// it has been busy with one. Cheap to update (atomics).
#[derive(Debug)]
pub struct Heartbeat {
    base: std::time::Instant,
    /// Milliseconds after `base` + 1 since the reconciler has been in a pass; 0: idle.
    busy_since: AtomicU64,
    /// Milliseconds after `base` of the last change taken or pass finished.
    last_beat: AtomicU64,
    /// Changes sent and not yet taken: the change queue's counter ([`Heartbeat::track_queue`]).
    queued: parking_lot::Mutex<Arc<AtomicU64>>,
    /// Set when the reconciler's task ended.
    dead: std::sync::atomic::AtomicBool,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            base: std::time::Instant::now(),
            busy_since: AtomicU64::new(0),
            last_beat: AtomicU64::new(0),
            queued: parking_lot::Mutex::new(Arc::new(AtomicU64::new(0))),
            dead: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Heartbeat {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn beat(&self) {
        self.last_beat.store(self.now_ms(), Ordering::Release);
    }

    pub fn busy(&self) {
        self.busy_since
            .store(self.now_ms().saturating_add(1), Ordering::Release);
    }

    pub fn idle(&self) {
        self.busy_since.store(0, Ordering::Release);
        self.beat();
    }

    /// Reads the waiting changes from the change queue's counter
    /// ([`ChangeReceiver::waiting`](crate::k8s::changes::ChangeReceiver::waiting)).
    pub fn track_queue(&self, waiting: Arc<AtomicU64>) {
        *self.queued.lock() = waiting;
    }

    pub fn depth(&self) -> u64 {
        self.queued.lock().load(Ordering::Acquire)
    }

    pub fn died(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// Why the reconciler is not live, if it is not: its task ended, a pass has run longer than `bound`, or
    /// changes have waited longer than `bound` without the reconciler taking any.
    pub fn check(&self, bound: Duration) -> Result<(), String> {
        if self.dead.load(Ordering::Acquire) {
            return Err("the reconciler has stopped".into());
        }
        let now = self.now_ms();
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        let busy = self.busy_since.load(Ordering::Acquire);
        if busy > 0 && now.saturating_sub(busy - 1) > bound_ms {
            return Err(format!(
                "a reconciler pass has run for {}s (bound {}s)",
                now.saturating_sub(busy - 1) / 1000,
                bound.as_secs()
            ));
        }
        let last = self.last_beat.load(Ordering::Acquire);
        if busy == 0 && self.depth() > 0 && now.saturating_sub(last) > bound_ms {
            return Err(format!(
                "{} changes have waited {}s for the reconciler (bound {}s)",
                self.depth(),
                now.saturating_sub(last) / 1000,
                bound.as_secs()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_fails_when_a_pass_or_waiting_changes_outlast_the_bound() {
        let h = Heartbeat::default();
        assert!(
            h.check(Duration::ZERO).is_ok(),
            "idle with nothing queued is live"
        );
        h.busy();
        std::thread::sleep(Duration::from_millis(5));
        assert!(h.check(Duration::from_secs(60)).is_ok());
        let err = h
            .check(Duration::from_millis(1))
            .expect_err("a pass past its bound");
        assert!(err.contains("has run for"), "{err}");
        h.idle();
        let queued = Arc::new(AtomicU64::new(0));
        h.track_queue(queued.clone());
        queued.fetch_add(1, Ordering::AcqRel);
        std::thread::sleep(Duration::from_millis(5));
        let err = h
            .check(Duration::from_millis(1))
            .expect_err("a change waiting");
        assert!(err.contains("waited"), "{err}");
        queued.store(0, Ordering::Release);
        h.beat();
        assert!(h.check(Duration::from_millis(1)).is_ok());
        h.died();
        assert_eq!(
            h.check(Duration::from_secs(60)),
            Err("the reconciler has stopped".to_string())
        );
    }
}
