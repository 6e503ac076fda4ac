//! Refusals an isolate remembers, so that a client hammering past its limit stops costing a
//! round trip to the exact limiter (a Durable Object call per request, which also counts
//! against the object's own throughput) for every request it is refused.
//!
//! Remembering a refusal keeps the limiter exact. A refusal consumes nothing, and every
//! request of a key costs one unit, so once the limiter refused a request of that key,
//! it refuses every request of it until its `retry_after_ms` has passed: no other
//! request can be admitted meanwhile, in this isolate or any other. The refusal is remembered
//! from when the question was *asked*, which is no later than when the limiter answered, so
//! the remembered window ends no later than the limiter's; past it, the limiter is asked again.
//! Durations are measured on this isolate's clock alone; a clock that went backwards forgets.
//!
//! ```
//! use gateway_core::ratelimit::decide::{Decision, RuleStatus};
//! use gateway_core::ratelimit::refusals::Refusals;
//! let refusals = Refusals::default();
//! let refused = Decision { allowed: false, rules: vec![RuleStatus { remaining: 0, reset_ms: 5_000 }], retry_after_ms: 800 };
//! refusals.learn("rl:api|203.0.113.7", 10_000, &refused);
//! let again = refusals.recall("rl:api|203.0.113.7", 10_300).expect("still refused");
//! assert_eq!((again.allowed, again.retry_after_ms, again.rules[0].reset_ms), (false, 500, 4_700));
//! assert_eq!(refusals.recall("rl:api|198.51.100.1", 10_300), None, "another key asks the limiter");
//! assert_eq!(refusals.recall("rl:api|203.0.113.7", 10_800), None, "the window is over: ask again");
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::decide::{Decision, RuleStatus};
use crate::ports::UnixMillis;

/// The refusals of one isolate, by counting key.
#[derive(Debug, Default)]
pub struct Refusals {
    by_key: Mutex<HashMap<Box<str>, Refusal>>,
}

#[derive(Debug)]
struct Refusal {
    asked_at: UnixMillis,
    until: UnixMillis,
    rules: Vec<RuleStatus>,
}

impl Refusals {
    /// At most this many keys are remembered: past it, expired refusals are dropped, and a new
    /// one is not remembered while none has expired (the limiter is then asked, as without).
    pub const CAPACITY: usize = 4096;

    fn by_key(&self) -> MutexGuard<'_, HashMap<Box<str>, Refusal>> {
        self.by_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The limiter's refusal of `key` at `now`, if one asked at or before `now` still holds:
    /// its `RateLimit` statuses and `Retry-After` counted down by the time passed since.
    pub fn recall(&self, key: &str, now: UnixMillis) -> Option<Decision> {
        let mut by_key = self.by_key();
        if by_key.is_empty() {
            return None;
        }
        let refusal = by_key.get(key)?;
        if now < refusal.asked_at || now >= refusal.until {
            by_key.remove(key);
            return None;
        }
        let passed = now - refusal.asked_at;
        let rules = refusal
            .rules
            .iter()
            .map(|status| RuleStatus { remaining: status.remaining, reset_ms: status.reset_ms.saturating_sub(passed) })
            .collect();
        Some(Decision { allowed: false, rules, retry_after_ms: refusal.until - now })
    }

    /// What the limiter answered for `key` to a question asked at `asked_at`: a refusal is
    /// remembered for its `retry_after_ms`; an admission forgets any refusal of the key.
    pub fn learn(&self, key: &str, asked_at: UnixMillis, decision: &Decision) {
        let mut by_key = self.by_key();
        if decision.allowed || decision.retry_after_ms == 0 {
            if !by_key.is_empty() {
                by_key.remove(key);
            }
            return;
        }
        let until = asked_at.saturating_add(decision.retry_after_ms);
        if let Some(known) = by_key.get_mut(key) {
            // Concurrent questions answer out of order: the later window holds.
            if until > known.until {
                *known = Refusal { asked_at, until, rules: decision.rules.clone() };
            }
            return;
        }
        if !crate::isolate::make_room(&mut by_key, Self::CAPACITY, |refusal| {
            asked_at >= refusal.asked_at && asked_at < refusal.until
        }) {
            return;
        }
        by_key.insert(key.into(), Refusal { asked_at, until, rules: decision.rules.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(retry_after_ms: u64) -> Decision {
        Decision { allowed: false, rules: vec![RuleStatus { remaining: 0, reset_ms: 2_000 }], retry_after_ms }
    }

    #[test]
    fn a_refusal_holds_from_when_it_was_asked_until_its_retry_after() {
        let refusals = Refusals::default();
        refusals.learn("k", 1_000, &refused(500));
        // (now, still refused, retry-after, reset)
        let table: [(u64, Option<(u64, u64)>); 5] = [
            (1_000, Some((500, 2_000))),
            (1_200, Some((300, 1_800))),
            (1_499, Some((1, 1_501))),
            (1_500, None),
            (1_200, None),
        ];
        for (now, expected) in table {
            let got = refusals.recall("k", now).map(|d| (d.retry_after_ms, d.rules[0].reset_ms));
            assert_eq!(got, expected, "at {now}");
        }
    }

    #[test]
    fn a_clock_that_went_backwards_forgets() {
        let refusals = Refusals::default();
        refusals.learn("k", 1_000, &refused(500));
        assert_eq!(refusals.recall("k", 999), None);
        assert_eq!(refusals.recall("k", 1_100), None, "forgotten, not restored");
    }

    #[test]
    fn an_admission_forgets_and_the_later_window_of_two_answers_holds() {
        let refusals = Refusals::default();
        refusals.learn("k", 1_000, &refused(500));
        refusals.learn("k", 900, &refused(100));
        assert_eq!(refusals.recall("k", 1_400).map(|d| d.retry_after_ms), Some(100));
        let admitted = Decision { allowed: true, rules: Vec::new(), retry_after_ms: 0 };
        refusals.learn("k", 1_400, &admitted);
        assert_eq!(refusals.recall("k", 1_400), None);
        refusals.learn("k", 1_400, &refused(0));
        assert_eq!(refusals.recall("k", 1_400), None, "nothing to wait for, nothing remembered");
    }

    #[test]
    fn past_its_capacity_it_drops_expired_refusals_and_otherwise_asks() {
        let refusals = Refusals::default();
        for i in 0..Refusals::CAPACITY {
            refusals.learn(&format!("k{i}"), 0, &refused(if i == 0 { 10 } else { 1_000 }));
        }
        refusals.learn("late", 20, &refused(1_000));
        assert!(refusals.recall("late", 20).is_some(), "k0 had expired and made room");
        assert!(refusals.recall("k0", 20).is_none());
        refusals.learn("later", 30, &refused(1_000));
        assert!(refusals.recall("later", 30).is_none(), "full of live refusals: not remembered");
        assert!(refusals.recall("k1", 30).is_some(), "and none of them dropped");
    }
}
