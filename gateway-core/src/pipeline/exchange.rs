//! The per-request exchange: what the phases learn about one request and hand on to the next
//! (who called, which route, what the upstream did), instead of long argument lists.

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response};

use crate::auth::Identity;
use crate::ports::{Client, UnixMillis};
use crate::problem::{ProblemKind, Rejection};
use crate::IsolateState;

/// One request on its way through the phases.
#[derive(Debug)]
pub(crate) struct Exchange<'s> {
    /// What this isolate learned so far: balancer counters, breakers, keys.
    pub state: &'s IsolateState,
    /// The client's request head; `uri` normalized, `headers` sanitized, later edited by auth.
    pub parts: Parts,
    /// The connection as the runtime saw it (an IPv4-mapped address already as IPv4).
    pub client: Client,
    pub request_id: HeaderValue,
    pub request_id_text: Box<str>,
    /// The client's `Origin`, for the CORS decoration of whatever answer goes back.
    pub origin: Option<HeaderValue>,
    pub started: UnixMillis,
    /// The client sent a method-override header (kept only where the route allows it).
    pub method_override: bool,
    /// The path had an encoded slash (`%2F`), refused unless the route allows it.
    pub encoded_slash: bool,
    /// A WebSocket upgrade.
    pub upgrade: bool,
    /// The matched route (index into the gateway's routes), once routing found it.
    pub route: Option<usize>,
    /// The CORS policy that decorates the answer: the default one until a route matched.
    pub cors: Option<usize>,
    pub identity: Identity,
    /// The request carried credentials (`Authorization`, `Cookie`) or authenticated: caching
    /// treats it as personal.
    pub credentialed: bool,
    /// The query string to forward when auth removed a credential from it.
    pub forwarded_query: Option<String>,
    /// `RateLimit-Policy` / `RateLimit` for the answer.
    pub rate_headers: Option<HeaderMap>,
    pub upstream: UpstreamRecord,
    /// The kind of the gateway's own answer, when it gave one (the access log names it).
    pub problem: Option<ProblemKind>,
}

/// What the upstream did, for the log and `Server-Timing`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UpstreamRecord {
    pub status: Option<u16>,
    pub ms: Option<u64>,
}

/// Why a phase did not hand the request on: the gateway answered it.
#[derive(Debug)]
pub(crate) enum Stop<B> {
    /// Not an error: a preflight, a cache hit, the OpenAPI document.
    Answered(Box<Response<B>>),
    Rejected(Rejection),
}

impl<B> From<Rejection> for Stop<B> {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

impl Exchange<'_> {
    /// The query the client sent, or what is left of it after auth removed a credential.
    pub fn client_query(&self) -> Option<&str> {
        match &self.forwarded_query {
            Some(query) => Some(query.as_str()).filter(|q| !q.is_empty()),
            None => self.parts.uri.query(),
        }
    }
}
