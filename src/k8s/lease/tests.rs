//! Tests of `lease`.

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn lease(
    rv: Option<&str>,
    holder: Option<&str>,
    ld: Option<i32>,
    transitions: Option<i32>,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            resource_version: rv.map(String::from),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(String::from),
            lease_duration_seconds: ld,
            lease_transitions: transitions,
            acquire_time: Some(MicroTime(Timestamp::UNIX_EPOCH)),
            ..LeaseSpec::default()
        }),
    }
}

#[test]
fn default_timings_are_akos() {
    let t = Timings::default();
    assert_eq!(t.lease_duration(), secs(15.0));
    assert_eq!(t.renew_deadline(), secs(10.0));
    assert_eq!(t.retry_period(), secs(2.0));
    assert_eq!(
        Timings::new(secs(15.0), secs(10.0), secs(2.0)).ok(),
        Some(t)
    );
}

#[test]
fn timings_must_be_ordered_retry_below_renew_below_lease() {
    assert!(Timings::new(secs(3.0), secs(2.0), secs(0.5)).is_ok());
    for (ld, rd, rp) in [
        (3.0, 3.0, 0.5),
        (3.0, 4.0, 0.5),
        (3.0, 2.0, 2.0),
        (3.0, 2.0, 0.0),
        (0.9, 0.5, 0.1),
    ] {
        assert!(
            matches!(
                Timings::new(secs(ld), secs(rd), secs(rp)),
                Err(LeaseError::InvalidTimings(_))
            ),
            "{ld}/{rd}/{rp} accepted"
        );
    }
}

#[test]
fn lease_duration_seconds_round_up() {
    let t = Timings::new(secs(3.2), secs(2.0), secs(0.5)).expect("timings");
    assert_eq!(t.lease_duration_seconds(), 4);
    assert_eq!(Timings::default().lease_duration_seconds(), 15);
}

#[test]
fn candidate_retry_is_jittered_by_at_most_a_fifth() {
    let t = Timings::default();
    assert_eq!(t.jittered_retry(0.0), secs(2.0));
    assert_eq!(t.jittered_retry(1.0), secs(2.4));
    assert_eq!(t.jittered_retry(7.0), secs(2.4));
    let mid = t.jittered_retry(0.5);
    assert!(mid > secs(2.0) && mid < secs(2.4));
}

#[test]
fn validity_holds_strictly_before_its_deadline_only() {
    let base = Instant::now();
    let v = Validity::new(base);
    assert!(!v.is_valid_at(base));
    assert_eq!(v.deadline(), None);
    let until = base + secs(2.0);
    v.extend(until);
    assert!(v.is_valid_at(base + secs(1.999)));
    assert_eq!(v.remaining_at(base + secs(1.5)), Some(secs(0.5)));
    assert!(!v.is_valid_at(until));
    assert!(!v.is_valid_at(base + secs(3.0)));
    assert_eq!(v.deadline(), Some(until));
}

#[test]
fn validity_never_shrinks_on_a_late_extension() {
    let base = Instant::now();
    let v = Validity::new(base);
    v.extend(base + secs(5.0));
    v.extend(base + secs(3.0));
    assert_eq!(v.deadline(), Some(base + secs(5.0)));
    v.clear();
    assert!(!v.is_valid_at(base));
    v.extend(base + secs(1.0));
    assert!(v.is_valid_at(base));
}

#[test]
fn a_closed_validity_ignores_later_extensions() {
    let base = Instant::now();
    let v = Validity::new(base);
    v.extend(base + secs(5.0));
    v.close();
    assert!(!v.is_valid_at(base));
    v.extend(base + secs(9.0));
    assert!(!v.is_valid_at(base + secs(1.0)));
}

#[test]
fn unbounded_validity_is_always_valid_until_closed() {
    let base = Instant::now();
    let v = Validity::unbounded(base);
    assert_eq!(v.remaining_at(base + secs(1e6)), Some(Duration::MAX));
    assert_eq!(v.deadline(), None);
    v.close();
    assert!(!v.is_valid_at(base));
}

#[test]
fn observation_time_is_kept_while_the_record_is_unchanged() {
    let t0 = Instant::now();
    let first = Observed::of(None, &lease(Some("10"), Some("a"), Some(15), None), t0);
    assert_eq!(first.at, t0);
    assert_eq!(first.holder.as_deref(), Some("a"));
    assert_eq!(first.lease_duration, secs(15.0));
    let same = Observed::of(
        Some(&first),
        &lease(Some("10"), Some("a"), Some(15), None),
        t0 + secs(4.0),
    );
    assert_eq!(same.at, t0);
    let renewed = Observed::of(
        Some(&same),
        &lease(Some("11"), Some("a"), Some(15), None),
        t0 + secs(5.0),
    );
    assert_eq!(renewed.at, t0 + secs(5.0));
    let empty = Observed::of(None, &lease(Some("12"), Some(""), None, None), t0);
    assert_eq!(empty.holder, None);
}

#[test]
fn a_live_record_of_another_holder_is_not_taken_before_a_full_lease_duration() {
    let t0 = Instant::now();
    let seen = Observed::of(None, &lease(Some("1"), Some("other"), Some(3), None), t0);
    assert_eq!(
        verdict(&seen, "me", secs(3.0), t0 + secs(2.999)),
        Verdict::HeldByOther {
            holder: "other".into(),
            until: t0 + secs(3.0)
        }
    );
    assert_eq!(
        verdict(&seen, "me", secs(3.0), t0 + secs(3.0)),
        Verdict::Acquirable
    );
}

#[test]
fn the_longer_of_own_and_recorded_lease_durations_applies() {
    let t0 = Instant::now();
    let seen = Observed::of(None, &lease(Some("1"), Some("other"), Some(30), None), t0);
    assert!(matches!(
        verdict(&seen, "me", secs(3.0), t0 + secs(10.0)),
        Verdict::HeldByOther { .. }
    ));
    let short = Observed::of(None, &lease(Some("1"), Some("other"), Some(1), None), t0);
    assert!(matches!(
        verdict(&short, "me", secs(3.0), t0 + secs(2.0)),
        Verdict::HeldByOther { .. }
    ));
}

#[test]
fn free_released_or_own_records_are_acquirable_at_once() {
    let t0 = Instant::now();
    for holder in [None, Some(""), Some("me")] {
        let seen = Observed::of(None, &lease(Some("1"), holder, Some(15), None), t0);
        assert_eq!(
            verdict(&seen, "me", secs(15.0), t0),
            Verdict::Acquirable,
            "{holder:?}"
        );
    }
}

#[test]
fn claiming_from_another_holder_counts_a_transition_and_resets_acquire_time() {
    let now = Timestamp::from_second(1_000).expect("timestamp");
    let taken = claimed(
        &lease(Some("7"), Some("other"), Some(15), Some(2)),
        "me",
        3,
        now,
    );
    let spec = taken.spec.as_ref().expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("me"));
    assert_eq!(spec.lease_transitions, Some(3));
    assert_eq!(spec.acquire_time, Some(MicroTime(now)));
    assert_eq!(spec.renew_time, Some(MicroTime(now)));
    assert_eq!(spec.lease_duration_seconds, Some(3));
    assert_eq!(taken.metadata.resource_version.as_deref(), Some("7"));
}

#[test]
fn renewing_keeps_acquire_time_and_transitions() {
    let now = Timestamp::from_second(1_000).expect("timestamp");
    let renewed = claimed(
        &lease(Some("7"), Some("me"), Some(3), Some(2)),
        "me",
        3,
        now,
    );
    let spec = renewed.spec.as_ref().expect("spec");
    assert_eq!(spec.lease_transitions, Some(2));
    assert_eq!(spec.acquire_time, Some(MicroTime(Timestamp::UNIX_EPOCH)));
    assert_eq!(spec.renew_time, Some(MicroTime(now)));
}

#[test]
fn a_new_lease_starts_with_zero_transitions() {
    let now = Timestamp::from_second(1_000).expect("timestamp");
    let fresh = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            ..ObjectMeta::default()
        },
        spec: None,
    };
    let created = claimed(&fresh, "me", 15, now);
    assert_eq!(
        created.spec.as_ref().and_then(|s| s.lease_transitions),
        Some(0)
    );
    assert_eq!(holder(&created), Some("me"));
}

#[test]
fn a_released_lease_has_no_holder() {
    let now = Timestamp::from_second(1_000).expect("timestamp");
    let out = released(&lease(Some("7"), Some("me"), Some(15), Some(2)), now);
    assert_eq!(holder(&out), None);
    assert_eq!(transitions(&out), 2);
    assert_eq!(out.metadata.resource_version.as_deref(), Some("7"));
    let seen = Observed::of(None, &out, Instant::now());
    assert_eq!(
        verdict(&seen, "other", secs(15.0), seen.at),
        Verdict::Acquirable
    );
}

#[test]
fn identity_is_pod_name_else_hostname_with_a_suffix() {
    assert_eq!(
        identity_from(Some("ako-0".into()), Some("node".into()), "x1"),
        "ako-0_x1"
    );
    assert_eq!(
        identity_from(Some(" ".into()), Some("node".into()), "x1"),
        "node_x1"
    );
    assert_eq!(identity_from(None, None, "x1"), "ako_x1");
    let a = default_identity();
    let b = default_identity();
    assert_ne!(a, b, "two replicas on one host must differ");
}

#[tokio::test]
async fn always_leads_until_it_steps_down() {
    let mut h = LeaderHandle::always();
    assert!(h.is_leader());
    assert_eq!(h.remaining(), Some(Duration::MAX));
    let first = tokio::time::timeout(secs(1.0), h.changed()).await;
    assert_eq!(first.ok(), Some(true));
    tokio::time::timeout(secs(1.0), h.wait_leader())
        .await
        .expect("already leader");
    let watcher = h.clone();
    h.step_down().await;
    assert!(!h.is_leader());
    assert!(!watcher.is_leader());
    let after = tokio::time::timeout(secs(1.0), h.changed()).await;
    assert_eq!(after.ok(), Some(false));
}
