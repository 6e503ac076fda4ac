//! One counting key's counter as an object that owns it (a Durable Object on Workers) keeps
//! it: the state in memory, loaded from storage once, and what to write back when. Sans IO:
//! the adapter reads and writes storage and sets alarms; every decision is made here.
//!
//! ```
//! use gateway_core::ratelimit::counter::{Counter, Write};
//! use gateway_core::ratelimit::decide::Rule;
//! use gateway_core::ratelimit::Persistence;
//! let rules = [Rule::Gcra { rate: 2, period_ms: 60_000, burst: 2 }];
//! let mut counter = Counter::default();
//! assert!(counter.needs_load());
//! counter.load(None); // nothing stored yet
//! let (decision, write) = counter.decide(&rules, Persistence::EveryRequest, 0, 1);
//! assert!(decision.allowed);
//! assert!(matches!(write, Write::Now(_)));
//! let (_, write) = counter.decide(&rules, Persistence::WriteBehind, 1, 1);
//! assert_eq!(write, Write::Later(Counter::WRITE_BEHIND));
//! let (decision, write) = counter.decide(&rules, Persistence::WriteBehind, 2, 1);
//! assert!(!decision.allowed);
//! assert_eq!(write, Write::Nothing, "nothing consumed, nothing to write");
//! assert!(counter.alarm().is_some(), "the alarm writes what write-behind deferred");
//! assert!(counter.alarm().is_none());
//! ```

use std::time::Duration;

use super::decide::{decide, Decision, Rule, State};
use super::Persistence;
use crate::ports::UnixMillis;

/// The counter of one key, as its object holds it.
#[derive(Debug, Default)]
pub struct Counter {
    state: Option<State>,
    loaded: bool,
    /// Changed since it was last written (write-behind).
    dirty: bool,
    /// A write-behind alarm is pending.
    alarm_set: bool,
}

/// What the object writes to its storage after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Nothing changed.
    Nothing,
    /// This text, now (the runtime's output gate holds the answer until it is durable, so the
    /// write need not be awaited).
    Now(String),
    /// Set an alarm this far ahead; [`Counter::alarm`] then says what to write.
    Later(Duration),
}

impl Counter {
    /// The storage key of the state inside its object.
    pub const STORAGE_KEY: &'static str = "s";
    /// How long `write_behind` waits before writing.
    pub const WRITE_BEHIND: Duration = Duration::from_secs(1);

    /// Whether the stored state must be read before the first decision.
    pub fn needs_load(&self) -> bool {
        !self.loaded
    }

    /// The stored state (its text, `None` when nothing was stored). Only the first load counts:
    /// a decision made meanwhile is newer than what storage held.
    pub fn load(&mut self, stored: Option<&str>) {
        if !self.loaded {
            self.state = stored.and_then(|text| serde_json::from_str(text).ok());
            self.loaded = true;
        }
    }

    /// The decision for one request at `now` costing `cost`, and what to write.
    pub fn decide(
        &mut self,
        rules: &[Rule],
        persistence: Persistence,
        now: UnixMillis,
        cost: u64,
    ) -> (Decision, Write) {
        let (decision, next) = decide(rules, self.state.as_ref(), now, cost);
        if !decision.allowed {
            return (decision, Write::Nothing);
        }
        let write = match persistence {
            Persistence::EveryRequest => serde_json::to_string(&next).map_or(Write::Nothing, Write::Now),
            Persistence::WriteBehind => {
                self.dirty = true;
                if self.alarm_set {
                    Write::Nothing
                } else {
                    self.alarm_set = true;
                    Write::Later(Self::WRITE_BEHIND)
                }
            }
        };
        self.state = Some(next);
        (decision, write)
    }

    /// The decision, when it can be made and recorded without waiting on the runtime: `None`
    /// when the counter has not been loaded yet, or when `write_behind` would ask for an alarm
    /// (setting one is awaited, so that a failure can be heard). Otherwise the same as
    /// [`Counter::decide`], whose [`Write`] is then never [`Write::Later`]: the text to write now,
    /// if any.
    pub fn decide_at_once(
        &mut self,
        rules: &[Rule],
        persistence: Persistence,
        now: UnixMillis,
        cost: u64,
    ) -> Option<(Decision, Option<String>)> {
        if !self.loaded || (persistence == Persistence::WriteBehind && !self.alarm_set) {
            return None;
        }
        match self.decide(rules, persistence, now, cost) {
            (decision, Write::Nothing) => Some((decision, None)),
            (decision, Write::Now(text)) => Some((decision, Some(text))),
            // Not reached: an alarm is pending. Were it asked for, it is not set, and the next
            // decision asks again.
            (decision, Write::Later(_)) => {
                self.alarm_set = false;
                Some((decision, None))
            }
        }
    }

    /// The alarm [`Write::Later`] asked for could not be set: the next decision asks again.
    pub fn alarm_not_set(&mut self) {
        self.alarm_set = false;
    }

    /// The alarm fired: the text to write, if anything changed since the last write.
    pub fn alarm(&mut self) -> Option<String> {
        self.alarm_set = false;
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        self.state.as_ref().and_then(|state| serde_json::to_string(state).ok())
    }
}

/// One decision on a counter kept as stored text (Spin's key-value store, read and swapped
/// atomically by the adapter): the decision and the text to write, `None` when the request is
/// refused (nothing consumed, nothing to write). Unreadable stored text counts as no state;
/// `Err` when the new state cannot be written as text.
pub fn decide_stored(
    rules: &[Rule],
    stored: Option<&[u8]>,
    now: UnixMillis,
    cost: u64,
) -> Result<(Decision, Option<Vec<u8>>), String> {
    let state: Option<State> = stored.and_then(|bytes| serde_json::from_slice(bytes).ok());
    let (decision, next) = decide(rules, state.as_ref(), now, cost);
    if !decision.allowed {
        return Ok((decision, None));
    }
    let text = serde_json::to_vec(&next).map_err(|e| e.to_string())?;
    Ok((decision, Some(text)))
}

/// The answer of a platform limiter that only says yes or no for a window of `period_s`
/// (Cloudflare's `ratelimits` binding): a refused request may retry after the window.
pub fn from_allowance(allowed: bool, period_s: u64) -> Decision {
    Decision { allowed, rules: Vec::new(), retry_after_ms: if allowed { 0 } else { period_s.saturating_mul(1000) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: [Rule; 1] = [Rule::Gcra { rate: 10, period_ms: 60_000, burst: 10 }];

    #[test]
    fn storage_is_read_once_and_a_later_load_never_overwrites_newer_counts() {
        let mut counter = Counter::default();
        let (_, write) = counter.decide(&RULES, Persistence::EveryRequest, 0, 4);
        let Write::Now(stored) = write else { panic!("every_request writes now") };
        let mut fresh = Counter::default();
        assert!(fresh.needs_load());
        fresh.load(Some(&stored));
        assert!(!fresh.needs_load());
        fresh.load(None); // a second, older read is ignored
        let (decision, _) = fresh.decide(&RULES, Persistence::EveryRequest, 0, 7);
        assert!(!decision.allowed, "4 already counted: 7 more exceed 10");
    }

    #[test]
    fn write_behind_sets_one_alarm_and_asks_again_when_it_could_not_be_set() {
        let mut counter = Counter::default();
        counter.load(None);
        assert_eq!(counter.decide(&RULES, Persistence::WriteBehind, 0, 1).1, Write::Later(Counter::WRITE_BEHIND));
        assert_eq!(counter.decide(&RULES, Persistence::WriteBehind, 1, 1).1, Write::Nothing);
        counter.alarm_not_set();
        assert_eq!(counter.decide(&RULES, Persistence::WriteBehind, 2, 1).1, Write::Later(Counter::WRITE_BEHIND));
        let written = counter.alarm().expect("three counted since the last write");
        let mut reloaded = Counter::default();
        reloaded.load(Some(&written));
        let (decision, _) = reloaded.decide(&RULES, Persistence::WriteBehind, 3, 8);
        assert!(!decision.allowed, "the alarm wrote all three");
        assert_eq!(counter.alarm(), None, "nothing changed since");
    }

    #[test]
    fn a_decision_is_made_at_once_unless_it_needs_a_load_or_an_alarm() {
        let mut counter = Counter::default();
        assert_eq!(counter.decide_at_once(&RULES, Persistence::EveryRequest, 0, 1), None, "not loaded yet");
        counter.load(None);
        let (decision, text) = counter.decide_at_once(&RULES, Persistence::EveryRequest, 0, 1).unwrap();
        assert!(decision.allowed);
        assert!(text.is_some(), "every_request writes with the decision");
        let (decision, text) = counter.decide_at_once(&RULES, Persistence::EveryRequest, 0, 100).unwrap();
        assert!(!decision.allowed);
        assert_eq!(text, None, "a refusal consumes nothing and writes nothing");
        assert_eq!(
            counter.decide_at_once(&RULES, Persistence::WriteBehind, 1, 1),
            None,
            "write_behind needs an alarm set"
        );
        assert_eq!(counter.decide(&RULES, Persistence::WriteBehind, 1, 1).1, Write::Later(Counter::WRITE_BEHIND));
        let (decision, text) = counter.decide_at_once(&RULES, Persistence::WriteBehind, 2, 1).unwrap();
        assert!(decision.allowed);
        assert_eq!(text, None, "the pending alarm writes it");
        let written = counter.alarm().expect("written by the alarm");
        let mut reloaded = Counter::default();
        reloaded.load(Some(&written));
        assert!(!reloaded.decide(&RULES, Persistence::EveryRequest, 2, 8).0.allowed, "all three were counted");
    }

    #[test]
    fn a_stored_counter_is_written_only_when_the_request_is_admitted() {
        let (decision, write) = decide_stored(&RULES, None, 0, 9).unwrap();
        assert!(decision.allowed);
        let stored = write.expect("admitted: the new state is written");
        let (decision, write) = decide_stored(&RULES, Some(&stored), 0, 2).unwrap();
        assert!(!decision.allowed, "9 counted: 2 more exceed 10");
        assert_eq!(write, None, "refused: nothing consumed, nothing written");
        let (decision, _) = decide_stored(&RULES, Some(b"not json"), 0, 10).unwrap();
        assert!(decision.allowed, "unreadable state counts as none");
    }

    #[test]
    fn an_allowance_refused_retries_after_its_window() {
        assert_eq!(from_allowance(true, 60).retry_after_ms, 0);
        assert_eq!(from_allowance(false, 60).retry_after_ms, 60_000);
        assert!(!from_allowance(false, 60).allowed);
    }
}
