//! Exact, global rate limiting on Workers: one Durable Object per counting key (`idFromName`),
//! which runs the core's pure decision on its in-memory state. A Durable Object handles one
//! event at a time and the decision is made without awaiting, so concurrent requests for a key
//! are decided in sequence: with a limit of L, exactly L of N concurrent requests pass. The
//! state is written to the object's storage with every decision (or at most once a second with
//! `persistence: write_behind`), so an eviction loses nothing (or at most that second).
use std::cell::RefCell;

use gateway_core::ports::{Limiter, StoreError};
use gateway_core::ratelimit::counter::{self, Counter, Write};
use gateway_core::ratelimit::decide::Decision;
use gateway_core::ratelimit::{Backend, LimitRequest};
use wasm_bindgen::{JsCast, JsValue};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// The Durable Object namespace binding (wrangler.toml `[[durable_objects.bindings]]`).
pub const LIMITER_BINDING: &str = "EDGEGATE_LIMITER";

/// One counting key's object: storage and alarms here, every decision in [`Counter`].
#[durable_object]
pub struct EdgegateLimiter {
    state: State,
    /// The object's storage as the runtime gives it, for writes that are not awaited.
    storage: JsValue,
    /// The synchronous key-value face of that storage (`storage.kv`, SQLite-backed objects,
    /// as wrangler.toml declares them), or `undefined` for an object on the older backend.
    sync_kv: JsValue,
    counter: RefCell<Counter>,
}

impl std::fmt::Debug for EdgegateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgegateLimiter").field("counter", &self.counter).finish()
    }
}

impl DurableObject for EdgegateLimiter {
    fn new(state: State, _env: Env) -> Self {
        let raw = state._inner();
        let storage = js_sys::Reflect::get(&raw, &JsValue::from_str("storage")).unwrap_or(JsValue::UNDEFINED);
        let sync_kv = js_sys::Reflect::get(&storage, &JsValue::from_str("kv")).unwrap_or(JsValue::UNDEFINED);
        Self { state: State::from(raw), storage, sync_kv, counter: RefCell::new(Counter::default()) }
    }

    /// The object answers through RPC only (`stub.decide`, see below).
    async fn fetch(&self, _req: Request) -> Result<Response> {
        Response::error("edgegate's limiter answers RPC only", 404)
    }

    async fn alarm(&self) -> Result<Response> {
        let text = self.counter.borrow_mut().alarm();
        if let Some(text) = text {
            self.state.storage().put_raw(Counter::STORAGE_KEY, JsValue::from_str(&text)).await?;
        }
        Response::ok("")
    }
}

/// The RPC face of the object (`stub.decide(policy, cost)`, through targets/cloudflare/entry.mjs,
/// whose class extends the runtime's `DurableObject`): no HTTP-shaped request either way.
#[wasm_bindgen::prelude::wasm_bindgen]
impl EdgegateLimiter {
    /// The decision, as JSON text, when it is made without waiting (see
    /// [`Counter::decide_at_once`]): the state is read and written through the synchronous
    /// `storage.kv`, whose write the output gate makes durable before the answer leaves. Nothing
    /// (`undefined`) when the object must wait: the caller then asks [`Self::decide_rpc`].
    #[wasm_bindgen::prelude::wasm_bindgen(js_name = decideNow)]
    pub fn decide_now(&self, policy: &str, cost: u32) -> Option<String> {
        if self.sync_kv.is_undefined() {
            return None;
        }
        let (rules, persistence) = super::gateway().ok()?.rate_policy(policy)?;
        let mut counter = self.counter.borrow_mut();
        if counter.needs_load() {
            counter.load(kv_get(&self.sync_kv, Counter::STORAGE_KEY).as_deref());
        }
        let now = worker::Date::now().as_millis();
        let (decision, write) = counter.decide_at_once(rules, persistence, now, u64::from(cost))?;
        if let Some(text) = write {
            kv_put(&self.sync_kv, Counter::STORAGE_KEY, &text);
        }
        serde_json::to_string(&decision).ok()
    }

    /// The decision for one request of `policy` costing `cost`, as JSON text, when it has to
    /// wait on the storage (a first load on the older backend, an alarm to set). The rules come
    /// from the routes file this same Worker's entry hands the wasm, so a call carries only the
    /// name.
    #[wasm_bindgen::prelude::wasm_bindgen(js_name = decide)]
    pub async fn decide_rpc(&self, policy: String, cost: u32) -> std::result::Result<JsValue, JsValue> {
        let failed = |reason: &str| JsValue::from_str(reason);
        let Some((rules, persistence)) = super::gateway().ok().and_then(|g| g.rate_policy(&policy)) else {
            return Err(failed("unknown policy"));
        };
        let storage = self.state.storage();
        if self.counter.borrow().needs_load() {
            // Storage reads close the input gate, so no other request runs meanwhile.
            let stored: Option<String> = storage.get(Counter::STORAGE_KEY).await.unwrap_or(None);
            self.counter.borrow_mut().load(stored.as_deref());
        }
        // The object's own clock: one clock per key, whichever isolate asks.
        let now = worker::Date::now().as_millis();
        let (decision, write) = self.counter.borrow_mut().decide(rules, persistence, now, u64::from(cost));
        match write {
            Write::Nothing => {}
            // Not awaited: the runtime's output gate holds this answer until the write is
            // durable, and the object's next event already sees the in-memory state.
            Write::Now(text) => put_unawaited(&self.storage, Counter::STORAGE_KEY, &text),
            Write::Later(after) => {
                if let Err(error) = storage.set_alarm(after).await {
                    self.counter.borrow_mut().alarm_not_set();
                    return Err(failed(&error.to_string()));
                }
            }
        }
        serde_json::to_string(&decision).map(|text| JsValue::from_str(&text)).map_err(|e| failed(&e.to_string()))
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/glue.js")]
extern "C" {
    fn put_unawaited(storage: &JsValue, key: &str, value: &str);
    /// A stored text (`storage.kv.get`), `None` when nothing (or no text) is stored.
    fn kv_get(kv: &JsValue, key: &str) -> Option<String>;
    /// `storage.kv.put`: not awaited, there is nothing to await; the output gate holds the
    /// answer until the write is durable.
    fn kv_put(kv: &JsValue, key: &str, value: &str);
    /// `stub.decide(policy, cost)` on the object named `key` in the namespace bound as `binding`,
    /// in one crossing: the promise of its answer, `undefined` without such a binding.
    #[wasm_bindgen::prelude::wasm_bindgen(catch)]
    fn eg_limit(env: &JsValue, binding: &str, key: &str, policy: &str, cost: u32) -> Result<JsValue, JsValue>;
}

/// The worker's side: one round trip to the key's object.
pub async fn limit(env: &Env, key: &str, request: &LimitRequest) -> std::result::Result<Decision, StoreError> {
    let failed = |e: JsValue| StoreError::Failed(format!("{e:?}"));
    let cost = u32::try_from(request.cost).unwrap_or(u32::MAX);
    let promise = eg_limit(env, LIMITER_BINDING, key, &request.policy, cost).map_err(failed)?;
    if promise.is_undefined() {
        return Err(StoreError::Unavailable);
    }
    // An RPC call answers a thenable (workerd's `RpcPromise`), not a `Promise` instance.
    let promise: js_sys::Promise = promise.unchecked_into();
    let answer = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(failed)?;
    let text = answer.as_string().ok_or_else(|| StoreError::Failed("the limiter answered no text".into()))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Failed(e.to_string()))
}

/// Cloudflare's `ratelimits` binding: allowed or not, counted per location.
async fn limit_with_binding(
    env: &Env,
    binding: &str,
    period_s: u64,
    key: &str,
) -> std::result::Result<Decision, StoreError> {
    let limiter = env.rate_limiter(binding).map_err(|_| StoreError::Unavailable)?;
    let outcome = limiter.limit(key.to_owned()).await.map_err(|e| StoreError::Failed(e.to_string()))?;
    Ok(counter::from_allowance(outcome.success, period_s))
}

impl Limiter for super::Workers {
    async fn limit(&self, key: &str, request: &LimitRequest) -> std::result::Result<Decision, StoreError> {
        match &request.backend {
            Backend::Exact => limit(&self.env, key, request).await,
            Backend::CloudflareBinding { binding, period_s } => {
                limit_with_binding(&self.env, binding, *period_s, key).await
            }
        }
    }
}
