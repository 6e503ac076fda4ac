//! Resilience decisions: retries, circuit breaking and the choice among an upstream's targets.
//!
//! Pure logic, like the rest of the crate: nothing here reads the clock or draws random
//! numbers. Times (`now_ms`, `elapsed_ms`, in any fixed epoch of milliseconds) and uniformly
//! random `u64`s are arguments, and the only mutable state, a [`Breaker`], is plain data the
//! caller keeps (one per upstream target, per isolate).
//!
//! - [`RetryPolicy::next_delay`] decides whether a failed attempt is tried again and after
//!   how long (exponential backoff with full jitter, always inside the route's deadline).
//! - [`Breaker`] is a circuit breaker over a sliding window of time buckets
//!   (closed → open → half-open with a single probe → closed or open again).
//! - [`order`] ranks an upstream's targets (weighted and canary splits, round robin,
//!   failover, sticky cohorts through [`cohort_hash`]).

use http::Method;

/// The upper bound of [`RetryPolicy::attempts`]: larger values are treated as this.
pub const MAX_ATTEMPTS: u32 = 10;

/// Methods retried without [`RetryPolicy::retry_non_idempotent`]: the idempotent methods of
/// RFC 9110 §9.2.2 (GET, HEAD, OPTIONS and TRACE are safe, PUT and DELETE idempotent).
const IDEMPOTENT: [Method; 6] =
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::PUT, Method::DELETE, Method::TRACE];

/// When and how often a failed upstream attempt is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry). Max 10 ([`MAX_ATTEMPTS`]); 0 is
    /// treated as 1.
    pub attempts: u32,
    /// First backoff, doubled each retry, capped at max_backoff_ms; full jitter (a random value in [0, backoff]).
    pub base_backoff_ms: u64,
    /// The cap of the (pre-jitter) backoff.
    pub max_backoff_ms: u64,
    /// Retry non-idempotent methods (POST, PATCH) too. Default false: only GET, HEAD, OPTIONS, PUT, DELETE, TRACE.
    pub retry_non_idempotent: bool,
    /// Statuses that are retried (default 502, 503, 504); connect errors/timeouts of an attempt are always retryable.
    pub statuses: Vec<u16>,
}

impl Default for RetryPolicy {
    /// 3 attempts, backoff 100 ms doubling up to 2 s, idempotent methods only, statuses 502, 503, 504.
    fn default() -> Self {
        Self {
            attempts: 3,
            base_backoff_ms: 100,
            max_backoff_ms: 2_000,
            retry_non_idempotent: false,
            statuses: vec![502, 503, 504],
        }
    }
}

/// How one upstream attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The upstream answered with this status.
    Status(u16),
    /// No connection could be made (DNS, refused, TLS, reset before a response).
    ConnectError,
    /// The attempt ran out of time before a response arrived.
    Timeout,
}

impl AttemptOutcome {
    /// Whether the outcome counts as a success for a [`Breaker`] ([`Breaker::record`]):
    /// any status below 500. Connect errors, timeouts and 5xx are failures.
    pub fn breaker_success(&self) -> bool {
        matches!(self, Self::Status(status) if *status < 500)
    }
}

impl RetryPolicy {
    /// Whether to retry after attempt number `attempt` (1-based) ended with `outcome`, and after how long:
    /// `Some(delay_ms)` only if attempts remain, the method qualifies, the outcome is retryable, and
    /// `elapsed_ms + delay_ms < deadline_ms` (retries always stay inside the route timeout).
    /// `random` is a uniformly random u64 the caller draws from the platform's entropy (for jitter).
    ///
    /// The backoff before retry `k` (after attempt `k`) is `base_backoff_ms * 2^(k-1)`, capped at
    /// `max_backoff_ms`; the delay is `random` scaled onto `[0, backoff]` (0 gives 0, `u64::MAX`
    /// gives the full backoff). `attempt` 0 is treated as 1. Never panics, whatever the inputs.
    ///
    /// ```
    /// # use gateway_core::resilience::{AttemptOutcome, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let get = http::Method::GET;
    /// assert_eq!(policy.next_delay(&get, 1, &AttemptOutcome::Status(503), 0, 5_000, u64::MAX), Some(100));
    /// assert_eq!(policy.next_delay(&get, 2, &AttemptOutcome::Timeout, 0, 5_000, u64::MAX), Some(200));
    /// assert_eq!(policy.next_delay(&get, 3, &AttemptOutcome::Timeout, 0, 5_000, u64::MAX), None); // 3 attempts made
    /// assert_eq!(policy.next_delay(&http::Method::POST, 1, &AttemptOutcome::Timeout, 0, 5_000, 0), None);
    /// ```
    pub fn next_delay(
        &self,
        method: &Method,
        attempt: u32,
        outcome: &AttemptOutcome,
        elapsed_ms: u64,
        deadline_ms: u64,
        random: u64,
    ) -> Option<u64> {
        let attempt = attempt.max(1);
        if attempt >= self.attempts.clamp(1, MAX_ATTEMPTS) {
            return None;
        }
        if !self.retry_non_idempotent && !IDEMPOTENT.contains(method) {
            return None;
        }
        let retryable = match outcome {
            AttemptOutcome::Status(status) => self.statuses.contains(status),
            AttemptOutcome::ConnectError | AttemptOutcome::Timeout => true,
        };
        if !retryable {
            return None;
        }
        // attempt < MAX_ATTEMPTS, so the shift is at most 8.
        let factor = 1u64 << (attempt - 1).min(63);
        let backoff = self.base_backoff_ms.saturating_mul(factor).min(self.max_backoff_ms);
        let delay = scale(random, u128::from(backoff) + 1);
        match elapsed_ms.checked_add(delay) {
            Some(end) if end < deadline_ms => Some(delay),
            _ => None,
        }
    }
}

/// Maps a uniform `random` onto `[0, n)` by multiply-and-shift (monotone in `random`:
/// 0 → 0, `u64::MAX` → `n - 1`). `n` must be at most 2^64 for the result to fit.
fn scale(random: u64, n: u128) -> u64 {
    u64::try_from((u128::from(random) * n) >> 64).unwrap_or(u64::MAX)
}

/// When a target's circuit opens and how it recovers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Failure ratio (percent, 1–100) over the window that opens the breaker…
    /// (values outside 1–100 are clamped into it)
    pub failure_percent: u8,
    /// …once at least this many requests were seen in the window (0 is treated as 1).
    pub min_requests: u32,
    /// Sliding window length. It slides in steps of a tenth of its length (one time bucket).
    pub window_ms: u64,
    /// How long the breaker stays open before letting one probe through (half-open).
    pub cooldown_ms: u64,
}

/// The state of a [`Breaker`] at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; outcomes are counted in the window.
    Closed,
    /// Requests are refused until the cooldown has passed.
    Open,
    /// The cooldown has passed: one probe at a time is admitted, whose outcome closes or reopens.
    HalfOpen,
}

/// The number of time buckets the breaker's window is divided into.
const BUCKETS: u64 = 10;

/// The outcomes counted in one time bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The bucket's number: `now_ms / bucket_ms`.
    epoch: u64,
    successes: u32,
    failures: u32,
}

/// A circuit breaker for one upstream target, per isolate: plain data the caller keeps (and
/// serializes access to) and passes with its [`BreakerPolicy`] and the current time.
///
/// Outcomes are counted in 10 time buckets of `window_ms / 10` (rounded up) each; the window
/// is the current bucket and the 9 before it. After each reported outcome, the breaker opens
/// when the window holds at least `min_requests` outcomes of which at least `failure_percent`
/// percent are failures. Open, it refuses everything for `cooldown_ms`; then it is half-open
/// and admits one probe at a time: the probe's success closes the breaker (with an empty
/// window), its failure reopens it for another cooldown.
///
/// Outcomes reported while open, or while half-open with no probe in flight (requests admitted
/// before the breaker opened), are ignored. A probe not reported within
/// `max(cooldown_ms, window_ms)` is presumed lost (its request was dropped) and the next
/// request becomes the probe, so a cancelled request cannot keep the target refused forever.
/// The state is meant for one policy: change the policy, start a new `Breaker`.
///
/// ```
/// # use gateway_core::resilience::{Breaker, BreakerPolicy, BreakerState};
/// let policy = BreakerPolicy { failure_percent: 50, min_requests: 2, window_ms: 10_000, cooldown_ms: 1_000 };
/// let mut breaker = Breaker::default();
/// for now in [0, 1] {
///     assert!(breaker.admit(&policy, now));
///     breaker.record(&policy, now, false);
/// }
/// assert_eq!(breaker.state(&policy, 2), BreakerState::Open);
/// assert!(!breaker.admit(&policy, 2));
/// assert!(breaker.admit(&policy, 1_001)); // the probe
/// assert!(!breaker.admit(&policy, 1_002));
/// breaker.record(&policy, 1_050, true);
/// assert_eq!(breaker.state(&policy, 1_051), BreakerState::Closed);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Breaker {
    /// Ring of buckets; bucket `epoch` lives at `epoch % BUCKETS`.
    buckets: [Bucket; BUCKETS as usize],
    /// When the breaker (last) opened; `None` while closed.
    opened_at: Option<u64>,
    /// When the half-open probe now in flight was admitted.
    probe_since: Option<u64>,
}

impl Breaker {
    /// May a request go to this target now? Open → false until cooldown passes, then HalfOpen admits exactly
    /// one probe at a time (further requests refused while the probe is in flight).
    pub fn admit(&mut self, policy: &BreakerPolicy, now_ms: u64) -> bool {
        match self.state(policy, now_ms) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                let lost_after = policy.cooldown_ms.max(policy.window_ms);
                match self.probe_since {
                    Some(since) if now_ms.saturating_sub(since) < lost_after => false,
                    _ => {
                        self.probe_since = Some(now_ms);
                        true
                    }
                }
            }
        }
    }

    /// Reports the outcome of an admitted request. A failure (connect error, timeout, 5xx) in HalfOpen reopens
    /// (cooldown restarts); a success in HalfOpen closes and resets the window.
    ///
    /// [`AttemptOutcome::breaker_success`] tells what counts as a success.
    pub fn record(&mut self, policy: &BreakerPolicy, now_ms: u64, success: bool) {
        match self.state(policy, now_ms) {
            BreakerState::Open => {}
            BreakerState::HalfOpen => {
                if self.probe_since.take().is_none() {
                    return; // a late report of a request admitted before the breaker opened
                }
                if success {
                    *self = Self::default();
                } else {
                    self.opened_at = Some(now_ms);
                }
            }
            BreakerState::Closed => {
                let bucket_ms = bucket_ms(policy);
                let epoch = now_ms / bucket_ms;
                let Some(bucket) = self.buckets.get_mut(slot(epoch)) else { return };
                if bucket.epoch != epoch {
                    *bucket = Bucket { epoch, successes: 0, failures: 0 };
                }
                if success {
                    bucket.successes = bucket.successes.saturating_add(1);
                } else {
                    bucket.failures = bucket.failures.saturating_add(1);
                }
                let (total, failures) = self.window_counts(epoch);
                let percent = u64::from(policy.failure_percent.clamp(1, 100));
                if total >= u64::from(policy.min_requests.max(1)) && failures * 100 >= percent * total {
                    *self = Self { opened_at: Some(now_ms), ..Self::default() };
                }
            }
        }
    }

    /// The state at `now_ms`: Open from the moment the breaker opened until `cooldown_ms` later,
    /// then HalfOpen until a probe's outcome is reported.
    pub fn state(&self, policy: &BreakerPolicy, now_ms: u64) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if now_ms.saturating_sub(at) < policy.cooldown_ms || now_ms < at => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// (outcomes, failures) in the window ending with bucket `epoch`.
    fn window_counts(&self, epoch: u64) -> (u64, u64) {
        let (mut total, mut failures) = (0, 0);
        for bucket in self.buckets.iter().filter(|b| b.epoch <= epoch && epoch - b.epoch < BUCKETS) {
            total += u64::from(bucket.successes) + u64::from(bucket.failures);
            failures += u64::from(bucket.failures);
        }
        (total, failures)
    }
}

/// The length of one time bucket: a tenth of the window, rounded up, at least 1 ms.
fn bucket_ms(policy: &BreakerPolicy) -> u64 {
    policy.window_ms.div_ceil(BUCKETS).max(1)
}

/// The ring index of bucket `epoch`.
fn slot(epoch: u64) -> usize {
    // Always < BUCKETS, so the conversion cannot fail.
    usize::try_from(epoch % BUCKETS).unwrap_or(0)
}

/// How an upstream with several targets spreads requests over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Random (or sticky) choice in proportion to the weights: load sharing and canary splits.
    Weighted,
    /// Each target in turn, by a per-isolate counter.
    RoundRobin,
    /// Always the first target while it is available, then the next ones in order.
    Failover,
}

/// Picks the order in which to try `weights.len()` targets (the first is the primary choice; the rest are
/// fallbacks for retries/failover), skipping none (the caller filters by breaker).
/// - Weighted: the first is drawn with probability weight/sum using `random`; the others follow in descending weight.
///   A weight of 0 is never first unless all are 0 (then index order). This also implements canary splits (e.g. 95/5).
/// - RoundRobin: first = counter % n (the caller keeps and increments `counter` per isolate), then the next ones.
/// - Failover: index order.
/// - `sticky`: when Some(hash) (a stable hash of a cohort key: a user-id claim, header or cookie value), it
///   replaces `random` for Weighted so the same key always lands on the same target while weights do not change.
///
/// RoundRobin and Failover ignore the weights' values. Ties in descending weight keep index order.
/// The draw maps `random` monotonically onto `[0, sum)` and walks the cumulative weights, so a
/// changed split (95/5 → 90/10) moves only the cohorts it must. A sticky hash is first passed
/// through the MurmurHash3 `fmix64` finalizer, so that hashes whose high bits barely differ (FNV-1a
/// of keys that differ only in their last byte) still spread over the split. An empty `weights`
/// gives an empty order.
///
/// ```
/// # use gateway_core::resilience::{cohort_hash, order, Balance};
/// assert_eq!(order(Balance::Weighted, &[0, 5, 95], 0, 0, None), [1, 2, 0]); // draw in [0, 5): target 1
/// assert_eq!(order(Balance::Weighted, &[0, 5, 95], u64::MAX, 0, None), [2, 1, 0]);
/// assert_eq!(order(Balance::RoundRobin, &[1, 1, 1], 0, 4, None), [1, 2, 0]);
/// assert_eq!(order(Balance::Failover, &[1, 9], 0, 0, None), [0, 1]);
/// let cohort = Some(cohort_hash("user-42"));
/// assert_eq!(order(Balance::Weighted, &[95, 5], 1, 0, cohort), order(Balance::Weighted, &[95, 5], 2, 0, cohort));
/// ```
pub fn order(balance: Balance, weights: &[u32], random: u64, counter: u64, sticky: Option<u64>) -> Vec<usize> {
    let n = weights.len();
    match balance {
        Balance::Failover => (0..n).collect(),
        Balance::RoundRobin => {
            let first = u64::try_from(n).ok().and_then(|n| counter.checked_rem(n)).unwrap_or(0);
            let first = usize::try_from(first).unwrap_or(0);
            (first..n).chain(0..first).collect()
        }
        Balance::Weighted => {
            let sum = weights.iter().fold(0u64, |sum, w| sum.saturating_add(u64::from(*w)));
            if sum == 0 {
                return (0..n).collect();
            }
            let draw = match sticky {
                Some(hash) => fmix64(hash),
                None => random,
            };
            let point = scale(draw, u128::from(sum));
            let mut cumulative = 0u64;
            let first = weights
                .iter()
                .position(|w| {
                    cumulative = cumulative.saturating_add(u64::from(*w));
                    point < cumulative
                })
                .unwrap_or(0);
            let mut rest: Vec<(u32, usize)> =
                weights.iter().copied().enumerate().filter(|(i, _)| *i != first).map(|(i, w)| (w, i)).collect();
            rest.sort_by_key(|(w, _)| std::cmp::Reverse(*w)); // stable: ties keep index order
            std::iter::once(first).chain(rest.into_iter().map(|(_, i)| i)).collect()
        }
    }
}

/// MurmurHash3's 64-bit finalizer: a bijection whose every output bit depends on every input bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A stable 64-bit hash of a cohort key (a user-id claim, header or cookie value) for [`order`]'s `sticky`.
///
/// This is 64-bit FNV-1a over the key's UTF-8 bytes (offset basis `0xcbf29ce484222325`, prime
/// `0x100000001b3`): the same on every platform, isolate and release, and easy to reproduce
/// elsewhere (a test, a script, another service). It is not keyed: a client that picks its own
/// cohort key can pick its target, which is what sticky routing allows anyway.
///
/// ```
/// # use gateway_core::resilience::cohort_hash;
/// assert_eq!(cohort_hash(""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(cohort_hash("a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn cohort_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a small deterministic PRNG for reproducible statistics.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy { attempts: 4, base_backoff_ms: 100, max_backoff_ms: 1_000, ..RetryPolicy::default() }
    }

    #[test]
    fn retry_defaults() {
        let policy = RetryPolicy::default();
        assert!(!policy.retry_non_idempotent);
        assert_eq!(policy.statuses, [502, 503, 504]);
        assert!(policy.attempts <= MAX_ATTEMPTS);
    }

    /// name, policy, method, attempt, outcome, elapsed, deadline, random, expected
    type RetryCase<'a> = (&'a str, &'a RetryPolicy, Method, u32, AttemptOutcome, u64, u64, u64, Option<u64>);

    #[test]
    fn next_delay_table() {
        use AttemptOutcome::{ConnectError, Status, Timeout};
        let base = retry_policy();
        let non_idempotent = RetryPolicy { retry_non_idempotent: true, ..retry_policy() };
        let teapot = RetryPolicy { statuses: vec![418], ..retry_policy() };
        let many = RetryPolicy { attempts: 10, ..retry_policy() };
        let too_many = RetryPolicy { attempts: 50, ..retry_policy() };
        let zero = RetryPolicy { attempts: 0, ..retry_policy() };
        let one = RetryPolicy { attempts: 1, ..retry_policy() };
        let big_base = RetryPolicy { base_backoff_ms: 5_000, ..retry_policy() };
        let huge =
            RetryPolicy { attempts: 10, base_backoff_ms: u64::MAX / 2, max_backoff_ms: u64::MAX, ..retry_policy() };
        let max = u64::MAX;
        let half = 1u64 << 63;
        let post = Method::POST;
        let patch = Method::PATCH;
        let custom = Method::from_bytes(b"PURGE").unwrap();
        #[rustfmt::skip]
        let cases: Vec<RetryCase> = vec![
            // name, policy, method, attempt, outcome, elapsed, deadline, random, expected
            ("GET 503 full jitter", &base, Method::GET, 1, Status(503), 0, 10_000, max, Some(100)),
            ("GET 503 zero jitter", &base, Method::GET, 1, Status(503), 0, 10_000, 0, Some(0)),
            ("GET 503 half jitter", &base, Method::GET, 1, Status(503), 0, 10_000, half, Some(50)),
            ("HEAD 502", &base, Method::HEAD, 1, Status(502), 0, 10_000, max, Some(100)),
            ("OPTIONS 504", &base, Method::OPTIONS, 1, Status(504), 0, 10_000, max, Some(100)),
            ("PUT timeout", &base, Method::PUT, 1, Timeout, 0, 10_000, max, Some(100)),
            ("DELETE connect", &base, Method::DELETE, 1, ConnectError, 0, 10_000, max, Some(100)),
            ("TRACE connect", &base, Method::TRACE, 1, ConnectError, 0, 10_000, max, Some(100)),
            ("POST not retried", &base, post.clone(), 1, Status(503), 0, 10_000, max, None),
            ("POST timeout not retried", &base, post.clone(), 1, Timeout, 0, 10_000, max, None),
            ("PATCH not retried", &base, patch.clone(), 1, ConnectError, 0, 10_000, max, None),
            ("extension method not retried", &base, custom.clone(), 1, ConnectError, 0, 10_000, max, None),
            ("POST opted in", &non_idempotent, post, 1, Status(503), 0, 10_000, max, Some(100)),
            ("PATCH opted in", &non_idempotent, patch, 1, Timeout, 0, 10_000, max, Some(100)),
            ("extension opted in", &non_idempotent, custom, 1, Timeout, 0, 10_000, max, Some(100)),
            ("500 not in list", &base, Method::GET, 1, Status(500), 0, 10_000, max, None),
            ("429 not in list", &base, Method::GET, 1, Status(429), 0, 10_000, max, None),
            ("200 never", &base, Method::GET, 1, Status(200), 0, 10_000, max, None),
            ("custom list hit", &teapot, Method::GET, 1, Status(418), 0, 10_000, max, Some(100)),
            ("custom list miss", &teapot, Method::GET, 1, Status(503), 0, 10_000, max, None),
            ("custom list timeout", &teapot, Method::GET, 1, Timeout, 0, 10_000, max, Some(100)),
            ("second retry doubles", &base, Method::GET, 2, Status(503), 0, 10_000, max, Some(200)),
            ("third retry doubles", &base, Method::GET, 3, Status(503), 0, 10_000, max, Some(400)),
            ("third retry zero jitter", &base, Method::GET, 3, Status(503), 0, 10_000, 0, Some(0)),
            ("attempts exhausted", &base, Method::GET, 4, Status(503), 0, 10_000, max, None),
            ("beyond attempts", &base, Method::GET, 7, Status(503), 0, 10_000, max, None),
            ("attempt 0 as 1", &base, Method::GET, 0, Status(503), 0, 10_000, max, Some(100)),
            ("one attempt: no retry", &one, Method::GET, 1, Timeout, 0, 10_000, max, None),
            ("zero attempts: no retry", &zero, Method::GET, 1, Timeout, 0, 10_000, max, None),
            ("capped backoff", &many, Method::GET, 5, Status(503), 0, 10_000, max, Some(1_000)),
            ("capped backoff zero", &many, Method::GET, 9, Status(503), 0, 10_000, 0, Some(0)),
            ("capped backoff last", &many, Method::GET, 9, Status(503), 0, 10_000, max, Some(1_000)),
            ("10 attempts max", &many, Method::GET, 10, Status(503), 0, 10_000, max, None),
            ("cap at 10 attempts", &too_many, Method::GET, 9, Status(503), 0, 10_000, max, Some(1_000)),
            ("cap at 10 attempts: 10th", &too_many, Method::GET, 10, Status(503), 0, 10_000, max, None),
            ("base above max", &big_base, Method::GET, 1, Status(503), 0, 10_000, max, Some(1_000)),
            ("no overflow", &huge, Method::GET, 9, Status(503), 0, u64::MAX, max, None),
            ("no overflow, fits", &huge, Method::GET, 9, Status(503), 0, u64::MAX, half, Some(half)),
            ("inside deadline", &base, Method::GET, 1, Status(503), 900, 1_000, max - (max / 101), Some(99)),
            ("exactly at deadline", &base, Method::GET, 1, Status(503), 900, 1_000, max, None),
            ("past deadline", &base, Method::GET, 1, Status(503), 1_200, 1_000, 0, None),
            ("at deadline, zero delay", &base, Method::GET, 1, Status(503), 1_000, 1_000, 0, None),
            ("zero delay before deadline", &base, Method::GET, 1, Status(503), 999, 1_000, 0, Some(0)),
            ("elapsed overflow", &base, Method::GET, 1, Status(503), u64::MAX, u64::MAX, max, None),
        ];
        for (name, policy, method, attempt, outcome, elapsed, deadline, random, expected) in cases {
            assert_eq!(policy.next_delay(&method, attempt, &outcome, elapsed, deadline, random), expected, "{name}");
        }
    }

    #[test]
    fn jitter_stays_within_backoff() {
        let policy = RetryPolicy { attempts: 10, ..retry_policy() };
        let mut rng = SplitMix64(7);
        for attempt in 1..10u32 {
            let backoff = (100u64 << (attempt - 1)).min(1_000);
            let (mut low, mut high) = (u64::MAX, 0);
            for _ in 0..2_000 {
                let delay = policy
                    .next_delay(&Method::GET, attempt, &AttemptOutcome::Timeout, 0, u64::MAX, rng.next_u64())
                    .unwrap();
                assert!(delay <= backoff, "attempt {attempt}: {delay} > {backoff}");
                low = low.min(delay);
                high = high.max(delay);
            }
            // Full jitter: the delays cover (almost) the whole range.
            assert!(low < backoff / 10 && high > backoff - backoff / 10, "attempt {attempt}: {low}..{high}");
        }
    }

    #[test]
    fn breaker_success_outcomes() {
        for (outcome, success) in [
            (AttemptOutcome::Status(200), true),
            (AttemptOutcome::Status(404), true),
            (AttemptOutcome::Status(499), true),
            (AttemptOutcome::Status(500), false),
            (AttemptOutcome::Status(503), false),
            (AttemptOutcome::ConnectError, false),
            (AttemptOutcome::Timeout, false),
        ] {
            assert_eq!(outcome.breaker_success(), success, "{outcome:?}");
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// admit(now) must return this.
        Admit(u64, bool),
        /// admit(now) must return true, then record(now, success).
        Request(u64, bool),
        /// record(now, success) without admitting.
        Record(u64, bool),
        /// state(now) must be this.
        State(u64, BreakerState),
    }

    #[test]
    fn breaker_scenarios() {
        use BreakerState::{Closed, HalfOpen, Open};
        use Step::{Admit, Record, Request, State};
        let policy = BreakerPolicy { failure_percent: 50, min_requests: 4, window_ms: 10_000, cooldown_ms: 5_000 };
        let strict = BreakerPolicy { failure_percent: 100, min_requests: 3, ..policy.clone() };
        let zeroes = BreakerPolicy { failure_percent: 0, min_requests: 0, window_ms: 0, cooldown_ms: 0 };
        let lost = BreakerPolicy { cooldown_ms: 1_000, window_ms: 2_000, ..policy.clone() };
        #[rustfmt::skip]
        let scenarios: Vec<(&str, &BreakerPolicy, Vec<Step>)> = vec![
            ("closed below min_requests", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false),
                State(3, Closed), Admit(3, true),
            ]),
            ("opens at the ratio", &policy, vec![
                Request(0, true), Request(1, false), Request(2, true), State(3, Closed),
                Request(3, false), State(3, Open), Admit(4, false),
            ]),
            ("stays closed below the ratio", &policy, vec![
                Request(0, true), Request(1, false), Request(2, true), Request(3, true),
                Request(4, false), State(5, Closed), // 2 of 5 = 40 %
                Request(6, false), State(7, Open), // 3 of 6 = 50 %
            ]),
            ("a success can tip the count over min_requests", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false), State(3, Closed),
                Request(3, true), State(3, Open),
            ]),
            ("100 % needs only failures", &strict, vec![
                Request(0, false), Request(1, true), Request(2, false), Request(3, false), State(4, Closed),
                Request(4, false), State(4, Closed), // 4 of 5
            ]),
            ("100 % opens when all fail", &strict, vec![
                Request(0, false), Request(1, false), Request(2, false), State(3, Open),
            ]),
            ("refuses while open, then half-open", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false), Request(3, false),
                State(3, Open), Admit(100, false), Admit(5_002, false), State(5_002, Open),
                State(5_003, HalfOpen),
            ]),
            ("half-open admits one probe", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false), Request(3, false),
                Admit(5_003, true), Admit(5_004, false), Admit(6_000, false), State(6_000, HalfOpen),
            ]),
            ("probe failure reopens and restarts the cooldown", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false), Request(3, false),
                Admit(5_003, true), Record(5_500, false), State(5_500, Open), Admit(6_000, false),
                Admit(10_499, false), State(10_499, Open), State(10_500, HalfOpen),
                Admit(10_500, true), Admit(10_501, false),
            ]),
            ("probe success closes and resets the window", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false), Request(3, false),
                Admit(5_003, true), Record(5_100, true), State(5_100, Closed),
                Admit(5_101, true), Admit(5_102, true),
                // The old failures are gone: three new failures stay below min_requests.
                Request(5_200, false), Request(5_201, false), Request(5_202, false), State(5_203, Closed),
                Request(5_203, false), State(5_203, Open),
            ]),
            ("reports while open are ignored", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false), Request(3, false),
                Record(100, true), Record(200, true), State(300, Open), State(5_003, HalfOpen),
            ]),
            ("late report while half-open without a probe is ignored", &policy, vec![
                Request(0, false), Request(1, false), Request(2, false), Request(3, false),
                Record(6_000, true), State(6_000, HalfOpen), Record(6_001, false), State(6_001, HalfOpen),
                Admit(6_002, true),
            ]),
            ("old buckets slide out of the window", &policy, vec![
                Request(0, false), Request(500, false), Request(999, false),
                Request(10_000, false), State(10_000, Closed), // bucket 0 has left: 1 in window
                Request(10_001, false), Request(10_002, false), State(10_003, Closed),
                Request(10_003, false), State(10_003, Open),
            ]),
            ("old buckets slide out while their slot is not reused", &policy, vec![
                Request(0, false), Request(500, false), Request(999, false),
                Request(11_000, false), State(11_000, Closed), // bucket 0 has left, bucket 11 is slot 1
                Request(11_001, false), Request(11_002, false), State(11_003, Closed),
                Request(11_003, false), State(11_003, Open),
            ]),
            ("buckets still inside the window count", &policy, vec![
                Request(0, false), Request(500, false), Request(999, false),
                Request(9_999, false), State(9_999, Open),
            ]),
            ("successes slide out too", &policy, vec![
                Request(0, true), Request(1, true), Request(2, true), Request(3, true), Request(4, true),
                Request(12_000, false), Request(12_001, false), Request(12_002, false), State(12_003, Closed),
                Request(12_003, false), State(12_003, Open),
            ]),
            ("lost probe is replaced", &lost, vec![
                Request(0, false), Request(1, false), Request(2, false), Request(3, false),
                Admit(1_003, true), Admit(3_002, false), Admit(3_003, true), Admit(3_004, false),
                Record(3_100, true), State(3_100, Closed),
            ]),
            ("degenerate policy never panics", &zeroes, vec![
                State(0, Closed), Request(0, true), State(0, Closed), Request(0, false), State(0, HalfOpen),
                Admit(0, true), Admit(0, true), Record(0, false), State(0, HalfOpen), Admit(0, true),
                Record(0, true), State(0, Closed),
            ]),
            ("clock going backwards never panics", &policy, vec![
                Request(50_000, false), Request(40_000, false), Request(40_001, false), Request(40_002, false),
                Request(40_003, false), State(40_003, Open), State(30_000, Open), Admit(30_000, false),
                State(45_003, HalfOpen), Admit(45_003, true), Admit(45_000, false), Admit(1, false),
                Record(0, true), State(0, Open), Record(45_100, true), State(45_100, Closed),
            ]),
        ];
        for (name, policy, steps) in scenarios {
            let mut breaker = Breaker::default();
            for (i, step) in steps.iter().enumerate() {
                match *step {
                    Admit(now, expected) => {
                        assert_eq!(breaker.admit(policy, now), expected, "{name}: step {i} {step:?}")
                    }
                    Request(now, success) => {
                        assert!(breaker.admit(policy, now), "{name}: step {i} {step:?} refused");
                        breaker.record(policy, now, success);
                    }
                    Record(now, success) => breaker.record(policy, now, success),
                    State(now, expected) => {
                        assert_eq!(breaker.state(policy, now), expected, "{name}: step {i} {step:?}")
                    }
                }
            }
        }
    }

    /// name, balance, weights, random, counter, sticky, expected
    type OrderCase = (&'static str, Balance, Vec<u32>, u64, u64, Option<u64>, Vec<usize>);

    #[test]
    fn order_table() {
        use Balance::{Failover, RoundRobin, Weighted};
        let max = u64::MAX;
        #[rustfmt::skip]
        let cases: Vec<OrderCase> = vec![
            // name, balance, weights, random, counter, sticky, expected
            ("empty weighted", Weighted, vec![], 5, 5, None, vec![]),
            ("empty round robin", RoundRobin, vec![], 5, 5, None, vec![]),
            ("empty failover", Failover, vec![], 5, 5, None, vec![]),
            ("single", Weighted, vec![3], max, 0, None, vec![0]),
            ("weighted low draw", Weighted, vec![95, 5], 0, 0, None, vec![0, 1]),
            ("weighted high draw", Weighted, vec![95, 5], max, 0, None, vec![1, 0]),
            ("weighted rest descending", Weighted, vec![20, 50, 30], 0, 0, None, vec![0, 1, 2]),
            ("weighted rest descending 2", Weighted, vec![20, 50, 30], max, 0, None, vec![2, 1, 0]),
            ("weighted middle", Weighted, vec![20, 50, 30], max / 2, 0, None, vec![1, 2, 0]),
            ("ties keep index order", Weighted, vec![1, 1, 1, 1], max, 0, None, vec![3, 0, 1, 2]),
            ("zero weight never first, low", Weighted, vec![0, 10, 0], 0, 0, None, vec![1, 0, 2]),
            ("zero weight never first, high", Weighted, vec![0, 10, 0], max, 0, None, vec![1, 0, 2]),
            ("zero weights last", Weighted, vec![0, 1, 0, 2], 0, 0, None, vec![1, 3, 0, 2]),
            ("all zero: index order", Weighted, vec![0, 0, 0], max, 0, None, vec![0, 1, 2]),
            ("round robin 0", RoundRobin, vec![1, 1, 1], max, 0, None, vec![0, 1, 2]),
            ("round robin 1", RoundRobin, vec![1, 1, 1], max, 1, None, vec![1, 2, 0]),
            ("round robin 2", RoundRobin, vec![1, 1, 1], max, 2, None, vec![2, 0, 1]),
            ("round robin wraps", RoundRobin, vec![1, 1, 1], max, 3, None, vec![0, 1, 2]),
            ("round robin huge counter", RoundRobin, vec![1, 1, 1], 0, u64::MAX, None, vec![0, 1, 2]),
            ("round robin ignores weights", RoundRobin, vec![0, 9], 0, 0, Some(1), vec![0, 1]),
            ("failover", Failover, vec![1, 100, 5], max, 7, Some(3), vec![0, 1, 2]),
            ("huge weights", Weighted, vec![u32::MAX, u32::MAX], max, 0, None, vec![1, 0]),
        ];
        for (name, balance, weights, random, counter, sticky, expected) in cases {
            assert_eq!(order(balance, &weights, random, counter, sticky), expected, "{name}");
        }
    }

    /// Counts how often each target is first over `draws` calls with draws from `next`.
    fn first_counts(weights: &[u32], draws: usize, mut next: impl FnMut() -> (u64, Option<u64>)) -> Vec<usize> {
        let mut counts = vec![0; weights.len()];
        for _ in 0..draws {
            let (random, sticky) = next();
            let ranked = order(Balance::Weighted, weights, random, 0, sticky);
            assert_eq!(ranked.len(), weights.len());
            let mut sorted = ranked.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..weights.len()).collect::<Vec<_>>(), "a permutation");
            counts[ranked[0]] += 1;
        }
        counts
    }

    /// Each count within 5 standard deviations of the binomial expectation (and never a zero-weight target).
    fn assert_within_bounds(name: &str, weights: &[u32], counts: &[usize]) {
        let draws: usize = counts.iter().sum();
        let sum: u32 = weights.iter().sum();
        for (weight, count) in weights.iter().zip(counts) {
            let p = f64::from(*weight) / f64::from(sum);
            let expected = p * draws as f64;
            let sd = (draws as f64 * p * (1.0 - p)).sqrt();
            let deviation = (*count as f64 - expected).abs();
            assert!(deviation <= 5.0 * sd, "{name}: weights {weights:?}, counts {counts:?}");
            if *weight == 0 {
                assert_eq!(*count, 0, "{name}: weights {weights:?}, counts {counts:?}");
            }
        }
    }

    const SPLITS: [&[u32]; 4] = [&[95, 5], &[50, 30, 20], &[0, 70, 0, 30], &[1, 1, 1, 1, 1]];

    #[test]
    fn weighted_distribution() {
        for (seed, weights) in SPLITS.iter().enumerate() {
            let mut rng = SplitMix64(seed as u64);
            let counts = first_counts(weights, 10_000, || (rng.next_u64(), None));
            assert_within_bounds("random", weights, &counts);
        }
    }

    #[test]
    fn sticky_is_stable_and_ignores_random() {
        let mut rng = SplitMix64(99);
        for key in ["user-1", "user-2", "alice", "", "a-much-longer-cohort-key-0123456789"] {
            let hash = cohort_hash(key);
            assert_eq!(hash, cohort_hash(key));
            for weights in SPLITS {
                let expected = order(Balance::Weighted, weights, 0, 0, Some(hash));
                for _ in 0..20 {
                    assert_eq!(
                        order(Balance::Weighted, weights, rng.next_u64(), rng.next_u64(), Some(hash)),
                        expected,
                        "{key}"
                    );
                }
            }
        }
    }

    #[test]
    fn sticky_distribution_over_keys() {
        // Sequential keys differing only in their last characters: the hardest case for FNV-1a's high bits.
        for (prefix, weights) in ["user-", "session=", "", "tenant:acme:"].iter().zip(SPLITS) {
            let mut i = 0u32;
            let counts = first_counts(weights, 10_000, || {
                i += 1;
                (0, Some(cohort_hash(&format!("{prefix}{i}"))))
            });
            assert_within_bounds(prefix, weights, &counts);
        }
    }

    #[test]
    fn sticky_cohorts_move_only_as_needed() {
        // Going from 95/5 to 90/10 moves cohorts only from the first target to the second.
        for i in 0..5_000 {
            let hash = Some(cohort_hash(&format!("user-{i}")));
            let before = order(Balance::Weighted, &[95, 5], 0, 0, hash)[0];
            let after = order(Balance::Weighted, &[90, 10], 0, 0, hash)[0];
            assert!(before == after || (before == 0 && after == 1), "user-{i}: {before} → {after}");
        }
    }

    #[test]
    fn cohort_hash_is_fnv1a_64() {
        // Reference values of 64-bit FNV-1a.
        for (key, hash) in
            [("", 0xcbf2_9ce4_8422_2325), ("a", 0xaf63_dc4c_8601_ec8c), ("foobar", 0x8594_4171_f739_67e8)]
        {
            assert_eq!(cohort_hash(key), hash, "{key:?}");
        }
    }
}
