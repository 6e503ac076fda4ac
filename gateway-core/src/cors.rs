//! CORS: preflights answered at the edge, response headers for allowed origins.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// One entry of `allow_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginPattern {
    Any,
    /// `https://app.example.com[:port]`, lower case.
    Exact(Box<str>),
    /// `https://*.example.com[:port]`: scheme `https://`, suffix `.example.com[:port]`.
    Wildcard {
        scheme: Box<str>,
        suffix: Box<str>,
    },
}

impl OriginPattern {
    pub fn parse(origin: &str) -> Option<Self> {
        if origin == "*" {
            return Some(Self::Any);
        }
        let lower = origin.to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://")?;
        if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port)),
            Some(_) => return None,
            None => (rest, None),
        };
        let wildcard = host.strip_prefix("*.");
        let name = wildcard.unwrap_or(host);
        let valid = !name.is_empty()
            && name.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !valid {
            return None;
        }
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        Some(match wildcard {
            Some(name) => {
                Self::Wildcard { scheme: format!("{scheme}://").into(), suffix: format!(".{name}{port}").into() }
            }
            None => Self::Exact(lower.as_str().into()),
        })
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            Self::Wildcard { scheme, suffix } => {
                let lower = origin.to_ascii_lowercase();
                lower.strip_prefix(&**scheme).and_then(|rest| rest.strip_suffix(&**suffix)).is_some_and(|label| {
                    !label.is_empty()
                        && label
                            .split('.')
                            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                })
            }
        }
    }
}

/// A compiled CORS policy; header values are built once.
#[derive(Debug)]
pub(crate) struct CorsPolicy {
    origins: Box<[OriginPattern]>,
    methods: Box<[Method]>,
    allow_methods: HeaderValue,
    allow_headers: Box<[HeaderName]>,
    allow_headers_value: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
    keep_upstream_headers: bool,
}

/// Why a preflight is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreflightRefusal {
    Origin,
    Method,
    Headers,
}

fn join<T: AsRef<str>>(items: &[T]) -> Option<HeaderValue> {
    if items.is_empty() {
        return None;
    }
    let joined = items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ");
    HeaderValue::try_from(joined).ok()
}

impl CorsPolicy {
    pub fn new(
        origins: Vec<OriginPattern>,
        methods: &[Method],
        allow_headers: &[HeaderName],
        expose_headers: &[HeaderName],
        credentials: bool,
        max_age_s: Option<u32>,
    ) -> Self {
        Self {
            origins: origins.into(),
            methods: methods.into(),
            allow_methods: join(methods).unwrap_or(HeaderValue::from_static("GET, HEAD, POST")),
            allow_headers: allow_headers.into(),
            allow_headers_value: join(allow_headers),
            expose_headers: join(expose_headers),
            credentials,
            max_age: max_age_s.map(HeaderValue::from),
            keep_upstream_headers: false,
        }
    }

    /// Leaves the upstream's `Access-Control-*` response headers in place.
    pub fn keeping_upstream_headers(mut self, keep: bool) -> Self {
        self.keep_upstream_headers = keep;
        self
    }

    pub(crate) fn allows_origin(&self, origin: &HeaderValue) -> bool {
        origin.to_str().is_ok_and(|origin| self.origins.iter().any(|p| p.matches(origin)))
    }

    fn is_wildcard(&self) -> bool {
        !self.credentials && self.origins.iter().any(|p| matches!(p, OriginPattern::Any))
    }

    fn set_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        if self.is_wildcard() {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        if self.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }

    /// Headers answering a preflight, or why it is refused.
    /// The answer depends on the origin, the method and the headers asked for: whichever it
    /// is, `Vary` names them (see [`Self::preflight_vary`]).
    pub fn preflight(
        &self,
        origin: &HeaderValue,
        method: &Method,
        request: &HeaderMap,
    ) -> Result<HeaderMap, PreflightRefusal> {
        if !self.allows_origin(origin) {
            return Err(PreflightRefusal::Origin);
        }
        if !self.methods.contains(method) {
            return Err(PreflightRefusal::Method);
        }
        for value in request.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(list) = value.to_str() else { return Err(PreflightRefusal::Headers) };
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !self.allow_headers.iter().any(|allowed| allowed.as_str().eq_ignore_ascii_case(name)) {
                    return Err(PreflightRefusal::Headers);
                }
            }
        }
        let mut headers = HeaderMap::new();
        self.set_origin(origin, &mut headers);
        Self::preflight_vary(&mut headers);
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        if let Some(value) = &self.allow_headers_value {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, value.clone());
        }
        if let Some(value) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, value.clone());
        }
        Ok(headers)
    }

    /// `Vary` for a preflight answer, allowed or refused.
    pub fn preflight_vary(headers: &mut HeaderMap) {
        for member in ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"] {
            add_vary(headers, member);
        }
    }

    /// Makes an actual (non-preflight) response carry this policy and only this policy: the
    /// upstream's `Access-Control-*` headers are removed (unless kept by configuration), a
    /// `*` policy answers `*` to everyone, any other policy names the origin when it is
    /// allowed and always says `Vary: Origin`, since the answer depends on it.
    pub fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        if self.keep_upstream_headers {
            if headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
                return;
            }
        } else {
            crate::hygiene::remove_where(headers, |name| name.as_str().starts_with("access-control-"));
        }
        if self.is_wildcard() {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            add_vary(headers, "Origin");
            let Some(origin) = origin.filter(|o| self.allows_origin(o)) else { return };
            self.set_origin(origin, headers);
        }
        if let Some(value) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value.clone());
        }
    }
}

/// Adds `member` to `Vary` unless it (or `*`) is already named; one `Vary` line results.
pub(crate) fn add_vary(headers: &mut HeaderMap, member: &str) {
    let mut combined = String::new();
    for value in headers.get_all(VARY) {
        let Ok(text) = value.to_str() else { continue };
        if text.split(',').map(str::trim).any(|m| m == "*" || m.eq_ignore_ascii_case(member)) {
            return;
        }
        if !text.trim().is_empty() {
            if !combined.is_empty() {
                combined.push_str(", ");
            }
            combined.push_str(text.trim());
        }
    }
    if combined.is_empty() {
        headers.insert(VARY, HeaderValue::from_str(member).unwrap_or(HeaderValue::from_static("Origin")));
        return;
    }
    combined.push_str(", ");
    combined.push_str(member);
    if let Ok(value) = HeaderValue::try_from(combined) {
        headers.insert(VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        let origins = origins.iter().map(|o| OriginPattern::parse(o).unwrap()).collect();
        CorsPolicy::new(origins, &[Method::GET], &[], &[HeaderName::from_static("x-total")], credentials, None)
    }

    fn upstream_reflecting(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        headers
    }

    #[test]
    fn the_policy_owns_cors_headers() {
        let strict = policy(&["https://app.example.com"], true);
        let evil = HeaderValue::from_static("https://evil.example");
        let mut headers = upstream_reflecting("https://evil.example");
        strict.decorate(Some(&evil), &mut headers);
        assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN), "an upstream cannot widen the policy");
        assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert_eq!(headers.get(VARY).unwrap(), "Accept-Encoding, Origin");

        let app = HeaderValue::from_static("https://app.example.com");
        let mut allowed = upstream_reflecting("https://evil.example");
        strict.decorate(Some(&app), &mut allowed);
        assert_eq!(allowed.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://app.example.com");
        assert_eq!(allowed.get(ACCESS_CONTROL_EXPOSE_HEADERS).unwrap(), "x-total");

        let kept = policy(&["https://app.example.com"], true).keeping_upstream_headers(true);
        let mut upstream_owned = upstream_reflecting("https://evil.example");
        kept.decorate(Some(&evil), &mut upstream_owned);
        assert_eq!(upstream_owned.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://evil.example");
    }

    #[test]
    fn vary_origin_always_and_never_twice() {
        let strict = policy(&["https://app.example.com"], false);
        for origin in [None, Some(HeaderValue::from_static("https://evil.example"))] {
            let mut headers = HeaderMap::new();
            strict.decorate(origin.as_ref(), &mut headers);
            assert_eq!(headers.get(VARY).unwrap(), "Origin", "{origin:?}");
        }
        let mut twice = HeaderMap::new();
        twice.append(VARY, HeaderValue::from_static("accept-encoding"));
        twice.append(VARY, HeaderValue::from_static("origin"));
        strict.decorate(Some(&HeaderValue::from_static("https://app.example.com")), &mut twice);
        assert_eq!(twice.get_all(VARY).iter().collect::<Vec<_>>(), ["accept-encoding", "origin"]);
        let mut star = HeaderMap::new();
        star.insert(VARY, HeaderValue::from_static("*"));
        add_vary(&mut star, "Origin");
        assert_eq!(star.get(VARY).unwrap(), "*");

        let any = policy(&["*"], false);
        let mut without_origin = HeaderMap::new();
        any.decorate(None, &mut without_origin);
        assert_eq!(without_origin.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "*");
        assert!(!without_origin.contains_key(VARY), "a * answer does not depend on the origin");
    }

    #[test]
    fn origin_patterns() {
        let table = [
            ("https://app.example.com", "https://app.example.com", true),
            ("https://app.example.com", "https://APP.example.com", true),
            ("https://app.example.com", "http://app.example.com", false),
            ("https://*.example.com", "https://a.example.com", true),
            ("https://*.example.com", "https://a.b.example.com", true),
            ("https://*.example.com", "https://example.com", false),
            ("https://*.example.com", "https://evilexample.com", false),
            ("https://*.example.com", "https://a.example.com.evil.io", false),
            ("http://localhost:3000", "http://localhost:3000", true),
            ("http://localhost:3000", "http://localhost:3001", false),
            ("*", "https://anything.io", true),
        ];
        for (pattern, origin, expected) in table {
            let parsed = OriginPattern::parse(pattern).unwrap();
            assert_eq!(parsed.matches(origin), expected, "{pattern} vs {origin}");
        }
        for invalid in ["example.com", "https://", "ftp://x.io", "https://x.io/path", "https://*.", "https://x.io:port"]
        {
            assert!(OriginPattern::parse(invalid).is_none(), "{invalid}");
        }
    }
}
