//! What one isolate (a Workers isolate, a Spin instance) learns while it serves requests:
//! each pool's round-robin counter and circuit breakers, fetched key sets, derived HMAC keys,
//! verified tokens and the limiter's refusals that still hold. The compiled [`Gateway`] never
//! changes; this does. The adapter keeps one beside its gateway and hands both to
//! [`crate::handle`]. Every lock here is held for a few instructions, never across an await.

use std::sync::{Mutex, MutexGuard};

use crate::ports::UnixMillis;
use crate::resilience::Breaker;
use crate::route::PoolState;
use crate::Gateway;

/// Per-isolate state for one [`Gateway`] (keep one per gateway: it is indexed by the
/// gateway's pools and issuers).
///
/// ```
/// let gateway = gateway_core::Gateway::from_json(r#"{"version": 1, "upstreams": {}, "routes": []}"#).unwrap();
/// let state = gateway_core::IsolateState::new();
/// # let _ = (gateway, state);
/// ```
#[derive(Debug, Default)]
pub struct IsolateState {
    /// By pool index, made on first use.
    pools: Mutex<Vec<PoolState>>,
    pub(crate) keys: crate::auth::KeyCache,
    /// Refusals of the exact limiter that still hold (see [`crate::ratelimit::refusals`]).
    pub(crate) refusals: crate::ratelimit::refusals::Refusals,
}

impl IsolateState {
    /// A fresh isolate's state: no counters advanced, every breaker closed, no key cached.
    pub fn new() -> Self {
        Self::default()
    }

    fn pools(&self) -> MutexGuard<'_, Vec<PoolState>> {
        self.pools.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The order to try a pool's targets in (pool-local indexes), advancing its round-robin counter.
    pub(crate) fn target_order(&self, gateway: &Gateway, pool: usize, random: u64, sticky: Option<u64>) -> Vec<usize> {
        let Some(spec) = gateway.pools.get(pool) else { return Vec::new() };
        let counter = {
            let mut pools = self.pools();
            pool_state(&mut pools, gateway, pool).map_or(0, |state| {
                // A fresh isolate (every Spin request) starts at a random target, not always the first.
                state.counter = if state.counter == 0 { random | 1 } else { state.counter.wrapping_add(1) };
                state.counter
            })
        };
        crate::resilience::order(spec.balance, &spec.weights, random, counter, sticky)
    }

    /// Whether the breaker of a pool's target lets a request through now.
    pub(crate) fn admit(&self, gateway: &Gateway, pool: usize, target: usize, now: UnixMillis) -> bool {
        let Some(policy) = gateway.pools.get(pool).and_then(|p| p.breaker.as_ref()) else { return true };
        let mut pools = self.pools();
        pool_state(&mut pools, gateway, pool)
            .and_then(|s| s.breakers.get_mut(target))
            .is_none_or(|b| b.admit(policy, now))
    }

    /// Reports an attempt's outcome to the target's breaker.
    pub(crate) fn record(&self, gateway: &Gateway, pool: usize, target: usize, now: UnixMillis, success: bool) {
        let Some(policy) = gateway.pools.get(pool).and_then(|p| p.breaker.as_ref()) else { return };
        let mut pools = self.pools();
        if let Some(breaker) = pool_state(&mut pools, gateway, pool).and_then(|s| s.breakers.get_mut(target)) {
            breaker.record(policy, now, success);
        }
    }
}

/// The state of pool `pool`, made (with a closed breaker per target) on first use.
fn pool_state<'a>(pools: &'a mut Vec<PoolState>, gateway: &Gateway, pool: usize) -> Option<&'a mut PoolState> {
    if pools.len() <= pool {
        pools.resize_with(gateway.pools.len().max(pool + 1), || PoolState { counter: 0, breakers: Vec::new() });
    }
    let targets = gateway.pools.get(pool).map_or(0, |p| p.targets.len());
    let state = pools.get_mut(pool)?;
    if state.breakers.len() < targets {
        state.breakers.resize(targets, Breaker::default());
    }
    Some(state)
}

/// Room for one more entry in a per-isolate memory bounded to `capacity` entries: at the bound,
/// the entries no longer `live` are dropped. Whether there is room now.
pub(crate) fn make_room<K: Eq + std::hash::Hash, V>(
    map: &mut std::collections::HashMap<K, V>,
    capacity: usize,
    live: impl Fn(&V) -> bool,
) -> bool {
    if map.len() >= capacity {
        map.retain(|_, value| live(value));
    }
    map.len() < capacity
}
