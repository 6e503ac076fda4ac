//! The traits an adapter implements so the pipeline can do IO. The core never reads the
//! clock, the environment or a global: everything arrives through these ports.
//!
//! Both edge runtimes run one request on one thread and their futures are `!Send`, so
//! nothing here asks for `Send` or `Sync`.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

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
}

/// Outbound HTTP.
pub trait Fetch {
    /// The platform's body type, used for both directions.
    type Body: Body;
    /// Sends a request and resolves once the response head has arrived; the body streams after.
    async fn fetch(&self, request: Request<Self::Body>) -> Result<Response<Self::Body>, FetchError>;
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

/// Where the one access-log line per request goes.
pub trait AccessLog {
    /// Writes one complete JSON line (without the newline).
    fn log(&self, line: &str);
}

/// Everything the pipeline needs from a platform.
pub trait Platform: Fetch + Clock + Sleep + Entropy + AccessLog {}
impl<T: Fetch + Clock + Sleep + Entropy + AccessLog> Platform for T {}

/// What the runtime (not the client) says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The peer address as the runtime saw it (`CF-Connecting-IP` on Workers,
    /// `spin-client-addr` on Spin).
    pub ip: Option<IpAddr>,
    /// Whether the client connected over TLS.
    pub https: bool,
}
