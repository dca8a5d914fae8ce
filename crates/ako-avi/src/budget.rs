//! A budget of requests per second toward the controller, shared by every caller of one client: a token bucket
//! whose rate adapts (AIMD-style) to how the controller answers. An overload signal (429, 5xx, a transport error
//! or timeout) halves the rate, at most four times a second, down to a floor; each second without one doubles it
//! again, up to the ceiling. A controller answering 503 to everything therefore sees about `floor` requests per
//! second, whatever the number of Services retrying, and a healthy one gets the ceiling within seconds.

use std::time::{Duration, Instant};

/// Limits of a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLimits {
    /// Requests per second while the controller is healthy.
    pub ceiling: f64,
    /// Requests per second while it is overloaded or failing.
    pub floor: f64,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        Self {
            ceiling: 2000.0,
            floor: 2.0,
        }
    }
}

/// The shortest time between two cuts: a burst of failures answered together is one signal, not eight.
const CUT_SPACING: Duration = Duration::from_millis(250);
/// How long the controller must answer without overload before the rate doubles.
const GROWTH_PERIOD: Duration = Duration::from_secs(1);
/// The bucket holds this much time's worth of tokens (at least one).
const BURST: Duration = Duration::from_millis(100);
/// The longest a waiter sleeps before looking again.
const MAX_NAP: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct State {
    rate: f64,
    tokens: f64,
    refilled: Instant,
    last_cut: Option<Instant>,
    last_change: Instant,
}

/// The adaptive token bucket.
#[derive(Debug)]
pub struct Budget {
    limits: BudgetLimits,
    state: parking_lot::Mutex<State>,
}

impl Budget {
    pub fn new(limits: BudgetLimits) -> Self {
        let limits = BudgetLimits {
            ceiling: limits.ceiling.max(limits.floor).max(0.01),
            floor: limits.floor.max(0.01),
        };
        let now = Instant::now();
        Self {
            limits,
            state: parking_lot::Mutex::new(State {
                rate: limits.ceiling,
                tokens: burst(limits.ceiling),
                refilled: now,
                last_cut: None,
                last_change: now,
            }),
        }
    }

    /// The current rate (requests per second).
    pub fn rate(&self) -> f64 {
        self.state.lock().rate
    }

    /// Takes a token if there is one; otherwise says how long until there should be. Nothing is reserved: a
    /// waiter looks again after that time (at most a second), so a rate that grows meanwhile serves it sooner,
    /// and no debt piles up while the controller is down.
    pub fn try_take_at(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock();
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.refilled = s.refilled.max(now);
        s.tokens = (s.tokens + elapsed * s.rate).min(burst(s.rate));
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.tokens) / s.rate).min(MAX_NAP))
        }
    }

    /// Waits for a token; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let start = Instant::now();
        loop {
            match self.try_take_at(Instant::now()) {
                Ok(()) => return start.elapsed(),
                Err(nap) => tokio::time::sleep(nap.max(Duration::from_millis(1))).await,
            }
        }
    }

    /// The controller signalled overload (429, 5xx, transport error, timeout).
    pub fn overloaded(&self) {
        self.overloaded_at(Instant::now());
    }

    pub fn overloaded_at(&self, now: Instant) {
        let mut s = self.state.lock();
        if s.last_cut
            .is_some_and(|c| now.saturating_duration_since(c) < CUT_SPACING)
        {
            return;
        }
        s.rate = (s.rate / 2.0).max(self.limits.floor);
        s.tokens = s.tokens.min(burst(s.rate));
        s.last_cut = Some(now);
        s.last_change = now;
    }

    /// The controller answered without overload.
    pub fn answered(&self) {
        self.answered_at(Instant::now());
    }

    pub fn answered_at(&self, now: Instant) {
        let mut s = self.state.lock();
        if s.rate < self.limits.ceiling
            && now.saturating_duration_since(s.last_change) >= GROWTH_PERIOD
        {
            s.rate = (s.rate * 2.0).min(self.limits.ceiling);
            s.last_change = now;
        }
    }
}

fn burst(rate: f64) -> f64 {
    (rate * BURST.as_secs_f64()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn overload_halves_the_rate_down_to_the_floor_and_health_doubles_it_back() {
        let b = Budget::new(BudgetLimits {
            ceiling: 64.0,
            floor: 2.0,
        });
        let t0 = Instant::now();
        b.overloaded_at(t0);
        assert_eq!(b.rate(), 32.0);
        b.overloaded_at(t0 + ms(100));
        assert_eq!(b.rate(), 32.0, "failures answered together count once");
        for i in 1..20 {
            b.overloaded_at(t0 + ms(300 * i));
        }
        assert_eq!(b.rate(), 2.0, "never below the floor");
        b.answered_at(t0 + ms(300 * 19 + 500));
        assert_eq!(b.rate(), 2.0, "not before a second without overload");
        let mut t = t0 + ms(300 * 19);
        for _ in 0..10 {
            t += ms(1000);
            b.answered_at(t);
        }
        assert_eq!(b.rate(), 64.0, "back to the ceiling, never over it");
    }

    #[test]
    fn tokens_come_at_the_rate_and_a_waiter_is_told_when_to_look_again() {
        let b = Budget::new(BudgetLimits {
            ceiling: 10.0,
            floor: 1.0,
        });
        let t = Instant::now();
        assert_eq!(b.try_take_at(t), Ok(()), "one token in the bucket");
        let nap = b.try_take_at(t).expect_err("empty");
        assert!(nap.abs_diff(ms(100)) < ms(2), "{nap:?}");
        assert_eq!(b.try_take_at(t + ms(101)), Ok(()), "one more after 1/rate");
        // Ten seconds of tokens never pile up beyond the burst (one at this rate).
        assert_eq!(b.try_take_at(t + ms(10_000)), Ok(()));
        assert!(b.try_take_at(t + ms(10_000)).is_err());
    }

    #[test]
    fn at_the_floor_callers_share_two_requests_a_second() {
        let b = Budget::new(BudgetLimits {
            ceiling: 1000.0,
            floor: 2.0,
        });
        let t = Instant::now();
        for i in 0..12 {
            b.overloaded_at(t + ms(300 * i));
        }
        assert_eq!(b.rate(), 2.0);
        // 1,000 callers trying every 10 ms for ten seconds get about 20 tokens.
        let mut granted = 0;
        let start = t + ms(300 * 12);
        for step in 0..1000u64 {
            for _ in 0..1000 {
                if b.try_take_at(start + ms(10 * step)).is_ok() {
                    granted += 1;
                }
            }
        }
        assert!(
            (19..=22).contains(&granted),
            "{granted} requests in 10 s at 2/s"
        );
    }
}
