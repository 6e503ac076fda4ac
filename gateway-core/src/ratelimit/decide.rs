//! The rate-limit decision: a pure function from (rules, stored state, time, cost) to
//! (decision, new state). No IO and no clock: the platform's limiter loads the state of one
//! key, calls [`decide`], and stores the returned state, atomically per key.
//!
//! # GCRA
//!
//! A [`Rule::Gcra`] is the Generic Cell Rate Algorithm, a leaky bucket kept as one number:
//! the *theoretical arrival time* (TAT), the instant at which the bucket would be empty again
//! if nothing else arrived. With `rate` requests per `period_ms`, each request pushes the TAT
//! one emission interval `T = period_ms / rate` ms further; a request is allowed while the
//! TAT stays within the burst tolerance `burst * T` of now:
//!
//! ```text
//! new_tat = max(tat, now) + cost * T
//! allowed = new_tat - now <= burst * T
//! ```
//!
//! `T` is rarely a whole number of ms (3 per second is 333.3… ms), so all arithmetic is done
//! in units of `1/rate` ms, in which `T` is exactly `period_ms` units and `now` is
//! `now_ms * rate` units (`u128`: no product of two `u64` overflows). Nothing is rounded, so
//! nothing drifts: over `k` periods a client that always retries when told admits exactly
//! `burst + k * rate` requests, however long it runs.
//!
//! The TAT is stored rate-independently, as whole ms plus a remainder in `1/rate` ms
//! ([`Slot::Tat`]): the numbers stay below 2^53 (safe in JavaScript), and a policy whose rate
//! changes keeps the meaning of the time it stored.
//!
//! # Quotas
//!
//! A [`Rule::Quota`] counts requests in a UTC calendar window ([`window_bounds`]); the count
//! starts again from zero in each new window.
//!
//! # All or nothing
//!
//! A request is allowed only if every rule allows it, and only then do the rules consume;
//! a denial returns the state unchanged. A denied request therefore never uses up capacity
//! of another rule (a client stopped by its per-second limit does not burn its daily quota),
//! and every allowed request is counted by every rule. Because each decision is a function
//! of the state the previous one stored, a limiter that applies `decide` atomically per key
//! (a Durable Object, a compare-and-swap loop) serializes concurrent requests: N concurrent
//! requests against a limit of L admit exactly L, never more (no lost update) and never
//! fewer (no capacity consumed by a request that was turned away).

use serde::{Deserialize, Serialize};

/// Milliseconds in a minute, an hour, a day.
const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// One rule of a policy. All rules of a policy are checked together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// GCRA: `rate` requests per `period_ms`, allowing bursts of up to `burst` requests.
    ///
    /// `rate` 0 denies everything; `period_ms` 0 is an unbounded rate (allows everything);
    /// a request whose cost exceeds `burst` is never allowed.
    Gcra {
        /// Requests per period.
        rate: u64,
        /// The period, in ms.
        period_ms: u64,
        /// The most requests admitted at once from a full bucket.
        burst: u64,
    },
    /// A quota of `limit` requests per UTC calendar window. `limit` 0 denies everything.
    Quota {
        /// Requests per window.
        limit: u64,
        /// The calendar window.
        window: Window,
    },
}

/// A UTC calendar window, aligned to its boundaries: the start of the minute, the hour, the
/// day, or the 1st of the month at 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// A UTC minute.
    Minute,
    /// A UTC hour.
    Hour,
    /// A UTC day, from 00:00.
    Day,
    /// A calendar month, from the 1st at 00:00 UTC.
    Month,
}

/// Stored state of one key under one policy: one slot per rule, in rule order.
///
/// Serialized as compact JSON, e.g. `{"slots":[[1741996800100,2],{"window_start":1741996800000,"used":3}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct State {
    /// The slots, in rule order.
    pub slots: Vec<Slot>,
}

/// The stored state of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Slot {
    /// GCRA theoretical arrival time `ms + frac / rate` ms: whole Unix ms, then the remainder
    /// in units of `1/rate` ms (`frac < rate`). JSON: `[ms, frac]`.
    Tat(u64, u64),
    /// Quota: the window's start (Unix ms) and the count used in it.
    Count {
        /// Start of the window the count belongs to (Unix ms).
        window_start: u64,
        /// Requests counted in that window.
        used: u64,
    },
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the request may proceed (every rule allowed it).
    pub allowed: bool,
    /// Per rule, in rule order: what the RateLimit header reports.
    pub rules: Vec<RuleStatus>,
    /// When denied: ms until a retry can succeed (the max over the denying rules); 0 when allowed.
    pub retry_after_ms: u64,
}

/// What one rule reports after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// Requests still allowed right now under this rule after this decision.
    pub remaining: u64,
    /// ms until this rule is fully reset (GCRA: bucket full again; quota: the window's end).
    pub reset_ms: u64,
}

/// One rule's verdict.
struct Verdict {
    allowed: bool,
    /// The status if the request is admitted (this rule and all the others allowed it).
    after: RuleStatus,
    /// The status if it is not: nothing consumed.
    unchanged: RuleStatus,
    /// ms until a retry can succeed under this rule, when denied.
    retry_after_ms: u64,
    /// The rule's slot after consuming, used only when every rule allowed.
    consumed: Slot,
}

/// Decides one request of `cost` (normally >= 1; 0 is a probe that consumes nothing) at
/// `now_ms`: allowed only if EVERY rule allows it; then all rules consume. If any rule denies,
/// NO rule consumes and the state is returned unchanged (an empty state when there was none) —
/// this is what makes "N concurrent requests against limit L → exactly L succeed" hold when
/// the caller applies the returned state atomically.
///
/// A state whose slot count or slot kinds do not match `rules` (the policy changed since it
/// was stored) is treated as fresh for the mismatching slots; an allowed request returns a
/// state with exactly one slot per rule. Never panics; a rule with rate 0 / limit 0 denies
/// everything with `retry_after_ms` = the period / the rest of the window.
pub fn decide(rules: &[Rule], state: Option<&State>, now_ms: u64, cost: u64) -> (Decision, State) {
    let verdicts: Vec<Verdict> = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let slot = state.and_then(|s| s.slots.get(i));
            match *rule {
                Rule::Gcra { rate, period_ms, burst } => gcra(rate, period_ms, burst, slot, now_ms, cost),
                Rule::Quota { limit, window } => quota(limit, window, slot, now_ms, cost),
            }
        })
        .collect();
    let allowed = verdicts.iter().all(|v| v.allowed);
    let retry_after_ms =
        if allowed { 0 } else { verdicts.iter().filter(|v| !v.allowed).map(|v| v.retry_after_ms).max().unwrap_or(0) };
    let rules = verdicts.iter().map(|v| if allowed { v.after } else { v.unchanged }).collect();
    let decision = Decision { allowed, rules, retry_after_ms };
    let next = if allowed {
        State { slots: verdicts.iter().map(|v| v.consumed).collect() }
    } else {
        state.cloned().unwrap_or_default()
    };
    (decision, next)
}

/// `u128` → `u64`, saturating.
fn saturate(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// One GCRA rule (see the module docs); every quantity in units of `1/rate` ms.
fn gcra(rate: u64, period_ms: u64, burst: u64, slot: Option<&Slot>, now_ms: u64, cost: u64) -> Verdict {
    let fresh = Slot::Tat(now_ms, 0);
    if rate == 0 {
        // No request is ever allowed: report an empty bucket, retry after a period.
        let status = RuleStatus { remaining: 0, reset_ms: period_ms };
        return Verdict {
            allowed: false,
            after: status,
            unchanged: status,
            retry_after_ms: period_ms.max(1),
            consumed: fresh,
        };
    }
    if period_ms == 0 {
        // An unbounded rate: the bucket refills instantly.
        let status = RuleStatus { remaining: burst, reset_ms: 0 };
        return Verdict { allowed: true, after: status, unchanged: status, retry_after_ms: 0, consumed: fresh };
    }
    let rate = u128::from(rate);
    let interval = u128::from(period_ms); // T, exact in these units
    let tolerance = u128::from(burst).saturating_mul(interval);
    let now = u128::from(now_ms).saturating_mul(rate);
    let tat = match slot {
        // `frac` is clamped in case the rate changed since the slot was stored.
        Some(&Slot::Tat(ms, frac)) => {
            u128::from(ms).saturating_mul(rate).saturating_add(u128::from(frac).min(rate.saturating_sub(1)))
        }
        _ => 0, // fresh: any time not after now
    };
    let backlog = tat.saturating_sub(now); // max(tat, now) - now
    let new_backlog = backlog.saturating_add(u128::from(cost).saturating_mul(interval));
    let status = |backlog: u128| RuleStatus {
        remaining: saturate(tolerance.saturating_sub(backlog) / interval),
        reset_ms: saturate(backlog.div_ceil(rate)),
    };
    let unchanged = status(backlog);
    if new_backlog <= tolerance {
        let new_tat = now.saturating_add(new_backlog);
        let consumed = Slot::Tat(saturate(new_tat / rate), saturate(new_tat % rate));
        Verdict { allowed: true, after: status(new_backlog), unchanged, retry_after_ms: 0, consumed }
    } else {
        // new_backlog > tolerance, so this is at least 1 ms.
        let retry_after_ms = saturate((new_backlog - tolerance).div_ceil(rate));
        Verdict { allowed: false, after: unchanged, unchanged, retry_after_ms, consumed: fresh }
    }
}

/// One quota rule.
fn quota(limit: u64, window: Window, slot: Option<&Slot>, now_ms: u64, cost: u64) -> Verdict {
    let (start, end) = window_bounds(window, now_ms);
    let used = match slot {
        Some(&Slot::Count { window_start, used }) if window_start == start => used,
        _ => 0, // another window, or no count yet
    };
    let reset_ms = end.saturating_sub(now_ms);
    let unchanged = RuleStatus { remaining: limit.saturating_sub(used), reset_ms };
    match used.checked_add(cost).filter(|&after| after <= limit && limit > 0) {
        Some(after) => Verdict {
            allowed: true,
            after: RuleStatus { remaining: limit - after, reset_ms },
            unchanged,
            retry_after_ms: 0,
            consumed: Slot::Count { window_start: start, used: after },
        },
        None => Verdict {
            allowed: false,
            after: unchanged,
            unchanged,
            retry_after_ms: reset_ms.max(1),
            consumed: Slot::Count { window_start: start, used },
        },
    }
}

/// Start (Unix ms) of the UTC window containing `now_ms`, and of the next one (saturating
/// at `u64::MAX` past the last representable window).
pub fn window_bounds(window: Window, now_ms: u64) -> (u64, u64) {
    let fixed = |len: u64| {
        let start = now_ms - now_ms % len;
        (start, start.saturating_add(len))
    };
    match window {
        Window::Minute => fixed(MINUTE_MS),
        Window::Hour => fixed(HOUR_MS),
        Window::Day => fixed(DAY_MS),
        Window::Month => {
            let days = now_ms / DAY_MS;
            let (year, month, day) = civil_from_days(days);
            let first = days - (day - 1);
            let next = first.saturating_add(days_in_month(year, month));
            (first * DAY_MS, next.saturating_mul(DAY_MS))
        }
    }
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (never negative here, so in
/// unsigned arithmetic): the proleptic Gregorian (year, month 1..=12, day 1..=31).
/// Bounded: `days <= u64::MAX / DAY_MS` (about 2^38), so no step overflows.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097; // 400-year eras
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn gcra_rule(rate: u64, period_ms: u64, burst: u64) -> Rule {
        Rule::Gcra { rate, period_ms, burst }
    }

    fn quota_rule(limit: u64, window: Window) -> Rule {
        Rule::Quota { limit, window }
    }

    /// A key's storage: applies every returned state, as an atomic limiter would.
    struct Key {
        rules: Vec<Rule>,
        state: Option<State>,
    }

    impl Key {
        fn new(rules: Vec<Rule>) -> Self {
            Self { rules, state: None }
        }

        fn hit(&mut self, now_ms: u64, cost: u64) -> Decision {
            let before = self.state.clone();
            let (decision, state) = decide(&self.rules, self.state.as_ref(), now_ms, cost);
            if !decision.allowed {
                assert_eq!(state, before.unwrap_or_default(), "a denial must not change the state");
                assert!(decision.retry_after_ms >= 1, "a denial says when to retry");
            } else {
                assert_eq!(decision.retry_after_ms, 0);
                assert_eq!(state.slots.len(), self.rules.len());
            }
            assert_eq!(decision.rules.len(), self.rules.len());
            self.state = Some(state);
            decision
        }
    }

    /// (t, cost, allowed, remaining, reset_ms, retry_after_ms) for a single-rule key.
    type Step = (u64, u64, bool, u64, u64, u64);

    fn run_steps(key: &mut Key, steps: &[Step]) {
        for (i, &(t, cost, allowed, remaining, reset_ms, retry)) in steps.iter().enumerate() {
            let d = key.hit(t, cost);
            assert_eq!(
                (d.allowed, d.rules[0].remaining, d.rules[0].reset_ms, d.retry_after_ms),
                (allowed, remaining, reset_ms, retry),
                "step {i} at t={t} cost={cost}"
            );
        }
    }

    #[test]
    fn burst_then_refill() {
        let mut key = Key::new(vec![gcra_rule(10, 1000, 10)]);
        let mut steps: Vec<Step> = (0..10).map(|i| (0, 1, true, 9 - i, 100 * (i + 1), 0)).collect();
        steps.extend([
            (0, 1, false, 0, 1000, 100), // the 11th: one emission interval to wait
            (99, 1, false, 0, 901, 1),   // not yet
            (100, 1, true, 0, 1000, 0),  // one more token refilled
            (100, 1, false, 0, 1000, 100),
            (1100, 1, true, 9, 100, 0), // full again 1000 ms after the last request
        ]);
        run_steps(&mut key, &steps);

        // Without the extra request at t=100 the bucket is full again at t=1000 (not quite at 999).
        for (t, remaining, reset_ms) in [(1000, 9, 100), (999, 8, 101), (5000, 9, 100)] {
            let mut key = Key::new(vec![gcra_rule(10, 1000, 10)]);
            for _ in 0..10 {
                assert!(key.hit(0, 1).allowed);
            }
            run_steps(&mut key, &[(t, 1, true, remaining, reset_ms, 0)]);
        }
    }

    #[test]
    fn fractional_intervals_are_exact() {
        // 3 per second, burst 3: T = 333.3… ms, so after the burst requests pass at exactly
        // ceil(k * 333.3…) ms: 334, 667, 1000, 1334, … with no rounding carried over.
        let mut key = Key::new(vec![gcra_rule(3, 1000, 3)]);
        run_steps(
            &mut key,
            &[
                (0, 1, true, 2, 334, 0),
                (0, 1, true, 1, 667, 0),
                (0, 1, true, 0, 1000, 0),
                (0, 1, false, 0, 1000, 334),
                (333, 1, false, 0, 667, 1),
                (334, 1, true, 0, 1000, 0),
                (666, 1, false, 0, 668, 1),
                (667, 1, true, 0, 1000, 0),
                (999, 1, false, 0, 668, 1),
                (1000, 1, true, 0, 1000, 0),
                (1333, 1, false, 0, 667, 1),
                (1334, 1, true, 0, 1000, 0),
                (1_000_000, 1, true, 2, 334, 0),
            ],
        );
        // With burst 1 there is no tolerance to absorb a client arriving up to 2/3 ms after
        // the instant (a whole ms can't be 333.3…): each late arrival starts the next interval
        // late. That is GCRA, not rounding: the state holds the exact time.
        let mut key = Key::new(vec![gcra_rule(3, 1000, 1)]);
        run_steps(
            &mut key,
            &[
                (0, 1, true, 0, 334, 0),
                (0, 1, false, 0, 334, 334),
                (333, 1, false, 0, 1, 1),
                (334, 1, true, 0, 334, 0),
                (667, 1, false, 0, 1, 1),
                (668, 1, true, 0, 334, 0),
            ],
        );
        assert_eq!(key.state.unwrap().slots, [Slot::Tat(1001, 1)]); // 668 ms + 1000 units = 1001.33 ms
    }

    /// A client that retries exactly when told: every allowed request lands at the earliest
    /// instant GCRA permits. The retry hints are exact to the ms; when the tolerance absorbs
    /// the sub-ms lateness of integer-ms arrivals, exactly `burst + k * rate` pass in `k`
    /// periods however long the run (no drift); and no window of one period ever admits more
    /// than `burst + floor((period - 1) * rate / period)`.
    #[test]
    fn exact_counts_over_many_periods() {
        let cases: &[(u64, u64, u64, u64)] = &[
            // (rate, period_ms, burst, periods)
            (3, 1000, 3, 200),
            (7, 1000, 2, 100),
            (1000, 3_600_000, 1, 6),
            (1000, 3_600_000, 50, 6),
            (13, 60_000, 4, 300),
            (997, 3_600_000, 3, 2),
            (3, 1000, 1, 200), // late arrivals: at most, not exactly
            (7, 3, 3, 500),    // several per ms
        ];
        for &(rate, period, burst, periods) in cases {
            let mut key = Key::new(vec![gcra_rule(rate, period, burst)]);
            let end = periods * period;
            let mut t = 0;
            let mut admitted: Vec<u64> = Vec::new();
            while t < end {
                let d = key.hit(t, 1);
                if d.allowed {
                    admitted.push(t);
                    continue;
                }
                let wait = d.retry_after_ms;
                assert!(!key.hit(t + wait - 1, 1).allowed, "{rate}/{period}: retry hint {wait} at {t} too long");
                t += wait;
            }
            let case = format!("{rate} per {period} ms, burst {burst}, {periods} periods");
            // The earliest time of the n-th request (0-based) is ceil((n + 1 - burst) * T) ms,
            // so those in [0, end) number burst + floor((end - 1) * rate / period).
            let in_range = admitted.iter().filter(|&&a| a < end).count() as u64;
            let expected = burst + (end - 1) * rate / period;
            // Integer-ms arrivals are up to (rate - 1) / rate ms late; the tolerance beyond one
            // interval, (burst - 1) * period / rate ms, absorbs that.
            if period % rate == 0 || (burst - 1) * period + 1 >= rate {
                assert_eq!(in_range, expected, "{case}");
                // No drift: the next one is admitted at exactly k periods.
                assert_eq!(t, end, "{case}");
                assert!(key.hit(end, 1).allowed, "{case}");
                admitted.push(end);
            } else {
                assert!(in_range <= expected && in_range > expected * 99 / 100, "{case}: {in_range}");
            }
            // Any window [a, a + period) admits at most burst + floor((period - 1) * rate / period).
            let bound = burst + (period - 1) * rate / period;
            let mut lo = 0;
            for hi in 0..admitted.len() {
                while admitted[hi] - admitted[lo] >= period {
                    lo += 1;
                }
                assert!((hi - lo + 1) as u64 <= bound, "{case}: window at {} admits {}", admitted[lo], hi - lo + 1);
            }
        }
    }

    /// Pseudo-random arrivals and costs against an independent formulation of the same
    /// algorithm: the continuous-state leaky bucket (a level that drains at one unit per unit
    /// of time and fills by `cost * T`).
    #[test]
    fn random_arrivals_match_the_leaky_bucket() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for &(rate, period, burst) in &[(3u64, 1000u64, 4u64), (1000, 3_600_000, 20), (10, 1000, 10), (7, 3, 2)] {
            let mut key = Key::new(vec![gcra_rule(rate, period, burst)]);
            let (r, t_units, tolerance) = (u128::from(rate), u128::from(period), u128::from(burst * period));
            let (mut level, mut last) = (0u128, 0u128);
            let mut now_ms = 1_741_996_800_000;
            let mean_gap = (period / rate).max(1);
            let mut allowed = 0;
            for _ in 0..20_000 {
                now_ms += next(2 * mean_gap + 1);
                let cost = 1 + next(3);
                let now = u128::from(now_ms) * r;
                let drained = level.saturating_sub(now - last);
                let fill = u128::from(cost) * t_units;
                let d = key.hit(now_ms, cost);
                if drained + fill <= tolerance {
                    level = drained + fill;
                    last = now;
                    allowed += 1;
                    assert!(d.allowed, "{rate}/{period} at {now_ms}");
                    assert_eq!(d.rules[0].remaining as u128, (tolerance - level) / t_units);
                    assert_eq!(d.rules[0].reset_ms as u128, level.div_ceil(r));
                } else {
                    assert!(!d.allowed, "{rate}/{period} at {now_ms}");
                    assert_eq!(d.rules[0].remaining as u128, (tolerance - drained) / t_units);
                    assert_eq!(d.retry_after_ms as u128, (drained + fill - tolerance).div_ceil(r));
                }
            }
            assert!(allowed > 1000, "{rate}/{period}: the test should exercise both outcomes ({allowed})");
        }
    }

    #[test]
    fn several_rules_the_stricter_wins_and_a_deny_consumes_nothing() {
        let minute = 1_741_996_800_000; // 2025-03-15T00:00:00Z
        let mut key = Key::new(vec![gcra_rule(10, 1000, 5), quota_rule(20, Window::Minute)]);
        for i in 0..5 {
            let d = key.hit(minute, 1);
            assert!(d.allowed);
            assert_eq!(d.rules[1], RuleStatus { remaining: 19 - i, reset_ms: 60_000 });
        }
        // The burst is spent: GCRA denies, the quota is not charged.
        let d = key.hit(minute, 1);
        assert_eq!((d.allowed, d.retry_after_ms), (false, 100));
        assert_eq!(
            d.rules,
            [RuleStatus { remaining: 0, reset_ms: 500 }, RuleStatus { remaining: 15, reset_ms: 60_000 }]
        );
        assert_eq!(key.state.as_ref().unwrap().slots[1], Slot::Count { window_start: minute, used: 5 });

        // One per 100 ms until the quota is spent.
        let mut t = minute;
        for i in 0..15 {
            t += 100;
            let d = key.hit(t, 1);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.rules[1].remaining, 14 - i);
        }
        // Much later in the minute the bucket is full, but the quota denies: GCRA is not charged.
        let gcra_before = key.state.as_ref().unwrap().slots[0];
        let d = key.hit(minute + 30_000, 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 30_000);
        assert_eq!(d.rules, [RuleStatus { remaining: 5, reset_ms: 0 }, RuleStatus { remaining: 0, reset_ms: 30_000 }]);
        assert_eq!(key.state.as_ref().unwrap().slots[0], gcra_before);
        // Both deny: the longer wait is reported.
        let mut key = Key::new(vec![gcra_rule(1, 1000, 1), quota_rule(1, Window::Minute)]);
        assert!(key.hit(minute + 59_999, 1).allowed);
        let d = key.hit(minute + 59_999, 1);
        assert_eq!((d.allowed, d.retry_after_ms), (false, 1000));
        // Next minute: the quota allows again, the bucket still holds the request of 1 ms ago.
        let d = key.hit(minute + 60_000, 1);
        assert_eq!((d.allowed, d.retry_after_ms), (false, 999));
        assert_eq!(d.rules[1], RuleStatus { remaining: 1, reset_ms: 60_000 });
    }

    #[test]
    fn exactly_the_limit_succeeds_under_contention() {
        // 100 "concurrent" requests, serialized by the limiter: exactly the limit of each rule.
        for rules in [vec![quota_rule(17, Window::Day)], vec![gcra_rule(1, 60_000, 17)], {
            vec![gcra_rule(10, 1000, 40), quota_rule(17, Window::Hour), gcra_rule(100, 1000, 30)]
        }] {
            let mut key = Key::new(rules);
            let allowed = (0..100).filter(|_| key.hit(1_741_996_800_123, 1).allowed).count();
            assert_eq!(allowed, 17);
        }
    }

    #[test]
    fn day_quota_at_midnight() {
        let last_ms = 1_742_083_199_999; // 2025-03-15T23:59:59.999Z
        let mut key = Key::new(vec![quota_rule(3, Window::Day)]);
        run_steps(
            &mut key,
            &[
                (last_ms, 1, true, 2, 1, 0),
                (last_ms, 1, true, 1, 1, 0),
                (last_ms, 1, true, 0, 1, 0),
                (last_ms, 1, false, 0, 1, 1),
                (last_ms + 1, 1, true, 2, DAY_MS, 0),
            ],
        );
        assert_eq!(key.state.unwrap().slots, [Slot::Count { window_start: last_ms + 1, used: 1 }]);
    }

    #[test]
    fn month_quota_across_month_ends() {
        // (last ms of a month, ms of the 1st of that month, next month's start)
        let cases: &[(&str, u64, u64, u64)] = &[
            ("Jan 31 -> Feb 1, 2025", 1_738_367_999_999, 1_735_689_600_000, 1_738_368_000_000),
            ("Feb 29 -> Mar 1, 2028 (leap)", 1_835_481_599_999, 1_832_976_000_000, 1_835_481_600_000),
            ("Feb 28 -> Mar 1, 2027", 1_803_859_199_999, 1_801_440_000_000, 1_803_859_200_000),
            ("Dec 31 -> Jan 1, 2026", 1_767_225_599_999, 1_764_547_200_000, 1_767_225_600_000),
            ("Feb 29 -> Mar 1, 2000 (leap, divisible by 400)", 951_868_799_999, 949_363_200_000, 951_868_800_000),
            ("Feb 28 -> Mar 1, 2100 (not leap)", 4_107_542_399_999, 4_105_123_200_000, 4_107_542_400_000),
        ];
        for &(case, last, first, next) in cases {
            assert_eq!(window_bounds(Window::Month, last), (first, next), "{case}");
            assert_eq!(window_bounds(Window::Month, first), (first, next), "{case}");
            let mut key = Key::new(vec![quota_rule(2, Window::Month)]);
            assert!(key.hit(first, 1).allowed, "{case}");
            let d = key.hit(last, 1);
            assert_eq!((d.allowed, d.rules[0]), (true, RuleStatus { remaining: 0, reset_ms: 1 }), "{case}");
            let d = key.hit(last, 1);
            assert_eq!((d.allowed, d.retry_after_ms), (false, 1), "{case}");
            let d = key.hit(next, 1);
            assert_eq!((d.allowed, d.rules[0].remaining), (true, 1), "{case}");
            assert_eq!(key.state.unwrap().slots, [Slot::Count { window_start: next, used: 1 }], "{case}");
        }
        // 2028-02-28 and 2028-02-29 share February's window.
        let feb_28_2028_noon = 1_835_352_000_000;
        assert_eq!(window_bounds(Window::Month, feb_28_2028_noon), (1_832_976_000_000, 1_835_481_600_000));
    }

    #[test]
    fn known_window_bounds() {
        let t = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        let cases: &[(Window, u64, u64, u64)] = &[
            (Window::Minute, t, 1_699_999_980_000, 1_700_000_040_000),
            (Window::Hour, t, 1_699_999_200_000, 1_700_002_800_000),
            (Window::Day, t, 1_699_920_000_000, 1_700_006_400_000),
            (Window::Month, t, 1_698_796_800_000, 1_701_388_800_000), // 2023-11-01 .. 2023-12-01
            (Window::Minute, 0, 0, 60_000),
            (Window::Month, 0, 0, 2_678_400_000), // 1970-01
            (Window::Day, 1_742_083_200_000, 1_742_083_200_000, 1_742_169_600_000),
            (Window::Month, 16_725_225_600_000, 16_725_225_600_000, 16_727_904_000_000), // 2500-01
            (Window::Month, 16_725_225_599_999, 16_722_547_200_000, 16_725_225_600_000), // 2499-12
        ];
        for &(window, now, start, end) in cases {
            assert_eq!(window_bounds(window, now), (start, end), "{window:?} at {now}");
        }
        // The far end saturates instead of overflowing.
        for window in [Window::Minute, Window::Hour, Window::Day, Window::Month] {
            let (start, end) = window_bounds(window, u64::MAX);
            assert!(start > u64::MAX - 31 * DAY_MS && end == u64::MAX, "{window:?}");
        }
    }

    /// Every month from 1970 to 2600 against a calendar walked month by month.
    #[test]
    fn month_bounds_match_a_walked_calendar() {
        let mut first_day = 0u64;
        for year in 1970..2600u64 {
            for month in 1..=12u64 {
                let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
                let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month as usize - 1];
                let (start, end) = (first_day * DAY_MS, (first_day + len) * DAY_MS);
                for now in [start, start + DAY_MS * 14 + 12_345, end - 1] {
                    assert_eq!(window_bounds(Window::Month, now), (start, end), "{year}-{month:02}");
                }
                assert_eq!(civil_from_days(first_day + len - 1), (year, month, len));
                first_day += len;
            }
        }
    }

    #[test]
    fn costs_above_one() {
        let mut key = Key::new(vec![gcra_rule(10, 1000, 10)]);
        run_steps(
            &mut key,
            &[
                (0, 4, true, 6, 400, 0),
                (0, 4, true, 2, 800, 0),
                (0, 4, false, 2, 800, 200), // needs 2 more tokens: 200 ms
                (0, 2, true, 0, 1000, 0),
                (200, 0, true, 2, 800, 0), // cost 0 probes without consuming
                (200, 3, false, 2, 800, 100),
                (300, 3, true, 0, 1000, 0),
                (300, 11, false, 0, 1000, 1100), // more than the burst never passes
            ],
        );
        let mut key = Key::new(vec![quota_rule(10, Window::Hour)]);
        run_steps(
            &mut key,
            &[(0, 7, true, 3, HOUR_MS, 0), (1, 4, false, 3, HOUR_MS - 1, HOUR_MS - 1), (2, 3, true, 0, HOUR_MS - 2, 0)],
        );
        // A cost that would overflow the count is denied.
        let (d, _) = decide(
            &[quota_rule(u64::MAX, Window::Day)],
            Some(&State { slots: vec![Slot::Count { window_start: 0, used: 5 }] }),
            0,
            u64::MAX,
        );
        assert!(!d.allowed);
        assert_eq!(d.rules[0].remaining, u64::MAX - 5);
    }

    #[test]
    fn zero_rate_and_zero_limit_deny_everything() {
        let cases: &[(Rule, u64, u64)] = &[
            // (rule, now, retry_after_ms)
            (gcra_rule(0, 1000, 10), 5, 1000),
            (gcra_rule(0, 0, 10), 5, 1),
            (quota_rule(0, Window::Hour), HOUR_MS + 1000, HOUR_MS - 1000),
            (quota_rule(0, Window::Minute), 59_999, 1),
        ];
        for (rule, now, retry) in cases {
            for cost in [0, 1, 2] {
                let (d, state) = decide(std::slice::from_ref(rule), None, *now, cost);
                assert_eq!((d.allowed, d.retry_after_ms, d.rules[0].remaining), (false, *retry, 0), "{rule:?}");
                assert_eq!(state, State::default());
            }
        }
        // A zero period is an unbounded rate.
        let mut key = Key::new(vec![gcra_rule(5, 0, 3)]);
        for _ in 0..100 {
            assert_eq!(key.hit(7, 1).rules[0], RuleStatus { remaining: 3, reset_ms: 0 });
        }
    }

    #[test]
    fn mismatched_state_is_fresh() {
        let rules = [gcra_rule(10, 1000, 5), quota_rule(3, Window::Day)];
        let now = 1_742_083_200_000;
        let fresh = vec![RuleStatus { remaining: 4, reset_ms: 100 }, RuleStatus { remaining: 2, reset_ms: DAY_MS }];
        let expected = State { slots: vec![Slot::Tat(now + 100, 0), Slot::Count { window_start: now, used: 1 }] };
        let stale = [
            State::default(),
            State { slots: vec![Slot::Count { window_start: now, used: 3 }, Slot::Tat(now + 10_000, 0)] },
            State { slots: vec![Slot::Count { window_start: now, used: 3 }] },
            State {
                slots: vec![
                    Slot::Tat(now - 5000, 0),
                    Slot::Count { window_start: now - DAY_MS, used: 3 },
                    Slot::Tat(1, 1),
                ],
            },
        ];
        for state in &stale {
            let (d, next) = decide(&rules, Some(state), now, 1);
            assert!(d.allowed, "{state:?}");
            assert_eq!(d.rules, fresh, "{state:?}");
            assert_eq!(next, expected, "{state:?}");
        }
        // Only the mismatching slot is fresh: the matching one keeps its count.
        let state =
            State { slots: vec![Slot::Count { window_start: 0, used: 0 }, Slot::Count { window_start: now, used: 3 }] };
        let (d, next) = decide(&rules, Some(&state), now, 1);
        assert_eq!((d.allowed, d.retry_after_ms), (false, DAY_MS));
        assert_eq!(d.rules[0], RuleStatus { remaining: 5, reset_ms: 0 });
        assert_eq!(next, state, "a denial returns the stored state as it was");
        // A stored TAT keeps its meaning in ms when the rate changes (here 1000/s to 1/s).
        let mut key = Key::new(vec![gcra_rule(1000, 1000, 1000)]);
        assert!((0..1000).all(|_| key.hit(0, 1).allowed));
        assert_eq!(key.state.as_ref().unwrap().slots, [Slot::Tat(1000, 0)]);
        key.rules = vec![gcra_rule(1, 1000, 1)];
        assert_eq!(key.hit(0, 1).retry_after_ms, 1000);
        assert!(key.hit(1000, 1).allowed);
        // A remainder from a finer rate is clamped below 1 ms.
        let (d, _) = decide(&[gcra_rule(2, 1000, 1)], Some(&State { slots: vec![Slot::Tat(500, 999)] }), 0, 1);
        assert_eq!(d.retry_after_ms, 501); // tat 500.5 ms: retry at ceil(500.5) = 501
    }

    #[test]
    fn huge_times_and_values_never_overflow() {
        let year_2500 = 16_725_225_600_000;
        let mut key = Key::new(vec![gcra_rule(1_000_000, 1000, 1_000_000), quota_rule(1_000_000, Window::Month)]);
        for i in 0..1000 {
            let d = key.hit(year_2500 + i, 1);
            assert!(d.allowed);
        }
        assert_eq!(key.state.as_ref().unwrap().slots[0], Slot::Tat(year_2500 + 999, 1000));
        let mut key = Key::new(vec![gcra_rule(3, 31_536_000_000, 1_000_000)]);
        assert_eq!(
            key.hit(year_2500, 1_000_000).rules[0],
            RuleStatus { remaining: 0, reset_ms: 10_512_000_000_000_000 }
        );
        assert_eq!(key.hit(year_2500, 1).retry_after_ms, 10_512_000_000);

        let extremes = [0, 1, 2, 999, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for &now in &extremes {
            for &a in &extremes {
                for &b in &extremes {
                    let rules = [
                        gcra_rule(a, b, a),
                        gcra_rule(b, a, u64::MAX),
                        gcra_rule(u64::MAX, u64::MAX, b),
                        quota_rule(a, Window::Month),
                        quota_rule(b, Window::Minute),
                    ];
                    let state = State {
                        slots: vec![Slot::Tat(a, b), Slot::Tat(u64::MAX, u64::MAX), Slot::Tat(b, a), {
                            Slot::Count { window_start: window_bounds(Window::Month, now).0, used: b }
                        }],
                    };
                    for cost in [0, 1, a, u64::MAX] {
                        let (d, next) = decide(&rules, Some(&state), now, cost);
                        assert_eq!(d.rules.len(), rules.len());
                        assert!(d.allowed || d.retry_after_ms >= 1);
                        let _ = decide(&rules, Some(&next), now, cost);
                    }
                }
            }
        }
    }

    #[test]
    fn state_json_round_trip() {
        let state = State {
            slots: vec![
                Slot::Tat(1_741_996_800_100, 2),
                Slot::Count { window_start: 1_741_996_800_000, used: 3 },
                Slot::Tat(u64::MAX, u64::MAX),
                Slot::Count { window_start: 0, used: u64::MAX },
            ],
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(
            json,
            r#"{"slots":[[1741996800100,2],{"window_start":1741996800000,"used":3},[18446744073709551615,18446744073709551615],{"window_start":0,"used":18446744073709551615}]}"#
        );
        assert_eq!(serde_json::from_str::<State>(&json).unwrap(), state);
        assert_eq!(
            serde_json::from_str::<State>(&serde_json::to_string(&State::default()).unwrap()).unwrap(),
            State::default()
        );

        // A state produced by decide survives storage and gives the same next decision.
        let rules = [gcra_rule(3, 1000, 2), quota_rule(100, Window::Day)];
        let (_, stored) = decide(&rules, None, 1_741_996_800_000, 1);
        let loaded: State = serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
        assert_eq!(loaded, stored);
        assert_eq!(
            decide(&rules, Some(&loaded), 1_741_996_800_001, 1),
            decide(&rules, Some(&stored), 1_741_996_800_001, 1)
        );

        // Rules and decisions (sent between the gateway and a limiter) round-trip too.
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(
            json,
            r#"[{"kind":"gcra","rate":3,"period_ms":1000,"burst":2},{"kind":"quota","limit":100,"window":"day"}]"#
        );
        assert_eq!(serde_json::from_str::<Vec<Rule>>(&json).unwrap(), rules);
        let (decision, _) = decide(&rules, None, 0, 1);
        let json = serde_json::to_string(&decision).unwrap();
        assert_eq!(serde_json::from_str::<Decision>(&json).unwrap(), decision);
    }
}
