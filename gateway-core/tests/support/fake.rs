//! The scripted platform of the pipeline tests: an upstream that records what it received,
//! a manual clock, fixed entropy, in-memory secrets and store.
#![allow(dead_code, clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use gateway_core::ports::{
    AccessLog, Body, BodyError, Clock, EdgeCache, Entropy, Fetch, FetchError, Limiter, Secrets, SignatureVerifier,
    Sleep, Store, StoreError, UnixMillis,
};
use http::{HeaderMap, Request, Response, StatusCode};

#[derive(Debug, Clone, PartialEq)]
pub enum FakeBody {
    Empty,
    Bytes(Bytes),
    /// A body of unknown length arriving in chunks.
    Chunks(Vec<Bytes>),
    /// A client that sends a few bytes, then nothing, forever.
    Stalled,
    /// A body counted as it streams: sending more than the limit aborts the request.
    Limited(Box<FakeBody>, u64),
    /// A body given up when it stalls that long (`Body::idle_timeout`).
    Idle(Box<FakeBody>, std::time::Duration),
}

impl Body for FakeBody {
    fn empty() -> Self {
        Self::Empty
    }
    fn from_bytes(bytes: Bytes) -> Self {
        Self::Bytes(bytes)
    }
    fn is_known_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }
    async fn collect(self, limit: u64) -> Result<Bytes, BodyError> {
        let chunks = match self {
            Self::Empty => vec![],
            Self::Bytes(b) => vec![b],
            Self::Chunks(c) => c,
            Self::Stalled => std::future::pending().await,
            Self::Limited(inner, own) => return Box::pin(inner.collect(limit.min(own))).await,
            Self::Idle(inner, _) => return Box::pin(inner.collect(limit)).await,
        };
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > limit {
                return Err(BodyError::TooLarge);
            }
        }
        Ok(out.into())
    }
    fn limited(self, limit: u64) -> Self {
        Self::Limited(Box::new(self), limit)
    }
    fn idle_timeout(self, idle: std::time::Duration) -> Self {
        Self::Idle(Box::new(self), idle)
    }
}

impl FakeBody {
    pub fn text(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Self::Chunks(c) => c.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect(),
            Self::Stalled => String::new(),
            Self::Limited(inner, _) | Self::Idle(inner, _) => inner.text(),
        }
    }
}

pub enum Script {
    Respond(Response<FakeBody>),
    Unreachable,
    Hang,
}

/// The fake platform. `Fake::<true>` (see [`Fake::bounded`]) bounds each upstream call itself,
/// as Workers does (`Fetch::BOUNDS_FETCH`).
pub struct Fake<const BOUNDED: bool = false> {
    pub script: RefCell<VecDeque<Script>>,
    pub received: RefCell<Vec<Request<FakeBody>>>,
    pub now: Cell<UnixMillis>,
    pub logs: RefCell<Vec<String>>,
    pub secrets: RefCell<HashMap<String, String>>,
    pub store: RefCell<HashMap<String, Bytes>>,
    /// What a native signature check answers (`None`: the platform has none).
    pub native_verify: Cell<Option<bool>>,
    pub native_calls: Cell<u32>,
    /// Rate-limit states by key; `limiter_down` makes the limiter fail.
    pub limits: RefCell<HashMap<String, gateway_core::ratelimit::decide::State>>,
    pub limiter_down: Cell<bool>,
    /// How many times the limiter was asked.
    pub limiter_calls: Cell<usize>,
    /// The edge cache: key → (status, headers, body).
    pub cache: RefCell<HashMap<String, (u16, http::HeaderMap, String)>>,
    /// Times each fetch is pending before it answers, as a network round trip would be:
    /// lets concurrent requests interleave.
    pub fetch_yields: Cell<u32>,
    /// The limits `fetch_within` was given (bounded fakes only).
    pub limits_given: RefCell<Vec<std::time::Duration>>,
}

impl Fake {
    pub fn new() -> Self {
        Self::made()
    }
}

impl Fake<true> {
    /// A platform that bounds each upstream call itself: a hanging upstream answers
    /// `FetchError::TimedOut` once the limit it was given has passed.
    pub fn bounded() -> Self {
        Self::made()
    }
}

impl<const BOUNDED: bool> Fake<BOUNDED> {
    fn made() -> Self {
        Self {
            script: RefCell::new(VecDeque::new()),
            received: RefCell::new(Vec::new()),
            now: Cell::new(1_795_314_861_000),
            logs: RefCell::new(Vec::new()),
            secrets: RefCell::new(HashMap::new()),
            store: RefCell::new(HashMap::new()),
            native_verify: Cell::new(None),
            native_calls: Cell::new(0),
            limits: RefCell::new(HashMap::new()),
            limiter_down: Cell::new(false),
            limiter_calls: Cell::new(0),
            cache: RefCell::new(HashMap::new()),
            fetch_yields: Cell::new(0),
            limits_given: RefCell::new(Vec::new()),
        }
    }
    pub fn respond(self, status: u16, headers: &[(&str, &str)], body: &str) -> Self {
        let mut response = Response::new(FakeBody::Bytes(Bytes::from(body.to_owned())));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for (n, v) in headers {
            response.headers_mut().append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
        }
        self.script.borrow_mut().push_back(Script::Respond(response));
        self
    }
    pub fn then(self, script: Script) -> Self {
        self.script.borrow_mut().push_back(script);
        self
    }
    pub fn last(&self) -> Request<FakeBody> {
        let mut received = self.received.borrow_mut();
        assert_eq!(received.len(), 1, "expected exactly one upstream request");
        received.pop().unwrap()
    }
}

impl<const BOUNDED: bool> Fetch for Fake<BOUNDED> {
    /// As on Workers: an upstream's 101 reaches the client.
    const WEBSOCKETS: bool = true;
    type Body = FakeBody;
    const BOUNDS_FETCH: bool = BOUNDED;
    async fn fetch_within(
        &self,
        request: Request<FakeBody>,
        limit: std::time::Duration,
    ) -> Result<Response<FakeBody>, FetchError> {
        self.limits_given.borrow_mut().push(limit);
        if matches!(self.script.borrow().front(), Some(Script::Hang)) {
            self.script.borrow_mut().pop_front();
            self.received.borrow_mut().push(request);
            self.now.set(self.now.get() + u64::try_from(limit.as_millis()).unwrap_or(u64::MAX));
            return Err(FetchError::TimedOut);
        }
        self.fetch(request).await
    }
    async fn fetch(&self, request: Request<FakeBody>) -> Result<Response<FakeBody>, FetchError> {
        let (parts, body) = request.into_parts();
        // As a runtime sends it: an upload that stalls past its idle bound is given up.
        let body = match body {
            FakeBody::Idle(inner, _) if matches!(*inner, FakeBody::Stalled) => return Err(FetchError::BodyStalled),
            FakeBody::Idle(inner, _) => *inner,
            body => body,
        };
        let body = match body {
            // As a runtime streams it: past the limit the upload is cut and the upstream never
            // gets a whole request.
            FakeBody::Limited(inner, limit) if inner.text().len() as u64 > limit => {
                return Err(FetchError::BodyTooLarge)
            }
            FakeBody::Limited(inner, _) => *inner,
            body => body,
        };
        self.received.borrow_mut().push(Request::from_parts(parts, body));
        for _ in 0..self.fetch_yields.get() {
            yield_now().await;
        }
        self.now.set(self.now.get() + 7);
        let next = self.script.borrow_mut().pop_front();
        match next {
            Some(Script::Respond(response)) => Ok(response),
            Some(Script::Unreachable) => Err(FetchError::Unreachable("connection refused".into())),
            Some(Script::Hang) => std::future::pending().await,
            None => {
                let mut response = Response::new(FakeBody::Bytes(Bytes::from_static(b"ok")));
                response.headers_mut().insert("x-default", "1".parse().unwrap());
                Ok(response)
            }
        }
    }
}
/// Pending once, then ready.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

impl<const BOUNDED: bool> Clock for Fake<BOUNDED> {
    fn now(&self) -> UnixMillis {
        self.now.get()
    }
}
impl<const BOUNDED: bool> Sleep for Fake<BOUNDED> {
    /// Immediate, unless fetches take turns: then a sleep outlasts a fetch, as a timeout
    /// outlasts a round trip.
    async fn sleep(&self, _duration: Duration) {
        for _ in 0..self.fetch_yields.get().saturating_mul(4) {
            yield_now().await;
        }
    }
}
impl<const BOUNDED: bool> Entropy for Fake<BOUNDED> {
    fn fill(&self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
    }
}
impl<const BOUNDED: bool> AccessLog for Fake<BOUNDED> {
    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.to_owned());
    }
}
impl<const BOUNDED: bool> Secrets for Fake<BOUNDED> {
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.borrow().get(name).cloned()
    }
}
impl<const BOUNDED: bool> Store for Fake<BOUNDED> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.store.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: Bytes) -> Result<(), StoreError> {
        self.store.borrow_mut().insert(key.to_owned(), value);
        Ok(())
    }
    /// Atomic, as Spin's key-value store is: one map, no await between read and write.
    async fn claim(&self, key: &str, now: UnixMillis, hold_ms: u64) -> Result<bool, StoreError> {
        let mut store = self.store.borrow_mut();
        let held = store
            .get(key)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            .is_some_and(|until| until > now);
        if held {
            return Ok(false);
        }
        store.insert(key.to_owned(), Bytes::from((now + hold_ms).to_string()));
        Ok(true)
    }
}
impl<const BOUNDED: bool> SignatureVerifier for Fake<BOUNDED> {
    async fn verify_signature(
        &self,
        _key: &gateway_core::auth::jwt::VerifyingKey,
        _message: &[u8],
        _signature: &[u8],
    ) -> Option<bool> {
        self.native_calls.set(self.native_calls.get() + 1);
        self.native_verify.get()
    }
}
impl<const BOUNDED: bool> Limiter for Fake<BOUNDED> {
    async fn limit(
        &self,
        key: &str,
        request: &gateway_core::ratelimit::LimitRequest,
    ) -> Result<gateway_core::ratelimit::decide::Decision, StoreError> {
        self.limiter_calls.set(self.limiter_calls.get() + 1);
        if self.limiter_down.get() {
            return Err(StoreError::Failed("limiter down".into()));
        }
        let mut limits = self.limits.borrow_mut();
        let (decision, state) =
            gateway_core::ratelimit::decide::decide(&request.rules, limits.get(key), request.now, request.cost);
        limits.insert(key.to_owned(), state);
        Ok(decision)
    }
}
impl<const BOUNDED: bool> EdgeCache for Fake<BOUNDED> {
    fn cache_available(&self) -> bool {
        true
    }
    async fn cache_match(&self, key: &str) -> Option<Response<FakeBody>> {
        let (status, headers, body) = self.cache.borrow().get(key).cloned()?;
        let mut response = Response::new(FakeBody::Bytes(Bytes::from(body)));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        *response.headers_mut() = headers;
        Some(response)
    }
    async fn cache_put(
        &self,
        key: &str,
        response: Response<FakeBody>,
        headers: HeaderMap,
    ) -> (Response<FakeBody>, bool) {
        let stored = (response.status().as_u16(), headers, response.body().text());
        self.cache.borrow_mut().insert(key.to_owned(), stored);
        (response, true)
    }
}

/// The fake as a platform that runs every request in a fresh instance (Spin): the same
/// scripted ports, with [`Store::FRESH_INSTANCE_PER_REQUEST`].
pub struct FreshInstances<'a>(pub &'a Fake);

impl Fetch for FreshInstances<'_> {
    type Body = FakeBody;
    async fn fetch(&self, request: Request<FakeBody>) -> Result<Response<FakeBody>, FetchError> {
        self.0.fetch(request).await
    }
}
impl Clock for FreshInstances<'_> {
    fn now(&self) -> UnixMillis {
        self.0.now()
    }
}
impl Sleep for FreshInstances<'_> {
    async fn sleep(&self, duration: Duration) {
        self.0.sleep(duration).await;
    }
}
impl Entropy for FreshInstances<'_> {
    fn fill(&self, buf: &mut [u8]) {
        self.0.fill(buf);
    }
}
impl AccessLog for FreshInstances<'_> {
    fn log(&self, line: &str) {
        self.0.log(line);
    }
}
impl Secrets for FreshInstances<'_> {
    fn secret(&self, name: &str) -> Option<String> {
        self.0.secret(name)
    }
}
impl Store for FreshInstances<'_> {
    const FRESH_INSTANCE_PER_REQUEST: bool = true;
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes) -> Result<(), StoreError> {
        self.0.put(key, value).await
    }
    async fn claim(&self, key: &str, now: UnixMillis, hold_ms: u64) -> Result<bool, StoreError> {
        self.0.claim(key, now, hold_ms).await
    }
}
impl SignatureVerifier for FreshInstances<'_> {
    async fn verify_signature(
        &self,
        key: &gateway_core::auth::jwt::VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        self.0.verify_signature(key, message, signature).await
    }
}
impl Limiter for FreshInstances<'_> {
    async fn limit(
        &self,
        key: &str,
        request: &gateway_core::ratelimit::LimitRequest,
    ) -> Result<gateway_core::ratelimit::decide::Decision, StoreError> {
        self.0.limit(key, request).await
    }
}
impl EdgeCache for FreshInstances<'_> {
    fn cache_available(&self) -> bool {
        self.0.cache_available()
    }
    async fn cache_match(&self, key: &str) -> Option<Response<FakeBody>> {
        self.0.cache_match(key).await
    }
    async fn cache_put(
        &self,
        key: &str,
        response: Response<FakeBody>,
        stored: HeaderMap,
    ) -> (Response<FakeBody>, bool) {
        self.0.cache_put(key, response, stored).await
    }
}
