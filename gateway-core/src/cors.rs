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
        }
    }

    fn allows_origin(&self, origin: &HeaderValue) -> bool {
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
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        if self.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }

    /// Headers answering a preflight, or why it is refused.
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
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        if let Some(value) = &self.allow_headers_value {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, value.clone());
        }
        if let Some(value) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, value.clone());
        }
        Ok(headers)
    }

    /// Adds CORS headers to an actual (non-preflight) response when the origin is allowed.
    pub fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        let Some(origin) = origin.filter(|o| self.allows_origin(o)) else { return };
        self.set_origin(origin, headers);
        if let Some(value) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
