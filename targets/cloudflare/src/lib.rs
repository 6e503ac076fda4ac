//! Cloudflare Workers adapter: web-sys requests in, gateway-core in the middle, web-sys
//! responses out. Bodies stay JS `ReadableStream`s unless a policy reads them.
#![allow(async_fn_in_trait)]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use gateway_core::auth::jwt::VerifyingKey;
use gateway_core::ports::{
    AccessLog, BodyError, ByteStream, Client, Clock, EdgeCache, Entropy, EntropyPool, Fetch, FetchError, LimitedBuffer,
    Secrets, SignatureVerifier, Sleep, SocketLimits, Store, StoreError, StreamBody, UnixMillis,
};
use gateway_core::runtime::{pack_headers, unpack_headers, Runtime};
use gateway_core::{problem, Gateway, IsolateState, ProblemKind};
use http::{HeaderMap, Request, Response};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{event, Context, Env, KvStore};

mod limiter;

/// The JS side of the boundary: a request's or response's head crosses in one call as one
/// string (`name\nvalue\n` pairs; header names and values never hold a newline), instead of
/// several calls per header.
#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/glue.js")]
extern "C" {
    fn eg_request_head(request: &web_sys::Request) -> String;
    fn eg_response_head(response: &web_sys::Response) -> String;
    #[wasm_bindgen::prelude::wasm_bindgen(catch)]
    fn eg_response(status: u16, packed: &str, body: JsValue) -> Result<web_sys::Response, JsValue>;
    fn eg_fetch(
        url: &str,
        method: &str,
        packed: &str,
        body: JsValue,
        controller: &web_sys::AbortController,
        timeout: f64,
    ) -> js_sys::Promise;
    fn eg_limited(stream: web_sys::ReadableStream, limit: f64) -> web_sys::ReadableStream;
    fn eg_idle(stream: web_sys::ReadableStream, idle: f64) -> web_sys::ReadableStream;
    #[wasm_bindgen::prelude::wasm_bindgen(catch)]
    fn eg_socket(upstream: &JsValue, packed: &str, idle: f64, lifetime: f64) -> Result<web_sys::Response, JsValue>;
    /// WebCrypto's check of `signature` over `message` with the public `jwk` (imported once per
    /// isolate): a promise of `true` or `false`, or of `undefined` to leave the check to the
    /// core (an algorithm WebCrypto lacks here, a key the runtime refuses).
    fn eg_verify(alg: &str, jwk: &str, signature: &[u8], message: &[u8]) -> js_sys::Promise;
}

/// What `eg_fetch` rejects with when a limited body passed its limit.
const BODY_TOO_LARGE: &str = "edgegate:body-too-large";
/// What `eg_fetch` rejects with when a body stalled past its idle bound.
const BODY_STALLED: &str = "edgegate:body-stalled";
/// What `eg_fetch` rejects with when no response head came within its timeout.
const TIMED_OUT: &str = "edgegate:timeout";

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/glue.js")]
extern "C" {
    /// The routes file's text (`routes`) or the OpenAPI document `openapi.path` serves
    /// (`openapi`, empty if none), as the Worker's entry received them from the routes module
    /// the build wrote (`edgegate embed`, after checking the file).
    fn eg_config(name: &str) -> Option<String>;
}

/// The optional KV namespace binding that shares JWKS documents between isolates and holds
/// API-key consumers.
const KV_BINDING: &str = "EDGEGATE_KV";

/// Compiled once per isolate, on first use. The build already validated the file, so the
/// error arm is only reached if that guarantee is ever broken (or the entry is bypassed).
fn gateway() -> Result<&'static Gateway, ()> {
    static GATEWAY: OnceLock<Option<Gateway>> = OnceLock::new();
    GATEWAY
        .get_or_init(|| {
            let gateway = Gateway::from_json(&eg_config("routes")?).ok()?;
            Some(gateway.with_openapi_document(Bytes::from(eg_config("openapi").unwrap_or_default())))
        })
        .as_ref()
        .ok_or(())
}

#[event(fetch)]
async fn fetch(request: web_sys::Request, env: Env, _ctx: Context) -> worker::Result<web_sys::Response> {
    let platform = Workers { kv: std::cell::OnceCell::new(), env };
    let Ok(gateway) = gateway() else {
        return into_web(problem(ProblemKind::Internal, "The gateway is misconfigured.", ""));
    };
    let (request, client) = match from_web(request) {
        Ok(read) => read,
        Err(_) => return into_web(problem(ProblemKind::BadRequest, "The request could not be read.", "")),
    };
    // What this isolate learns (balancer counters, breakers, keys) lives as long as it does.
    static STATE: OnceLock<IsolateState> = OnceLock::new();
    let state = STATE.get_or_init(IsolateState::new);
    let response = gateway_core::handle(gateway, state, &platform, request, &client).await;
    into_web(response)
}

/// The request as `http` types (its body stays the JS stream) and the client as the runtime
/// reports it, from one read of the head across the boundary.
fn from_web(request: web_sys::Request) -> Result<(Request<JsBody>, Client), http::Error> {
    let head = eg_request_head(&request);
    let mut lines = head.split('\n');
    let method = lines.next().unwrap_or("GET");
    let url = lines.next().unwrap_or("/");
    let mut headers = unpack_headers(lines);
    let client = Runtime::Workers.take_client(&mut headers, url.starts_with("https:"));
    let body = request.body().map_or(JsBody::Empty, |stream| JsBody::Stream(JsStream::Bytes(stream)));
    let mut builder = Request::builder().method(method).uri(url);
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    Ok((builder.body(body)?, client))
}

fn into_web(response: Response<JsBody>) -> worker::Result<web_sys::Response> {
    let (parts, body) = response.into_parts();
    if let JsBody::Stream(JsStream::Socket(upstream)) = body {
        let limits = parts.extensions.get::<SocketLimits>().copied().unwrap_or_default();
        let millis = |bound: Option<Duration>| bound.map_or(0.0, |d| d.as_millis() as f64);
        return Ok(eg_socket(
            &upstream,
            &pack_headers(&parts.headers),
            millis(limits.idle),
            millis(limits.max_lifetime),
        )?);
    }
    Ok(eg_response(parts.status.as_u16(), &pack_headers(&parts.headers), js_body(body))?)
}

/// A body as the JS side takes it: `undefined` for none, the stream, or a byte array.
fn js_body(body: JsBody) -> JsValue {
    match body {
        JsBody::Empty => JsValue::UNDEFINED,
        JsBody::Stream(JsStream::Bytes(stream)) => stream.into(),
        JsBody::Stream(JsStream::Socket(socket)) => socket,
        JsBody::Bytes(bytes) => js_sys::Uint8Array::from(&bytes[..]).into(),
    }
}

/// A body as Workers holds it: a JS stream that is never copied into wasm unless a policy
/// reads it, or bytes the gateway produced.
pub type JsBody = StreamBody<JsStream>;

/// What a Workers body streams: bytes, or, for an upstream's `101`, the upstream's WebSocket
/// (which `eg_response` joins to the client's).
#[derive(Debug)]
pub enum JsStream {
    /// A JS `ReadableStream` of bytes.
    Bytes(web_sys::ReadableStream),
    /// The upstream end of an accepted WebSocket upgrade (`Response.webSocket`).
    Socket(JsValue),
}

impl ByteStream for JsStream {
    async fn collect(self, limit: u64) -> Result<Bytes, BodyError> {
        let stream = match self {
            Self::Bytes(stream) => stream,
            // Messages are not a body.
            Self::Socket(_) => return Ok(Bytes::new()),
        };
        let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
        let mut buffer = LimitedBuffer::new(limit);
        loop {
            let step = JsFuture::from(reader.read()).await.map_err(|_| BodyError::Read)?;
            let done = js_sys::Reflect::get(&step, &JsValue::from_str("done")).map_err(|_| BodyError::Read)?;
            if done.as_bool().unwrap_or(true) {
                return Ok(buffer.finish());
            }
            let chunk = js_sys::Reflect::get(&step, &JsValue::from_str("value")).map_err(|_| BodyError::Read)?;
            let chunk: js_sys::Uint8Array = chunk.dyn_into().map_err(|_| BodyError::Read)?;
            if let Err(error) = buffer.push(&chunk.to_vec()) {
                let _ = reader.cancel();
                return Err(error);
            }
        }
    }

    fn limited(self, limit: u64) -> Self {
        match self {
            // Exact up to 2^53 bytes.
            Self::Bytes(stream) => Self::Bytes(eg_limited(stream, limit as f64)),
            socket => socket,
        }
    }

    fn idle_timeout(self, idle: Duration) -> Self {
        match self {
            Self::Bytes(stream) => Self::Bytes(eg_idle(stream, idle.as_millis() as f64)),
            // A socket's idle bound travels in the response's `SocketLimits`.
            socket => socket,
        }
    }
}

/// The Workers platform: global `fetch`, `Date.now`, `setTimeout`, `crypto`, `console.log`,
/// and the bindings of `env` (secrets and vars, the KV namespace).
struct Workers {
    env: Env,
    /// Looked up on first use: binding a `KvStore` reads six properties across the JS
    /// boundary, which a request that never touches the store should not pay.
    kv: std::cell::OnceCell<Option<KvStore>>,
}

impl Workers {
    fn kv(&self) -> Result<&KvStore, StoreError> {
        self.kv.get_or_init(|| self.env.kv(KV_BINDING).ok()).as_ref().ok_or(StoreError::Unavailable)
    }
}

/// Aborts an in-flight fetch when the gateway stops waiting for it (timeout).
struct AbortOnDrop(Option<web_sys::AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

impl Fetch for Workers {
    const WEBSOCKETS: bool = true;
    type Body = JsBody;

    async fn fetch(&self, request: Request<JsBody>) -> Result<Response<JsBody>, FetchError> {
        send(request, None).await
    }

    const BOUNDS_FETCH: bool = true;

    async fn fetch_within(&self, request: Request<JsBody>, limit: Duration) -> Result<Response<JsBody>, FetchError> {
        send(request, Some(limit)).await
    }
}

/// One upstream request through `eg_fetch`, its wait for the head bounded by `limit` if given.
async fn send(request: Request<JsBody>, limit: Option<Duration>) -> Result<Response<JsBody>, FetchError> {
    let invalid = |e: JsValue| FetchError::InvalidRequest(format!("{e:?}"));
    let (parts, body) = request.into_parts();
    let controller = web_sys::AbortController::new().map_err(invalid)?;
    let promise = eg_fetch(
        &parts.uri.to_string(),
        parts.method.as_str(),
        &pack_headers(&parts.headers),
        js_body(body),
        &controller,
        limit.map_or(0.0, |limit| limit.as_millis().max(1) as f64),
    );
    let mut guard = AbortOnDrop(Some(controller));
    let response = JsFuture::from(promise).await.map_err(|e| match e.as_string() {
        Some(reason) if reason == BODY_TOO_LARGE => FetchError::BodyTooLarge,
        Some(reason) if reason == BODY_STALLED => FetchError::BodyStalled,
        Some(reason) if reason == TIMED_OUT => FetchError::TimedOut,
        _ => FetchError::Unreachable(format!("{e:?}")),
    })?;
    guard.0 = None;
    let response: web_sys::Response =
        response.dyn_into().map_err(|_| FetchError::Unreachable("not a Response".into()))?;
    from_web_response(&response).ok_or_else(|| FetchError::Unreachable("invalid status".into()))
}

/// A JS response as `http` types; its body stays the JS stream.
fn from_web_response(response: &web_sys::Response) -> Option<Response<JsBody>> {
    let head = eg_response_head(response);
    let mut lines = head.split('\n');
    let status = lines.next()?.parse::<u16>().ok()?;
    // Only an upgrade carries a socket: every other answer skips the property lookup.
    let socket = (status == 101)
        .then(|| js_sys::Reflect::get(response, &JsValue::from_str("webSocket")).ok().filter(JsValue::is_object))
        .flatten();
    let body = match (socket, response.body()) {
        (Some(socket), _) => JsBody::Stream(JsStream::Socket(socket)),
        (None, Some(stream)) => JsBody::Stream(JsStream::Bytes(stream)),
        (None, None) => JsBody::Empty,
    };
    let mut out = Response::new(body);
    *out.status_mut() = http::StatusCode::from_u16(status).ok()?;
    *out.headers_mut() = unpack_headers(lines);
    Some(out)
}

/// `caches.default`, the Workers cache of this data center.
fn default_cache() -> Option<web_sys::Cache> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let caches = global.caches().ok()?;
    js_sys::Reflect::get(&caches, &JsValue::from_str("default")).ok()?.dyn_into().ok()
}

impl EdgeCache for Workers {
    fn cache_available(&self) -> bool {
        true
    }

    async fn cache_match(&self, key: &str) -> Option<Response<JsBody>> {
        let found = JsFuture::from(default_cache()?.match_with_str(key)).await.ok()?;
        let response: web_sys::Response = found.dyn_into().ok()?;
        from_web_response(&response)
    }

    async fn cache_put(&self, key: &str, response: Response<JsBody>, stored: HeaderMap) -> (Response<JsBody>, bool) {
        let Some(cache) = default_cache() else { return (response, false) };
        let (parts, body) = response.into_parts();
        // The body twice: one branch for the client, one for the cache.
        let (sent, kept) = match body {
            JsBody::Stream(JsStream::Bytes(stream)) => {
                let branches = stream.tee();
                let branch = |i: u32| JsBody::Stream(JsStream::Bytes(branches.get(i).unchecked_into()));
                (branch(0), branch(1))
            }
            JsBody::Bytes(bytes) => (JsBody::Bytes(bytes.clone()), JsBody::Bytes(bytes)),
            JsBody::Empty => (JsBody::Empty, JsBody::Empty),
            // An upgrade's socket is never stored.
            socket => return (Response::from_parts(parts, socket), false),
        };
        let stored = match eg_response(parts.status.as_u16(), &pack_headers(&stored), js_body(kept)) {
            Ok(copy) => JsFuture::from(cache.put_with_str(key, &copy)).await.is_ok(),
            Err(_) => false,
        };
        (Response::from_parts(parts, sent), stored)
    }
}

impl Clock for Workers {
    fn now(&self) -> UnixMillis {
        js_sys::Date::now() as UnixMillis
    }
}

impl Sleep for Workers {
    async fn sleep(&self, duration: Duration) {
        worker::Delay::from(duration).await;
    }
}

thread_local! {
    /// One `crypto.getRandomValues` crossing serves the small draws of many requests.
    static RANDOM_POOL: std::cell::RefCell<EntropyPool> = const { std::cell::RefCell::new(EntropyPool::new()) };
}

impl Entropy for Workers {
    fn fill(&self, buf: &mut [u8]) {
        RANDOM_POOL.with_borrow_mut(|pool| {
            pool.fill(buf, |block| {
                let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
                if let Ok(crypto) = global.crypto() {
                    let _ = crypto.get_random_values_with_u8_array(block);
                }
            });
        });
    }
}

impl AccessLog for Workers {
    fn log(&self, line: &str) {
        web_sys::console::log_1(&JsValue::from_str(line));
    }
}

impl Secrets for Workers {
    fn secret(&self, name: &str) -> Option<String> {
        // `var` reads wrangler secrets, `.dev.vars` and [vars] alike.
        self.env.var(name).ok().map(|value| value.to_string())
    }
}

impl Store for Workers {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let kv = self.kv()?;
        let value = kv.get(key).bytes().await.map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(value.map(Bytes::from))
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), StoreError> {
        let kv = self.kv()?;
        let put = kv.put_bytes(key, &value).map_err(|e| StoreError::Failed(e.to_string()))?;
        put.execute().await.map_err(|e| StoreError::Failed(e.to_string()))
    }
}

impl SignatureVerifier for Workers {
    async fn verify_signature(&self, key: &VerifyingKey, message: &[u8], signature: &[u8]) -> Option<bool> {
        let jwk = key.public_jwk()?;
        JsFuture::from(eg_verify(key.algorithm().name(), jwk, signature, message)).await.ok()?.as_bool()
    }
}
