//! The election's rules, free of I/O: what a read Lease means for this replica (keep, take over, wait) and the
//! Lease it writes to claim or release leadership.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a candidate knows of the current record and since when (local clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observed {
    pub(super) resource_version: String,
    pub(super) holder: Option<String>,
    pub(super) lease_duration: Duration,
    pub(super) at: Instant,
}

impl Observed {
    /// The record of `lease` as seen at `now`; `at` is kept while the record (its resourceVersion) is unchanged.
    pub(super) fn of(previous: Option<&Observed>, lease: &Lease, now: Instant) -> Observed {
        let resource_version = lease.metadata.resource_version.clone().unwrap_or_default();
        let spec = lease.spec.as_ref();
        let holder = spec
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty());
        let lease_duration = spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or_default();
        let at = match previous {
            Some(p) if p.resource_version == resource_version && !resource_version.is_empty() => {
                p.at
            }
            _ => now,
        };
        Observed {
            resource_version,
            holder,
            lease_duration,
            at,
        }
    }
}

/// A candidate's decision about an observed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Another identity holds it and may still be leading until `until` (local clock).
    HeldByOther { holder: String, until: Instant },
    /// Free, released, expired, or already ours: try to write it.
    Acquirable,
}

pub(super) fn verdict(
    observed: &Observed,
    identity: &str,
    own_lease_duration: Duration,
    now: Instant,
) -> Verdict {
    match &observed.holder {
        None => Verdict::Acquirable,
        Some(h) if h == identity => Verdict::Acquirable,
        Some(h) => {
            // The longer of ours and the record's: a replica configured with a longer lease is never cut short.
            let until = observed.at + own_lease_duration.max(observed.lease_duration);
            if now < until {
                Verdict::HeldByOther {
                    holder: h.clone(),
                    until,
                }
            } else {
                Verdict::Acquirable
            }
        }
    }
}

/// `base` (an existing Lease, or a fresh one to create) claimed by `identity` at `now`. The resourceVersion is
/// kept so that the update is refused if anyone wrote in between.
pub(super) fn claimed(
    base: &Lease,
    identity: &str,
    lease_duration_seconds: i32,
    now: Timestamp,
) -> Lease {
    let mut lease = base.clone();
    let exists = lease.metadata.resource_version.is_some();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(identity) {
        spec.acquire_time = Some(MicroTime(now));
        let previous = spec.lease_transitions.unwrap_or(0);
        spec.lease_transitions = Some(if exists {
            previous.saturating_add(1)
        } else {
            previous
        });
    }
    spec.holder_identity = Some(identity.to_string());
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(lease_duration_seconds);
    lease
}

/// `lease` released: no holder, so candidates take it at once (as client-go's ReleaseOnCancel).
pub(super) fn released(lease: &Lease, now: Timestamp) -> Lease {
    let mut lease = lease.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(1);
    lease
}

pub(super) fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

pub(super) fn transitions(lease: &Lease) -> i32 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0)
}
