//! The traits an adapter implements so the pipeline can do IO. The core never reads the
//! clock, the environment or a global: everything arrives through these ports.
//!
//! Both edge runtimes run one request on one thread and their futures are `!Send`, so
//! nothing here asks for `Send` or `Sync`.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

/// A request or response body as the platform holds it. The pipeline passes it through
/// untouched and only reads it when a policy needs the bytes.
pub trait Body: Sized {
    /// A body with no bytes.
    fn empty() -> Self;
    /// A body the gateway produced itself.
    fn from_bytes(bytes: Bytes) -> Self;
    /// True when the body is known to carry no bytes (e.g. a GET without a body).
    fn is_known_empty(&self) -> bool;
    /// Reads the whole body, failing with [`BodyError::TooLarge`] as soon as more than
    /// `limit` bytes arrive.
    async fn collect(self, limit: u64) -> Result<Bytes, BodyError>;
    /// The body, counted as it streams: once more than `limit` bytes have passed, sending it
    /// stops, the upstream request is aborted (never completed) and the fetch fails with
    /// [`FetchError::BodyTooLarge`]. Nothing is buffered.
    fn limited(self, limit: u64) -> Self;
    /// The body, given up when nothing arrives for `idle` while it is being sent on (time the
    /// receiver spends not reading does not count). A request body's upstream request is
    /// aborted and the fetch fails with [`FetchError::BodyStalled`]; a response body's client
    /// response is aborted, never ended as if complete. Bytes the gateway holds never stall.
    fn idle_timeout(self, idle: Duration) -> Self;
}

/// A platform's own body stream (a JS `ReadableStream`, a wasi input stream), read whole
/// only when a policy needs the bytes.
pub trait ByteStream: Sized {
    /// Reads the stream to its end, failing with [`BodyError::TooLarge`] as soon as more than
    /// `limit` bytes arrive ([`LimitedBuffer`] does the counting).
    async fn collect(self, limit: u64) -> Result<Bytes, BodyError>;
    /// The stream, counted as the platform sends it ([`Body::limited`]).
    fn limited(self, limit: u64) -> Self;
    /// The stream, given up when it stalls as the platform sends it ([`Body::idle_timeout`]).
    fn idle_timeout(self, idle: Duration) -> Self;
}

/// The body both adapters use: nothing, bytes the gateway produced, or the platform's stream
/// passed through untouched.
#[derive(Debug)]
pub enum StreamBody<S> {
    /// No body.
    Empty,
    /// A body the gateway made (a problem answer, a counted request body).
    Bytes(Bytes),
    /// The platform's stream.
    Stream(S),
}

impl<S: ByteStream> Body for StreamBody<S> {
    fn empty() -> Self {
        Self::Empty
    }

    fn from_bytes(bytes: Bytes) -> Self {
        Self::Bytes(bytes)
    }

    fn is_known_empty(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Bytes(bytes) => bytes.is_empty(),
            Self::Stream(_) => false,
        }
    }

    async fn collect(self, limit: u64) -> Result<Bytes, BodyError> {
        match self {
            Self::Empty => Ok(Bytes::new()),
            Self::Bytes(bytes) if bytes.len() as u64 > limit => Err(BodyError::TooLarge),
            Self::Bytes(bytes) => Ok(bytes),
            Self::Stream(stream) => stream.collect(limit).await,
        }
    }

    fn limited(self, limit: u64) -> Self {
        match self {
            Self::Stream(stream) => Self::Stream(stream.limited(limit)),
            // Known lengths were checked against the limit already.
            known => known,
        }
    }

    fn idle_timeout(self, idle: Duration) -> Self {
        match self {
            Self::Stream(stream) => Self::Stream(stream.idle_timeout(idle)),
            held => held,
        }
    }
}

/// Accumulates chunks of a body up to a limit.
///
/// ```
/// use gateway_core::ports::{BodyError, LimitedBuffer};
/// let mut buffer = LimitedBuffer::new(5);
/// assert_eq!(buffer.push(b"abc"), Ok(()));
/// assert_eq!(buffer.push(b"def"), Err(BodyError::TooLarge));
/// ```
#[derive(Debug)]
pub struct LimitedBuffer {
    bytes: Vec<u8>,
    limit: u64,
}

impl LimitedBuffer {
    /// An empty buffer that accepts at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self { bytes: Vec::new(), limit }
    }

    /// Appends a chunk, or fails once the total would exceed the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        if (self.bytes.len() + chunk.len()) as u64 > self.limit {
            return Err(BodyError::TooLarge);
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The bytes collected.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.bytes)
    }
}

/// Why a body could not be read.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// More bytes arrived than the limit allows.
    TooLarge,
    /// The stream failed (client went away, malformed chunking, ...).
    Read,
}

/// Why an upstream request produced no response.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The upstream could not be reached: DNS, connect, TLS or a reset before the response head.
    Unreachable(String),
    /// The request could not be expressed on this platform (e.g. an invalid header value).
    InvalidRequest(String),
    /// A [`Body::limited`] request body passed its limit while it streamed; the upstream
    /// request was aborted.
    BodyTooLarge,
    /// A [`Body::idle_timeout`] request body sent nothing for that long; the upstream request
    /// was aborted.
    BodyStalled,
    /// No response head arrived within the limit given to [`Fetch::fetch_within`]; the
    /// request was aborted.
    TimedOut,
}

/// Outbound HTTP.
pub trait Fetch {
    /// Whether an upstream's `101 Switching Protocols` answer to a WebSocket upgrade can be
    /// handed to the client (Workers). Where it cannot (Spin: wasi-http has no upgrade), the
    /// gateway answers upgrade requests 501 itself.
    const WEBSOCKETS: bool = false;
    /// The platform's body type, used for both directions.
    type Body: Body;
    /// Sends a request and resolves once the response head has arrived; the body streams after.
    async fn fetch(&self, request: Request<Self::Body>) -> Result<Response<Self::Body>, FetchError>;

    /// Whether [`Fetch::fetch_within`] bounds the wait for the response head itself (Workers:
    /// a timer on the JS side aborts the request), so the gateway need not race a [`Sleep`]
    /// against each upstream call. A timer raced from wasm costs a closure, a JS timer and a
    /// wake-up per request; one kept in JS costs a fraction of that.
    const BOUNDS_FETCH: bool = false;

    /// As [`Fetch::fetch`], but gives up with [`FetchError::TimedOut`] when no response head
    /// arrived within `limit` (the body may stream for longer). Called only where
    /// [`Fetch::BOUNDS_FETCH`] says so; the default does not bound anything.
    async fn fetch_within(
        &self,
        request: Request<Self::Body>,
        limit: Duration,
    ) -> Result<Response<Self::Body>, FetchError> {
        let _ = limit;
        self.fetch(request).await
    }
}

/// How long a WebSocket the client opened through the gateway may live, carried in the
/// extensions of a `101` response for the adapter that joins the two sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketLimits {
    /// Closed (1001, "idle timeout") when no message passes either way for this long.
    pub idle: Option<Duration>,
    /// Closed (1001, "maximum lifetime") this long after it opened.
    pub max_lifetime: Option<Duration>,
}

/// Wall-clock time.
pub trait Clock {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> UnixMillis;
}

/// Waiting, used for timeouts (`select(work, sleep)`).
pub trait Sleep {
    /// Resolves after `duration`.
    async fn sleep(&self, duration: Duration);
}

/// Randomness for request ids and trace ids.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// A uniformly random u64 from the platform's entropy.
pub(crate) fn random_u64(entropy: &(impl Entropy + ?Sized)) -> u64 {
    let mut bytes = [0u8; 8];
    entropy.fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Where the one access-log line per request goes.
pub trait AccessLog {
    /// Writes one complete JSON line (without the newline).
    fn log(&self, line: &str);

    /// Whether this platform wants each step's decision explained (`edgegate explain` does).
    /// When `false`, the default, no explanation is ever built: a runtime pays nothing.
    const EXPLAINS: bool = false;

    /// One decision and its reason, in the order the request met them: `step` names the
    /// phase ("routing", "cors", "ip", "auth", "rate-limit", "body", "cache", "dispatch",
    /// "response"); "keys" carries only the URL of a key set about to be fetched.
    fn explain(&self, _step: &'static str, _text: &str) {}
}

/// Tells `platform` why, when it asks ([`AccessLog::EXPLAINS`]); `text` is built only then.
#[inline(always)]
pub(crate) fn explain<L: AccessLog + ?Sized>(platform: &L, step: &'static str, text: impl FnOnce() -> String) {
    if L::EXPLAINS {
        platform.explain(step, &text());
    }
}

/// Secrets the runtime holds (wrangler secrets and `.dev.vars` on Workers, variables on Spin),
/// so routes.json never contains one.
pub trait Secrets {
    /// The secret's value, or `None` when the runtime has no secret of that name.
    fn secret(&self, name: &str) -> Option<String>;
}

/// A key-value store shared by the isolates or instances of one deployment (Workers KV,
/// Spin's key-value store). Values carry their own expiry where they need one.
pub trait Store {
    /// `true` where every request runs in a fresh instance (Spin) and nothing the gateway
    /// learns survives it: results worth keeping (verified tokens) are then kept in this store,
    /// where an isolate that lives on (Workers) keeps them in memory.
    const FRESH_INSTANCE_PER_REQUEST: bool = false;
    /// The value under `key`, `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// Stores `value` under `key`, replacing what was there.
    async fn put(&self, key: &str, value: Bytes) -> Result<(), StoreError>;
    /// Claims `key` until `now + hold_ms`, atomically across every instance sharing the store:
    /// `true` when no unexpired claim was there and this one now is. Used so that one instance
    /// does a job (a JWKS fetch) the others would repeat. A store without atomic operations
    /// (Workers KV) answers `true`: claims then hold per isolate only.
    async fn claim(&self, key: &str, now: UnixMillis, hold_ms: u64) -> Result<bool, StoreError> {
        let _ = (key, now, hold_ms);
        Ok(true)
    }
}

/// Why the store did not answer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// This deployment has no store bound (no KV namespace, no key-value store label).
    Unavailable,
    /// The store failed; the text is for logs, never for clients.
    Failed(String),
}

/// Public-key signature checks the platform can do natively (WebCrypto on Workers), which
/// costs less CPU than the same math in wasm. The core checks that the token's `alg` is the
/// key's before asking, so the platform only ever does the math for the key's own algorithm.
pub trait SignatureVerifier {
    /// `Some(valid)` when the platform checked `signature` over `message` with `key` (whose
    /// [`public_jwk`](crate::auth::jwt::VerifyingKey::public_jwk) it may import and cache);
    /// `None` leaves the check to the core.
    async fn verify_signature(
        &self,
        key: &crate::auth::jwt::VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool>;
}

/// Exact counting: runs [`crate::ratelimit::decide::decide`] on the state stored under `key`
/// and stores the new state, atomically with respect to every other request for that key
/// (a Durable Object per key on Workers, compare-and-swap on Spin's key-value store).
pub trait Limiter {
    /// The decision for one request; `Err` when the counter cannot be reached.
    async fn limit(
        &self,
        key: &str,
        request: &crate::ratelimit::LimitRequest,
    ) -> Result<crate::ratelimit::decide::Decision, StoreError>;
}

/// An HTTP cache at the edge, keyed by URL (the Workers Cache API). Spin has none.
pub trait EdgeCache: Fetch {
    /// Whether the platform has a cache; without one every cacheable request is a miss.
    fn cache_available(&self) -> bool;
    /// The stored response for `key`, if any and still fresh.
    async fn cache_match(&self, key: &str) -> Option<Response<Self::Body>>;
    /// Stores a copy of `response` under `key`: its status and body, with exactly the headers
    /// `stored` (which say how long the cache keeps it); returns the response to send,
    /// unchanged, and whether the copy was stored.
    async fn cache_put(
        &self,
        key: &str,
        response: Response<Self::Body>,
        stored: HeaderMap,
    ) -> (Response<Self::Body>, bool);
}

/// Everything the pipeline needs from a platform.
pub trait Platform:
    Fetch + Clock + Sleep + Entropy + AccessLog + Secrets + Store + SignatureVerifier + Limiter + EdgeCache
{
}
impl<T: Fetch + Clock + Sleep + Entropy + AccessLog + Secrets + Store + SignatureVerifier + Limiter + EdgeCache>
    Platform for T
{
}

/// What the runtime (not the client) says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The peer address as the runtime saw it (`CF-Connecting-IP` on Workers,
    /// `spin-client-addr` on Spin).
    pub ip: Option<IpAddr>,
    /// Whether the client connected over TLS.
    pub https: bool,
}
