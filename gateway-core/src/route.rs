//! Compiled routes: plain data built once by [`crate::config`], read by every request.

use std::fmt::Write as _;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// A route after validation.
#[derive(Debug)]
pub(crate) struct CompiledRoute {
    pub id: Box<str>,
    /// `None` accepts every method.
    pub methods: Option<Box<[Method]>>,
    pub host: Option<HostPattern>,
    /// Sorted by name.
    pub headers: Box<[(HeaderName, HeaderValue)]>,
    pub upstream: usize,
    pub path: PathPlan,
    pub timeout: Duration,
    /// Longest silence inside a streamed body, either way (`idle_timeout_ms`).
    pub idle_timeout: Option<Duration>,
    /// How long a WebSocket opened through the route may live (`websocket.max_lifetime_ms`).
    pub socket_lifetime: Option<Duration>,
    pub max_body_bytes: u64,
    pub cors: Option<usize>,
    /// Index into the gateway's auth requirements; `None` is a public route.
    pub auth: Option<usize>,
    /// Indexes into the gateway's rate-limit policies, checked in order.
    pub rate_limits: Box<[usize]>,
    pub ip: Option<crate::ipfilter::IpFilter>,
    pub request_edits: Option<crate::transform::edits::HeaderEdits>,
    pub query: Option<crate::transform::edits::QueryPlan>,
    pub response_edits: Option<crate::transform::edits::HeaderEdits>,
    pub body: Option<crate::transform::body::BodyPlan>,
    pub validate: Option<crate::validate::Schema>,
    pub retry: Option<crate::resilience::RetryPolicy>,
    /// Several legs merged into one answer instead of one upstream.
    pub aggregate: Option<crate::aggregate::Aggregate>,
    pub cache: Option<CachePolicy>,
    /// Method-override headers pass to the upstream.
    pub method_override: bool,
    /// Paths with an encoded slash may take this route.
    pub allow_encoded_slashes: bool,
}

/// A route's edge-cache policy.
#[derive(Debug, Clone)]
pub(crate) struct CachePolicy {
    pub ttl_s: Option<u64>,
    pub vary: Box<[HeaderName]>,
    pub credentialed: bool,
    pub set_cookie: bool,
}

impl CompiledRoute {
    pub fn accepts_method(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|methods| methods.contains(method))
    }

    /// Host and header conditions, everything but path and method.
    pub fn accepts_host_and_headers(&self, host: Option<&str>, headers: &HeaderMap) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(pattern) => host.is_some_and(|host| pattern.matches(host)),
        };
        host_ok && self.headers.iter().all(|(name, value)| headers.get_all(name).iter().any(|v| v == value))
    }
}

/// A host condition. Hosts are compared case-insensitively and without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    Exact(Box<str>),
    /// `*.example.com` is stored as `.example.com` and matches one or more labels before it.
    Suffix(Box<str>),
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Option<Self> {
        let lower = pattern.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(name) => (true, name),
            None => (false, lower.as_str()),
        };
        let valid_label = |label: &str| {
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.is_empty() || !name.split('.').all(valid_label) {
            return None;
        }
        Some(if wildcard { Self::Suffix(format!(".{name}").into()) } else { Self::Exact(name.into()) })
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(exact) => host.eq_ignore_ascii_case(exact),
            Self::Suffix(suffix) => {
                host.len() > suffix.len()
                    && host.get(host.len() - suffix.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            }
        }
    }

    /// Higher is more specific: exact beats wildcard, a longer wildcard beats a shorter one.
    pub fn specificity(pattern: Option<&Self>) -> usize {
        match pattern {
            None => 0,
            Some(Self::Suffix(suffix)) => 1 + suffix.len(),
            Some(Self::Exact(_)) => usize::MAX,
        }
    }
}

/// How the upstream path is derived from the request path.
#[derive(Debug)]
pub(crate) enum PathPlan {
    AsIs,
    StripPrefix(Box<str>),
    Rewrite(Box<[Piece]>),
}

#[derive(Debug)]
pub(crate) enum Piece {
    Literal(Box<str>),
    Param(Box<str>),
}

/// A named backend, split so the hot path only concatenates.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamTarget {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Empty or `/prefix` without a trailing slash.
    pub base_path: Box<str>,
}

impl UpstreamTarget {
    /// The upstream URI for a request path, the route's plan and the request's query.
    pub fn uri_for(
        &self,
        plan: &PathPlan,
        path: &str,
        params: &matchit::Params<'_, '_>,
        query: Option<&str>,
    ) -> Result<http::Uri, http::Error> {
        let mut target = String::with_capacity(self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1));
        target.push_str(&self.base_path);
        match plan {
            PathPlan::AsIs => target.push_str(path),
            PathPlan::StripPrefix(prefix) => {
                let rest = path.get(prefix.len()..).unwrap_or_default();
                if rest.is_empty() {
                    target.push('/');
                } else {
                    target.push_str(rest);
                }
            }
            PathPlan::Rewrite(pieces) => {
                for piece in pieces.iter() {
                    match piece {
                        Piece::Literal(literal) => target.push_str(literal),
                        Piece::Param(name) => target.push_str(params.get(&**name).unwrap_or_default()),
                    }
                }
            }
        }
        if target.is_empty() {
            target.push('/');
        }
        if let Some(query) = query {
            let _ = write!(target, "?{query}");
        }
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(target)
            .build()
    }

    /// `base path + path_and_query` on this upstream (aggregation legs render their own path).
    pub fn uri_for_path(&self, path_and_query: &str) -> Result<http::Uri, http::Error> {
        let mut target = String::with_capacity(self.base_path.len() + path_and_query.len());
        target.push_str(&self.base_path);
        target.push_str(path_and_query);
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(target)
            .build()
    }
}

/// A named upstream: its targets and how one is chosen.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Indexes into the gateway's flat target list.
    pub targets: Box<[usize]>,
    pub weights: Box<[u32]>,
    pub balance: crate::resilience::Balance,
    pub sticky: Option<StickyKey>,
    pub breaker: Option<crate::resilience::BreakerPolicy>,
}

/// What keeps a cohort on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StickyKey {
    Claim(crate::auth::policy::ClaimPath),
    Header(HeaderName),
    Cookie(Box<str>),
}

/// Per-isolate state of a pool: the round-robin counter and a breaker per target.
#[derive(Debug, Default)]
pub(crate) struct PoolState {
    pub counter: u64,
    pub breakers: Vec<crate::resilience::Breaker>,
}
