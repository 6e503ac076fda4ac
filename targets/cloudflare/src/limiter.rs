//! Exact, global rate limiting on Workers: one Durable Object per counting key (`idFromName`),
//! which runs the core's pure decision on its in-memory state. A Durable Object handles one
//! event at a time and the decision is made without awaiting, so concurrent requests for a key
//! are decided in sequence: with a limit of L, exactly L of N concurrent requests pass. The
//! state is written to the object's storage with every decision (or at most once a second with
//! `persistence: write_behind`), so an eviction loses nothing (or at most that second).
use std::cell::{Cell, RefCell};
use std::time::Duration;

use gateway_core::ports::{Limiter, StoreError};
use gateway_core::ratelimit::decide::{decide, Decision, State as Counter};
use gateway_core::ratelimit::{LimitRequest, Persistence};
use wasm_bindgen::JsValue;
use worker::{durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State};

/// The Durable Object namespace binding (wrangler.toml `[[durable_objects.bindings]]`).
pub const LIMITER_BINDING: &str = "EDGEGATE_LIMITER";
/// The storage key of the counter state inside its object.
const STATE_KEY: &str = "s";
/// How long `write_behind` waits before writing.
const WRITE_BEHIND: Duration = Duration::from_secs(1);

/// One counting key's state.
#[durable_object]
pub struct EdgegateLimiter {
    state: State,
    counter: RefCell<Option<Counter>>,
    loaded: Cell<bool>,
    dirty: Cell<bool>,
    alarm_set: Cell<bool>,
}

impl std::fmt::Debug for EdgegateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgegateLimiter").field("counter", &self.counter).field("loaded", &self.loaded).finish()
    }
}

impl DurableObject for EdgegateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            counter: RefCell::new(None),
            loaded: Cell::new(false),
            dirty: Cell::new(false),
            alarm_set: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request: LimitRequest = req.json().await?;
        let storage = self.state.storage();
        if !self.loaded.get() {
            // Storage reads close the input gate, so no other request runs meanwhile.
            let stored: Option<Counter> = storage.get(STATE_KEY).await.unwrap_or(None);
            if !self.loaded.get() {
                *self.counter.borrow_mut() = stored;
                self.loaded.set(true);
            }
        }
        // The object's own clock: one clock per key, whichever isolate asks.
        let now = worker::Date::now().as_millis();
        let (decision, next) = decide(&request.rules, self.counter.borrow().as_ref(), now, request.cost);
        let changed = decision.allowed;
        *self.counter.borrow_mut() = Some(next.clone());
        if changed {
            match request.persistence {
                Persistence::EveryRequest => storage.put(STATE_KEY, &next).await?,
                Persistence::WriteBehind => {
                    self.dirty.set(true);
                    if !self.alarm_set.get() {
                        storage.set_alarm(WRITE_BEHIND).await?;
                        self.alarm_set.set(true);
                    }
                }
            }
        }
        Response::from_json(&decision)
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_set.set(false);
        if self.dirty.replace(false) {
            let counter = self.counter.borrow().clone();
            if let Some(counter) = counter {
                self.state.storage().put(STATE_KEY, &counter).await?;
            }
        }
        Response::ok("")
    }
}

/// The worker's side: one round trip to the key's object.
pub async fn limit(env: &Env, key: &str, request: &LimitRequest) -> std::result::Result<Decision, StoreError> {
    let failed = |e: worker::Error| StoreError::Failed(e.to_string());
    let namespace = env.durable_object(LIMITER_BINDING).map_err(|_| StoreError::Unavailable)?;
    let stub = namespace.id_from_name(key).and_then(|id| id.get_stub()).map_err(failed)?;
    let body = serde_json::to_string(request).map_err(|e| StoreError::Failed(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(JsValue::from_str(&body)));
    let call = Request::new_with_init("https://limiter.internal/decide", &init).map_err(failed)?;
    let mut response = stub.fetch_with_request(call).await.map_err(failed)?;
    if response.status_code() != 200 {
        return Err(StoreError::Failed(format!("limiter answered {}", response.status_code())));
    }
    response.json::<Decision>().await.map_err(failed)
}

impl Limiter for super::Workers {
    async fn limit(&self, key: &str, request: &LimitRequest) -> std::result::Result<Decision, StoreError> {
        limit(&self.env, key, request).await
    }
}
