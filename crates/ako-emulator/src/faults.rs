//! Fault injection (latency, error statuses, session expiry, dropped connections) and API call counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Faults applied to requests; settable by flags and `PUT /admin/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every non-admin request.
    pub latency_ms: u64,
    /// Probability (0..=1) per status among 500, 503, 429, 412 that an `/api` request fails with it.
    pub error_rates: BTreeMap<u16, f64>,
    /// `Retry-After` seconds sent with injected 429 and 503.
    pub retry_after_secs: u64,
    /// Deterministic: the next `/api` requests fail with these statuses, in order.
    pub fail_next: Vec<u16>,
    /// Sessions older than this are refused with 401.
    pub session_expiry_secs: Option<u64>,
    /// Probability that a request's connection is dropped without an answer.
    pub drop_rate: f64,
    /// Deterministic: drop the next N connections.
    pub drop_next: u32,
    /// Error rates and `fail_next` apply to writes only (POST, PUT, PATCH, DELETE): a controller that reads
    /// fine and refuses every change.
    pub writes_only: bool,
    /// Probability that a request waits `slow_ms` before it is processed (a client with a shorter timeout gives
    /// up, and the request may still be applied after it did).
    pub slow_rate: f64,
    pub slow_ms: u64,
}

/// The statuses that can be injected.
pub const INJECTABLE: &[u16] = &[500, 503, 429, 412];

impl Faults {
    /// Checks rates and statuses.
    pub fn validate(&self) -> Result<(), String> {
        for (status, rate) in &self.error_rates {
            if !INJECTABLE.contains(status) {
                return Err(format!(
                    "status {status} cannot be injected (allowed: {INJECTABLE:?})"
                ));
            }
            if !(0.0..=1.0).contains(rate) {
                return Err(format!("rate {rate} for {status} is not in 0..=1"));
            }
        }
        if let Some(s) = self.fail_next.iter().find(|s| !(400..=599).contains(*s)) {
            return Err(format!("fail_next status {s} is not an error status"));
        }
        if !(0.0..=1.0).contains(&self.drop_rate) {
            return Err(format!("drop_rate {} is not in 0..=1", self.drop_rate));
        }
        if !(0.0..=1.0).contains(&self.slow_rate) {
            return Err(format!("slow_rate {} is not in 0..=1", self.slow_rate));
        }
        Ok(())
    }

    /// The injected status for this request, if any (consumes `fail_next`). `roll` draws in 0..1.
    pub fn pick_error(&mut self, method: &str, mut roll: impl FnMut() -> f64) -> Option<u16> {
        if self.writes_only && matches!(method, "GET" | "HEAD") {
            return None;
        }
        if !self.fail_next.is_empty() {
            return Some(self.fail_next.remove(0));
        }
        for (status, rate) in &self.error_rates {
            // 412 only makes sense on writes that carry an object.
            if *status == 412 && !matches!(method, "PUT" | "PATCH") {
                continue;
            }
            if *rate > 0.0 && roll() < *rate {
                return Some(*status);
            }
        }
        None
    }

    /// The extra delay of this request, if it is one of the slow ones.
    pub fn pick_slow(&self, roll: impl FnOnce() -> f64) -> u64 {
        if self.slow_rate > 0.0 && roll() < self.slow_rate {
            self.slow_ms
        } else {
            0
        }
    }

    /// Whether to drop this connection (consumes `drop_next`).
    pub fn pick_drop(&mut self, roll: impl FnOnce() -> f64) -> bool {
        if self.drop_next > 0 {
            self.drop_next -= 1;
            return true;
        }
        self.drop_rate > 0.0 && roll() < self.drop_rate
    }
}

/// Parses `STATUS=RATE` (flag form of `error_rates`).
pub fn parse_error_rate(s: &str) -> Result<(u16, f64), String> {
    let (status, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected STATUS=RATE"))?;
    let status: u16 = status
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad status"))?;
    let rate: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad rate"))?;
    Ok((status, rate))
}

/// Counts of API calls by method and object type, and of the faults that actually fired.
#[derive(Debug, Default)]
pub struct Counters {
    inner: parking_lot::Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    fired: parking_lot::Mutex<FaultCounts>,
}

/// How often each fault fired (tests assert on these: a fault test must prove its fault happened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultCounts {
    /// Connections dropped without an answer.
    pub dropped: u64,
    /// Injected error answers by status.
    pub injected: BTreeMap<u16, u64>,
    /// Requests that presented an expired session (idle, `session_expiry_secs` or expired on demand).
    pub sessions_expired: u64,
    /// 401 answers for a missing, unknown or expired session.
    pub unauthenticated: u64,
}

/// A fault that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    Dropped,
    Injected(u16),
    SessionExpired,
    Unauthenticated,
}

/// Snapshot served by `GET /admin/counters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    pub total: u64,
    /// POST + PUT + PATCH + DELETE on object types.
    pub writes: u64,
    pub by_method: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default)]
    pub faults: FaultCounts,
}

impl CounterSnapshot {
    pub fn get(&self, method: &str, obj_type: &str) -> u64 {
        self.by_method
            .get(method)
            .and_then(|m| m.get(obj_type))
            .copied()
            .unwrap_or(0)
    }
}

impl Counters {
    pub fn count(&self, method: &str, obj_type: &str) {
        let mut inner = self.inner.lock();
        match inner.get_mut(method) {
            Some(m) => match m.get_mut(obj_type) {
                Some(n) => *n += 1,
                None => {
                    m.insert(obj_type.to_string(), 1);
                }
            },
            None => {
                inner.insert(
                    method.to_string(),
                    BTreeMap::from([(obj_type.to_string(), 1)]),
                );
            }
        }
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let by_method = self.inner.lock().clone();
        let total = by_method.values().flat_map(|m| m.values()).sum();
        let writes = by_method
            .iter()
            .filter(|(m, _)| matches!(m.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .flat_map(|(_, m)| {
                m.iter()
                    .filter(|(t, _)| !matches!(t.as_str(), "login" | "logout"))
                    .map(|(_, n)| n)
            })
            .sum();
        CounterSnapshot {
            total,
            writes,
            by_method,
            faults: self.fired.lock().clone(),
        }
    }

    /// Records that a fault fired.
    pub fn fired(&self, what: Fired) {
        let mut f = self.fired.lock();
        match what {
            Fired::Dropped => f.dropped += 1,
            Fired::Injected(status) => *f.injected.entry(status).or_default() += 1,
            Fired::SessionExpired => f.sessions_expired += 1,
            Fired::Unauthenticated => f.unauthenticated += 1,
        }
    }

    pub fn reset(&self) {
        self.inner.lock().clear();
        *self.fired.lock() = FaultCounts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_is_consumed_in_order_before_rates() {
        let mut f = Faults {
            fail_next: vec![503, 429],
            error_rates: BTreeMap::from([(500, 1.0)]),
            ..Default::default()
        };
        let picks: Vec<Option<u16>> = (0..3).map(|_| f.pick_error("GET", || 0.0)).collect();
        assert_eq!(picks, vec![Some(503), Some(429), Some(500)]);
    }

    #[test]
    fn injected_412_applies_to_put_and_patch_only() {
        let cases = [
            ("GET", None),
            ("POST", None),
            ("DELETE", None),
            ("PUT", Some(412)),
            ("PATCH", Some(412)),
        ];
        for (method, want) in cases {
            let mut f = Faults {
                error_rates: BTreeMap::from([(412, 1.0)]),
                ..Default::default()
            };
            assert_eq!(f.pick_error(method, || 0.5), want, "{method}");
        }
    }

    #[test]
    fn validation_rejects_unknown_statuses_and_bad_rates() {
        let cases = [
            (
                Faults {
                    error_rates: BTreeMap::from([(503, 0.5)]),
                    ..Default::default()
                },
                true,
            ),
            (
                Faults {
                    error_rates: BTreeMap::from([(404, 0.5)]),
                    ..Default::default()
                },
                false,
            ),
            (
                Faults {
                    error_rates: BTreeMap::from([(500, 1.5)]),
                    ..Default::default()
                },
                false,
            ),
            (
                Faults {
                    drop_rate: -0.1,
                    ..Default::default()
                },
                false,
            ),
            (
                Faults {
                    fail_next: vec![200],
                    ..Default::default()
                },
                false,
            ),
        ];
        for (f, ok) in cases {
            assert_eq!(f.validate().is_ok(), ok, "{f:?}");
        }
    }

    #[test]
    fn error_rate_flags_parse() {
        assert_eq!(parse_error_rate("503=0.25"), Ok((503, 0.25)));
        assert!(parse_error_rate("503").is_err());
        assert!(parse_error_rate("x=1").is_err());
    }

    #[test]
    fn counters_split_reads_and_writes() {
        let c = Counters::default();
        for (m, t) in [
            ("POST", "pool"),
            ("POST", "pool"),
            ("GET", "pool"),
            ("DELETE", "vsvip"),
            ("POST", "login"),
        ] {
            c.count(m, t);
        }
        for f in [
            Fired::Dropped,
            Fired::Injected(503),
            Fired::Injected(503),
            Fired::SessionExpired,
            Fired::Unauthenticated,
        ] {
            c.fired(f);
        }
        let s = c.snapshot();
        assert_eq!((s.total, s.writes, s.get("POST", "pool")), (5, 3, 2));
        assert_eq!(
            s.faults,
            FaultCounts {
                dropped: 1,
                injected: BTreeMap::from([(503, 2)]),
                sessions_expired: 1,
                unauthenticated: 1,
            }
        );
        c.reset();
        assert_eq!(c.snapshot(), CounterSnapshot::default());
    }
}
