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

/// Random bytes drawn from the platform a block at a time, for a platform where each draw
/// crosses a costly boundary (`crypto.getRandomValues` on Workers): a request needs a few small
/// pieces (request id, trace and span ids), and one draw serves many requests. No byte is
/// handed out twice.
///
/// ```
/// use gateway_core::ports::EntropyPool;
/// let mut pool = EntropyPool::new();
/// let mut draws = 0;
/// let mut refill = |block: &mut [u8]| { draws += 1; block.fill(7) };
/// let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
/// pool.fill(&mut a, &mut refill);
/// pool.fill(&mut b, &mut refill);
/// assert_eq!((a, b), ([7; 16], [7; 16]));
/// assert_eq!(draws, 1, "one block served both");
/// ```
// Not `Clone`: two copies would hand out the same bytes.
#[derive(Debug)]
pub struct EntropyPool {
    block: [u8; EntropyPool::BLOCK],
    used: usize,
}

impl EntropyPool {
    /// Bytes drawn at a time.
    pub const BLOCK: usize = 512;

    /// An empty pool: the first [`fill`](Self::fill) draws.
    pub const fn new() -> Self {
        Self { block: [0; Self::BLOCK], used: Self::BLOCK }
    }

    /// Fills `buf` from the pool, calling `refill` to fill a whole block whenever what is left
    /// is too short.
    pub fn fill(&mut self, buf: &mut [u8], mut refill: impl FnMut(&mut [u8])) {
        for chunk in buf.chunks_mut(Self::BLOCK) {
            if Self::BLOCK - self.used < chunk.len() {
                refill(&mut self.block);
                self.used = 0;
            }
            if let Some(fresh) = self.block.get_mut(self.used..self.used + chunk.len()) {
                chunk.copy_from_slice(fresh);
                // Spent: a refill that fails leaves zeros, never the same bytes again.
                fresh.fill(0);
            }
            self.used += chunk.len();
        }
    }
}

impl Default for EntropyPool {
    fn default() -> Self {
        Self::new()
    }
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

/// [`Store::claim`] for a store that swaps a value atomically (compare-and-swap): given the
/// value under the claim's key (its expiry, in decimal milliseconds), whether the claim is won
/// at `now`, and the value to swap in when it is (`None` when an unexpired claim holds). An
/// unreadable value holds nothing.
///
/// ```
/// use gateway_core::ports::claim_stored;
/// let (won, write) = claim_stored(None, 1_000, 500);
/// assert!(won);
/// assert_eq!(write.as_deref(), Some(&b"1500"[..]));
/// assert_eq!(claim_stored(Some(b"1500"), 1_499, 500), (false, None));
/// assert!(claim_stored(Some(b"1500"), 1_500, 500).0, "expired at its instant");
/// ```
pub fn claim_stored(stored: Option<&[u8]>, now: UnixMillis, hold_ms: u64) -> (bool, Option<Vec<u8>>) {
    let held_until = stored.and_then(|value| std::str::from_utf8(value).ok()?.parse::<UnixMillis>().ok());
    if held_until.is_some_and(|until| until > now) {
        return (false, None);
    }
    (true, Some(now.saturating_add(hold_ms).to_string().into_bytes()))
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
    /// `None` (what a platform without native crypto keeps) leaves the check to the core.
    async fn verify_signature(
        &self,
        key: &crate::auth::jwt::VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        let _ = (key, message, signature);
        None
    }
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

/// An HTTP cache at the edge, keyed by URL (the Workers Cache API). A platform without one
/// (Spin) keeps the defaults: every cacheable request is a miss, and `Cache-Status` says so.
pub trait EdgeCache: Fetch {
    /// Whether the platform has a cache.
    fn cache_available(&self) -> bool {
        false
    }
    /// The stored response for `key`, if any and still fresh.
    async fn cache_match(&self, key: &str) -> Option<Response<Self::Body>> {
        let _ = key;
        None
    }
    /// Stores a copy of `response` under `key`: its status and body, with exactly the headers
    /// `stored` (which say how long the cache keeps it); returns the response to send,
    /// unchanged, and whether the copy was stored.
    async fn cache_put(
        &self,
        key: &str,
        response: Response<Self::Body>,
        stored: HeaderMap,
    ) -> (Response<Self::Body>, bool) {
        let _ = (key, stored);
        (response, false)
    }
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

impl Client {
    /// The client as the runtime reports it in a header only the runtime sets
    /// (`CF-Connecting-IP`, `spin-client-addr`), given that header's values: exactly one value,
    /// an address with or without a port. None, two (a client's copy beside the runtime's) or
    /// an unreadable one leave the address unknown rather than guessed.
    ///
    /// ```
    /// use gateway_core::ports::Client;
    /// let one = |v: &'static [u8]| Client::from_runtime_header([v].into_iter(), true).ip;
    /// assert_eq!(one(b"203.0.113.7").unwrap().to_string(), "203.0.113.7");
    /// assert_eq!(one(b"[2001:db8::1]:443").unwrap().to_string(), "2001:db8::1");
    /// assert_eq!(one(b"not an address"), None);
    /// let two: [&[u8]; 2] = [b"203.0.113.7", b"198.51.100.1"];
    /// assert_eq!(Client::from_runtime_header(two.into_iter(), false).ip, None);
    /// ```
    pub fn from_runtime_header<'a>(mut values: impl Iterator<Item = &'a [u8]>, https: bool) -> Self {
        let ip = match (values.next(), values.next()) {
            (Some(value), None) => std::str::from_utf8(value).ok().and_then(|text| {
                text.parse::<IpAddr>().ok().or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
            }),
            _ => None,
        };
        Self { ip, https }
    }
}

#[cfg(test)]
mod tests {
    use super::EntropyPool;

    #[test]
    fn the_entropy_pool_hands_out_each_block_once_and_draws_only_when_short() {
        let mut pool = EntropyPool::new();
        let mut draws = 0u8;
        let mut take = |pool: &mut EntropyPool, n: usize| {
            let mut buf = vec![0u8; n];
            pool.fill(&mut buf, |block| {
                draws += 1;
                block.fill(draws);
            });
            buf
        };
        assert!(take(&mut pool, 500).iter().all(|&b| b == 1));
        assert!(take(&mut pool, 12).iter().all(|&b| b == 1), "the rest of the first block");
        assert!(take(&mut pool, 1).iter().all(|&b| b == 2), "spent: a new block");
        let big = take(&mut pool, 1100);
        assert!(big[..512].iter().all(|&b| b == 3) && big[512..1024].iter().all(|&b| b == 4));
        assert!(big[1024..].iter().all(|&b| b == 5), "longer than a block: a block per piece");
    }
}
