//! The gateway's own answers: `application/problem+json` (RFC 9457) with a stable `type`.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};

use crate::ports::Body;

/// Every kind of answer the gateway produces itself. The `type` URI of each is stable and
/// documented in the README; the `detail` is safe to show to clients.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// No route matches the request (404).
    RouteNotFound,
    /// A route matches the path but not the method (405, with `Allow`).
    MethodNotAllowed,
    /// The request is malformed: dot segments in the path, a bad `Content-Length` (400).
    BadRequest,
    /// The request body exceeds the route's limit (413).
    PayloadTooLarge,
    /// The client did not send the request body the gateway had to read within the route's
    /// timeout (408).
    RequestTimeout,
    /// The request body's `Content-Encoding` is one the route cannot read to validate (415).
    UnsupportedEncoding,
    /// The request body is not JSON or fails the route's JSON Schema; the detail names the path (400).
    InvalidBody,
    /// The client's address is not allowed on this route (403).
    IpDenied,
    /// The upstream's successful answer could not be transformed as the route requires (502).
    BadUpstreamBody,
    /// A CORS preflight was refused: origin, method or headers not allowed (403).
    CorsRejected,
    /// No valid credential: missing, malformed, expired, wrongly signed (401, with
    /// `WWW-Authenticate`).
    Unauthorized,
    /// The credential is valid but lacks a scope or role the route requires (403).
    InsufficientScope,
    /// The keys or consumer directory needed to check a credential cannot be obtained and
    /// nothing usable is cached (503).
    AuthUnavailable,
    /// A rate limit or quota is exhausted (429, with `Retry-After`).
    RateLimited,
    /// A rate-limit policy that rejects requests it cannot attribute got one (403).
    RateLimitKeyMissing,
    /// The rate limiter cannot be reached and the policy fails closed (503).
    RateLimitUnavailable,
    /// The upstream could not be reached (502).
    UpstreamUnreachable,
    /// Every target of the upstream has its circuit breaker open (503).
    UpstreamCircuitOpen,
    /// The upstream did not answer within the route's timeout (504).
    UpstreamTimeout,
    /// The gateway failed in a way that is not the client's fault (500).
    Internal,
    /// A WebSocket upgrade on a runtime that cannot proxy one (Spin: wasi-http has no
    /// upgrade) (501).
    WebSocketUnsupported,
}

impl ProblemKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidBody => StatusCode::BAD_REQUEST,
            Self::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IpDenied => StatusCode::FORBIDDEN,
            Self::BadUpstreamBody => StatusCode::BAD_GATEWAY,
            Self::CorsRejected => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::RateLimitKeyMissing => StatusCode::FORBIDDEN,
            Self::RateLimitUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnreachable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamCircuitOpen => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::WebSocketUnsupported => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The stable `type` URI.
    pub fn type_uri(self) -> &'static str {
        match self {
            Self::RouteNotFound => "urn:edgegate:problem:route-not-found",
            Self::MethodNotAllowed => "urn:edgegate:problem:method-not-allowed",
            Self::BadRequest => "urn:edgegate:problem:bad-request",
            Self::PayloadTooLarge => "urn:edgegate:problem:payload-too-large",
            Self::RequestTimeout => "urn:edgegate:problem:request-timeout",
            Self::InvalidBody => "urn:edgegate:problem:invalid-body",
            Self::UnsupportedEncoding => "urn:edgegate:problem:unsupported-content-encoding",
            Self::IpDenied => "urn:edgegate:problem:ip-denied",
            Self::BadUpstreamBody => "urn:edgegate:problem:bad-upstream-body",
            Self::CorsRejected => "urn:edgegate:problem:cors-rejected",
            Self::Unauthorized => "urn:edgegate:problem:unauthorized",
            Self::InsufficientScope => "urn:edgegate:problem:insufficient-scope",
            Self::AuthUnavailable => "urn:edgegate:problem:auth-unavailable",
            Self::RateLimited => "urn:edgegate:problem:rate-limited",
            Self::RateLimitKeyMissing => "urn:edgegate:problem:rate-limit-key-missing",
            Self::RateLimitUnavailable => "urn:edgegate:problem:rate-limit-unavailable",
            Self::UpstreamUnreachable => "urn:edgegate:problem:upstream-unreachable",
            Self::UpstreamTimeout => "urn:edgegate:problem:upstream-timeout",
            Self::UpstreamCircuitOpen => "urn:edgegate:problem:upstream-circuit-open",
            Self::Internal => "urn:edgegate:problem:internal",
            Self::WebSocketUnsupported => "urn:edgegate:problem:websocket-unsupported",
        }
    }

    /// The last segment of the `type` URI (`upstream-unreachable`): what the access log names.
    pub fn name(self) -> &'static str {
        let uri = self.type_uri();
        uri.rsplit(':').next().unwrap_or(uri)
    }

    /// Whose doing the answer is: the client's request, the upstream's behaviour, or the
    /// gateway's own state (an unavailable store, limiter or key set; a runtime limit).
    pub fn source(self) -> Source {
        match self {
            Self::RouteNotFound
            | Self::MethodNotAllowed
            | Self::BadRequest
            | Self::PayloadTooLarge
            | Self::RequestTimeout
            | Self::UnsupportedEncoding
            | Self::InvalidBody
            | Self::IpDenied
            | Self::CorsRejected
            | Self::Unauthorized
            | Self::InsufficientScope
            | Self::RateLimited
            | Self::RateLimitKeyMissing => Source::Client,
            Self::BadUpstreamBody | Self::UpstreamUnreachable | Self::UpstreamCircuitOpen | Self::UpstreamTimeout => {
                Source::Upstream
            }
            Self::AuthUnavailable | Self::RateLimitUnavailable | Self::Internal | Self::WebSocketUnsupported => {
                Source::Gateway
            }
        }
    }

    /// A short human title.
    pub fn title(self) -> &'static str {
        match self {
            Self::RouteNotFound => "No route matches this request",
            Self::MethodNotAllowed => "Method not allowed",
            Self::BadRequest => "Bad request",
            Self::PayloadTooLarge => "Request body too large",
            Self::RequestTimeout => "Request body too slow",
            Self::InvalidBody => "Invalid request body",
            Self::UnsupportedEncoding => "Unsupported content encoding",
            Self::IpDenied => "Address not allowed",
            Self::BadUpstreamBody => "Upstream answer not transformable",
            Self::CorsRejected => "CORS preflight refused",
            Self::Unauthorized => "Unauthorized",
            Self::InsufficientScope => "Insufficient scope",
            Self::AuthUnavailable => "Authentication unavailable",
            Self::RateLimited => "Too many requests",
            Self::RateLimitKeyMissing => "Rate-limit key missing",
            Self::RateLimitUnavailable => "Rate limiter unavailable",
            Self::UpstreamUnreachable => "Upstream unreachable",
            Self::UpstreamTimeout => "Upstream timed out",
            Self::UpstreamCircuitOpen => "Upstream circuit open",
            Self::Internal => "Internal gateway error",
            Self::WebSocketUnsupported => "WebSocket upgrades are not available here",
        }
    }
}

/// Whose doing a problem is ([`ProblemKind::source`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The request: its route, credential, rate, body or address.
    Client,
    /// The upstream: unreachable, too slow, failing, or an answer that cannot be transformed.
    Upstream,
    /// The gateway's own dependencies or runtime.
    Gateway,
}

impl Source {
    /// As the access log writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Upstream => "upstream",
            Self::Gateway => "gateway",
        }
    }
}

/// A phase's refusal to go on. It becomes the problem+json answer (with any headers that go
/// with it: `WWW-Authenticate`, `Retry-After`, `Allow`...) and names its kind in the access log.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub kind: ProblemKind,
    /// Client-safe: never an internal error message.
    pub detail: std::borrow::Cow<'static, str>,
    /// Appended to the answer in order (a `Vec`: a `HeaderMap` would make every phase's
    /// `Result` four times as large).
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
}

impl Rejection {
    pub fn new(kind: ProblemKind, detail: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self { kind, detail: detail.into(), headers: Vec::new() }
    }

    /// Adds a header to the answer (appended: `WWW-Authenticate` may come once per scheme).
    /// The answer's own `Content-Type` and `Cache-Control` stay.
    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn into_response<B: Body>(self, request_id: &str) -> Response<B> {
        let mut response = problem(self.kind, &self.detail, request_id);
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// A problem response. `detail` must be client-safe: never an internal error message.
pub fn problem<B: Body>(kind: ProblemKind, detail: &str, request_id: &str) -> Response<B> {
    let body = serde_json::json!({
        "type": kind.type_uri(),
        "title": kind.title(),
        "status": kind.status().as_u16(),
        "detail": detail,
        "request_id": request_id,
    });
    let mut response = Response::new(B::from_bytes(Bytes::from(body.to_string())));
    *response.status_mut() = kind.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
