//! Retries of failed groups: which failures are worth retrying soon, which need someone to change something, and
//! when each group is tried again.
//!
//! - Every failure backs off: exponential from `retry_base`, doubling, with up to 100 % jitter (backon), never
//!   over `retry_max`; a controller's `Retry-After` is a minimum (the longer of the two wins).
//! - A failure a user must fix ([`Remedy::Controller`], [`Remedy::Kubernetes`]) starts on a slow cadence
//!   ([`SLOW_START`]) and is also retried when one of the group's inputs changes (the change passes the group).
//! - The attempt count of a group survives its passes and is forgotten only when a pass of the group succeeds,
//!   so a group failing again and again waits longer and longer.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use ako_avi::AviError;

/// What it takes for a failed write to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Remedy {
    /// Time: the controller is busy, restarting, unreachable, or asked to come back later.
    Transient,
    /// A change on the Avi controller: a network with free addresses, a missing VRF or cloud, an object of
    /// someone else renamed, credentials or permissions.
    Controller,
    /// A change in Kubernetes: the controller refused what a Service or Ingress asks for (an address outside the
    /// network, a value it does not accept).
    Kubernetes,
}

impl Remedy {
    /// The Event reason announcing a failure of this class.
    pub fn reason(self) -> &'static str {
        match self {
            Remedy::Transient => "AviError",
            Remedy::Controller => "AviConfigurationNeeded",
            Remedy::Kubernetes => "AviRejectedSpec",
        }
    }

    /// The label of this class in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Remedy::Transient => "transient",
            Remedy::Controller => "controller",
            Remedy::Kubernetes => "kubernetes",
        }
    }
}

/// Classifies an error of the Avi client.
pub fn classify(error: &AviError) -> Remedy {
    match error {
        AviError::Transport { .. }
        | AviError::RetryAfterTooLong { .. }
        | AviError::OutcomeUnknown { .. }
        | AviError::Decode { .. }
        | AviError::MissingUuid { .. }
        | AviError::ConflictNotFound { .. }
        | AviError::Fenced => Remedy::Transient,
        AviError::Login { status, .. } if *status >= 500 || *status == 429 => Remedy::Transient,
        AviError::Login { .. } | AviError::Config(_) | AviError::Conflict { .. } => {
            Remedy::Controller
        }
        AviError::Status {
            status, message, ..
        } => classify_status(*status, message),
    }
}

/// Classifies a controller answer by status and message (avi-api.md §2.9, and what AKO treats as slow retries).
pub fn classify_status(status: u16, message: &str) -> Remedy {
    let says = |s: &str| message.contains(s);
    match status {
        408 | 412 | 429 | 500..=599 => Remedy::Transient,
        403 if says("Configuration is disallowed during upgrade") => Remedy::Transient,
        // Things only an administrator of the controller can fix: capacity and placement.
        400 if says("No available free IPs")
            || says("not found")
            || says("does not exist")
            || says("License") =>
        {
            Remedy::Controller
        }
        401 | 403 | 409 => Remedy::Controller,
        // Anything else the controller refuses is about what ako asked for, which comes from a Service or an
        // Ingress: changing it is the way out.
        _ => Remedy::Kubernetes,
    }
}

/// Whether the controller says the VIP network has no free address.
pub fn is_ipam_exhausted(error: &AviError) -> bool {
    error
        .message()
        .is_some_and(|m| m.contains("No available free IPs"))
}

/// The first delay of a failure a user must fix: a minute, then doubling up to the cap.
pub const SLOW_START: Duration = Duration::from_secs(60);

/// One group's failures.
#[derive(Debug)]
struct Entry {
    /// Failures in a row.
    attempts: u32,
    /// When the group is due again; `None` while a pass of it runs or after an input change passed it.
    due: Option<Instant>,
    /// The delay chosen at the last failure.
    delay: Duration,
    remedy: Remedy,
    /// The delays of this run of failures.
    schedule: ExponentialBackoff,
}

/// The failed groups, with when each is tried again.
#[derive(Debug)]
pub struct Retries<G> {
    base: Duration,
    max: Duration,
    entries: HashMap<G, Entry>,
}

impl<G: Clone + Eq + Hash> Retries<G> {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            entries: HashMap::new(),
        }
    }

    fn schedule(&self, first: Duration) -> ExponentialBackoff {
        Self::builder(self.base, self.max, first).build()
    }

    /// Delays from `first` doubling up to `max`. With up to 100 % jitter added to each delay, the unjittered
    /// delay starts at half of `first` and stops at half the cap: delays at the cap are spread over [max/2, max),
    /// so groups that failed together do not come back together.
    fn builder(_base: Duration, max: Duration, first: Duration) -> ExponentialBuilder {
        let first = first.min(max);
        ExponentialBuilder::default()
            .with_min_delay((first / 2).max(Duration::from_millis(1)))
            .with_max_delay((max / 2).max(first / 2))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }

    /// Records a failure of `group` now; returns the delay before it is tried again. `retry_after` (the
    /// controller's) is a minimum.
    pub fn failed(&mut self, group: &G, remedy: Remedy, retry_after: Option<Duration>) -> Duration {
        self.failed_at(group, remedy, retry_after, Instant::now())
    }

    pub fn failed_at(
        &mut self,
        group: &G,
        remedy: Remedy,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Duration {
        let first = match remedy {
            Remedy::Transient => self.base,
            Remedy::Controller | Remedy::Kubernetes => SLOW_START.max(self.base),
        };
        let builder = |base: Duration, max: Duration| Self::builder(base, max, first);
        let (base, max) = (self.base, self.max);
        let entry = self.entries.entry(group.clone()).or_insert_with(|| Entry {
            attempts: 0,
            due: None,
            delay: Duration::ZERO,
            remedy,
            schedule: builder(base, max).build(),
        });
        if entry.remedy != remedy {
            // A failure of another class starts its own schedule (a transient error after an exhausted network
            // is not worth waiting minutes for), keeping the count.
            entry.schedule = builder(base, max).build();
            entry.remedy = remedy;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        let backoff = entry.schedule.next().unwrap_or(self.max).min(self.max);
        let delay = retry_after.map_or(backoff, |ra| ra.max(backoff));
        entry.delay = delay;
        entry.due = Some(now + delay);
        delay
    }

    /// Schedules `group` for `at` (a status write to repeat) without counting a failure; an earlier due time
    /// stays.
    pub fn retry_at(&mut self, group: &G, at: Instant) {
        match self.entries.get_mut(group) {
            Some(e) => e.due = Some(e.due.map_or(at, |d| d.min(at))),
            None => {
                let schedule = self.schedule(self.base);
                self.entries.insert(
                    group.clone(),
                    Entry {
                        attempts: 0,
                        due: Some(at),
                        delay: Duration::ZERO,
                        remedy: Remedy::Transient,
                        schedule,
                    },
                );
            }
        }
    }

    /// A pass of `group` starts: it is no longer due (its failures are still counted).
    pub fn started(&mut self, group: &G) {
        if let Some(e) = self.entries.get_mut(group) {
            e.due = None;
        }
    }

    /// A pass of `group` succeeded: its failures are forgotten.
    pub fn succeeded(&mut self, group: &G) {
        self.entries.remove(group);
    }

    /// Failures in a row of `group`.
    pub fn attempts(&self, group: &G) -> u32 {
        self.entries.get(group).map_or(0, |e| e.attempts)
    }

    /// The most failures in a row of any group.
    pub fn max_attempts(&self) -> u32 {
        self.entries.values().map(|e| e.attempts).max().unwrap_or(0)
    }

    /// The groups due at `now`.
    pub fn due(&self, now: Instant) -> Vec<G> {
        self.entries
            .iter()
            .filter(|(_, e)| e.due.is_some_and(|d| d <= now))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// The earliest due time.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.due).min()
    }

    /// Groups waiting for a retry.
    pub fn waiting(&self) -> usize {
        self.entries.values().filter(|e| e.due.is_some()).count()
    }

    /// The longest delay now scheduled.
    pub fn longest_delay(&self) -> Duration {
        self.entries
            .values()
            .filter(|e| e.due.is_some())
            .map(|e| e.delay)
            .max()
            .unwrap_or_default()
    }

    /// Forgets every group (a full sync passes them all).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Whether `group` waits for a retry.
    pub fn is_waiting(&self, group: &G) -> bool {
        self.entries.get(group).is_some_and(|e| e.due.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, message: &str) -> AviError {
        AviError::Status {
            method: "POST".into(),
            path: "/api/vsvip".into(),
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    #[test]
    fn errors_are_classified_by_what_it_takes_to_fix_them() {
        let cases: &[(AviError, Remedy)] = &[
            (status(503, ""), Remedy::Transient),
            (status(500, "record not found"), Remedy::Transient),
            (status(429, "Too many requests"), Remedy::Transient),
            (
                status(412, "Need to reload object data VsVip"),
                Remedy::Transient,
            ),
            (
                status(403, "Configuration is disallowed during upgrade"),
                Remedy::Transient,
            ),
            (status(400, "No available free IPs"), Remedy::Controller),
            (
                status(400, "VrfContext object not found!"),
                Remedy::Controller,
            ),
            (status(403, "Forbidden"), Remedy::Controller),
            (
                status(400, "Invalid IP address 10.99.0.7: not in subnet"),
                Remedy::Kubernetes,
            ),
            (status(400, "Invalid field"), Remedy::Kubernetes),
            (AviError::Fenced, Remedy::Transient),
            (
                AviError::Login {
                    status: 401,
                    message: "Invalid credentials".into(),
                },
                Remedy::Controller,
            ),
            (
                AviError::Login {
                    status: 503,
                    message: String::new(),
                },
                Remedy::Transient,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(classify(error), *want, "{error}");
        }
    }

    #[test]
    fn a_group_failing_again_and_again_waits_longer_each_time_up_to_the_cap() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(300);
        let mut r: Retries<&str> = Retries::new(base, max);
        let now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..14 {
            r.started(&"g");
            delays.push(r.failed_at(&"g", Remedy::Transient, None, now));
        }
        assert_eq!(r.attempts(&"g"), 14, "the count survives the passes");
        // Each delay is within [d/2 .. d) of the unjittered doubling sequence 500 ms, 1 s, 2 s, ... capped.
        for (i, d) in delays.iter().enumerate() {
            let nominal = base.saturating_mul(1 << i.min(20)).min(max);
            assert!(
                *d >= nominal / 2 && *d <= nominal,
                "attempt {}: {d:?} not in [{:?}, {nominal:?}]",
                i + 1,
                nominal / 2
            );
        }
        assert!(delays[13] >= max / 2, "at the cap: {:?}", delays[13]);
        r.succeeded(&"g");
        assert_eq!(r.attempts(&"g"), 0, "a success forgets the failures");
        let again = r.failed_at(&"g", Remedy::Transient, None, now);
        assert!(again <= base, "a new run starts from the base: {again:?}");
    }

    #[test]
    fn retry_after_is_a_minimum_and_failures_a_user_must_fix_start_slow() {
        let mut r: Retries<&str> =
            Retries::new(Duration::from_millis(500), Duration::from_secs(300));
        let now = Instant::now();
        let d = r.failed_at(&"a", Remedy::Transient, Some(Duration::from_secs(7)), now);
        assert_eq!(
            d,
            Duration::from_secs(7),
            "the controller's Retry-After wins when longer"
        );
        let d = r.failed_at(&"b", Remedy::Transient, Some(Duration::from_millis(1)), now);
        assert!(
            d >= Duration::from_millis(250),
            "the backoff wins when longer: {d:?}"
        );
        let d = r.failed_at(&"c", Remedy::Controller, None, now);
        assert!(
            d >= SLOW_START / 2 && d <= SLOW_START,
            "an exhausted network is retried on a slow cadence: {d:?}"
        );
        let mut due = r.due(now + Duration::from_secs(8));
        due.sort();
        assert_eq!(due, ["a", "b"], "the slow one is not due yet");
    }

    #[test]
    fn jitter_spreads_groups_that_failed_together() {
        let mut r: Retries<u32> =
            Retries::new(Duration::from_millis(500), Duration::from_secs(300));
        let now = Instant::now();
        let mut at_cap: Vec<Duration> = Vec::new();
        for g in 0..50 {
            let mut d = Duration::ZERO;
            for _ in 0..15 {
                d = r.failed_at(&g, Remedy::Transient, None, now);
            }
            at_cap.push(d);
        }
        at_cap.sort();
        assert!(
            at_cap[49] - at_cap[0] > Duration::from_secs(30),
            "50 groups at the cap come back spread out: {:?} .. {:?}",
            at_cap[0],
            at_cap[49]
        );
    }
}
