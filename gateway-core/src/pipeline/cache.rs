//! The edge cache (RFC 9111 for a shared cache, `Cache-Status` of RFC 9211): the lookup before
//! dispatch (a hit is the answer) and the store after it. Only GETs without credentials (unless
//! the route allows them) and never an upgrade; a stored answer serves only requests with the
//! values of the headers it varies on.

use http::{HeaderValue, Method, Response};

use super::exchange::{Exchange, Stop};
use super::request_transform::Outbound;
use super::response_transform::is_event_stream;
use crate::ports::{explain, Platform};
use crate::route::CompiledRoute;
use crate::transform::edits::Context;

/// Looks the request up; `Err(Stop::Answered)` is a hit.
pub(crate) async fn lookup<P: Platform>(
    platform: &P,
    route: &CompiledRoute,
    exchange: &Exchange<'_>,
    context: &Context<'_>,
    outbound: &Outbound,
) -> Result<CacheState, Stop<P::Body>> {
    let state = match &route.cache {
        None => return Ok(CacheState::Off),
        Some(policy)
            if exchange.parts.method != Method::GET
                || exchange.upgrade
                || (exchange.credentialed && !policy.credentialed) =>
        {
            CacheState::Bypass
        }
        Some(_) if !platform.cache_available() => CacheState::Unavailable,
        Some(policy) => {
            let key = cache_key(
                policy,
                outbound.original_host.as_deref(),
                context.path,
                exchange.client_query(),
                context.headers,
            );
            let hit = platform.cache_match(&key).await;
            // RFC 9111 §4.1: a stored answer is reused only for a request that has the same
            // values of the headers it varies on; any other request is a miss.
            // Compared on what the upstream is sent (after request edits), which is what it varied on.
            if let Some(mut hit) = hit.filter(|hit| vary_matches(hit.headers(), &outbound.headers)) {
                explain(platform, "cache", || format!("hit under {key}"));
                hit.headers_mut().remove(&VARY_KEY);
                if let Some(edits) = &route.response_edits {
                    edits.apply(hit.headers_mut(), context);
                }
                hit.headers_mut().insert(&CACHE_STATUS, HeaderValue::from_static("edgegate; hit"));
                return Err(Stop::Answered(Box::new(hit)));
            }
            CacheState::Miss { key, sent: outbound.headers.clone() }
        }
    };
    explain(platform, "cache", || match &state {
        CacheState::Bypass => "bypassed: not a GET, an upgrade, or a request with credentials".to_owned(),
        CacheState::Unavailable => "this runtime has no edge cache".to_owned(),
        CacheState::Miss { key, .. } => format!("miss under {key}"),
        CacheState::Off => String::new(),
    });
    Ok(state)
}

/// Stores a storable answer on a miss, and says in `Cache-Status` what happened.
pub(crate) async fn store<P: Platform>(
    platform: &P,
    route: &CompiledRoute,
    state: CacheState,
    mut response: Response<P::Body>,
) -> Response<P::Body> {
    let status = match (state, &route.cache) {
        (CacheState::Off, _) | (_, None) => None,
        (CacheState::Bypass, _) => Some("edgegate; fwd=bypass"),
        (CacheState::Unavailable, _) => Some("edgegate; fwd=uri-miss; detail=no-edge-cache"),
        (CacheState::Miss { key, sent }, Some(policy)) => match storable_ttl(policy, &response) {
            Some(ttl) => {
                let copy = stored_headers(response.headers(), &sent, ttl);
                let (sent, stored) = platform.cache_put(&key, response, copy).await;
                response = sent;
                Some(if stored { "edgegate; fwd=uri-miss; stored" } else { "edgegate; fwd=uri-miss" })
            }
            None => Some("edgegate; fwd=uri-miss"),
        },
    };
    if let Some(status) = status {
        response.headers_mut().insert(&CACHE_STATUS, HeaderValue::from_static(status));
    }
    response
}

/// The headers of the copy the cache keeps: the answer's, with the fingerprint of what it
/// varies on, a `Cache-Control` the platform's cache reads as `ttl` seconds (the client's copy
/// keeps the upstream's), and no `Set-Cookie` (one client's cookie is never another's).
fn stored_headers(answer: &http::HeaderMap, sent: &http::HeaderMap, ttl: u64) -> http::HeaderMap {
    let mut stored = answer.clone();
    if let Some(fingerprint) = vary_fingerprint(answer, sent) {
        stored.insert(&VARY_KEY, fingerprint);
    }
    if let Ok(lifetime) = HeaderValue::try_from(format!("public, max-age={ttl}")) {
        stored.insert(http::header::CACHE_CONTROL, lifetime);
    }
    stored.remove(http::header::SET_COOKIE);
    stored
}

/// `Cache-Status` (RFC 9211).
static CACHE_STATUS: http::HeaderName = http::HeaderName::from_static("cache-status");

/// Where a cacheable request stands.
pub(crate) enum CacheState {
    Off,
    /// Not a GET, or it carried credentials.
    Bypass,
    /// The platform has no edge cache (Spin).
    Unavailable,
    /// Looked up, not found: store the answer under this key if it may be stored, with the
    /// request headers the upstream was sent (what it varies on).
    Miss {
        key: String,
        sent: http::HeaderMap,
    },
}

/// The cache key: the URL the client asked for, plus the values of the `vary` headers.
fn cache_key(
    policy: &crate::route::CachePolicy,
    host: Option<&str>,
    path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> String {
    let mut key = format!("https://{}{path}", host.unwrap_or("edgegate.invalid"));
    let mut separator = '?';
    if let Some(query) = query {
        key.push('?');
        key.push_str(query);
        separator = '&';
    }
    for name in policy.vary.iter() {
        key.push(separator);
        separator = '&';
        key.push_str("edgegate-vary-");
        key.push_str(name.as_str());
        key.push('=');
        for value in headers.get_all(name) {
            crate::hygiene::push_escaped(&mut key, value.as_bytes());
        }
    }
    key
}

/// Where a stored answer records the request's values of the headers it varies on.
static VARY_KEY: http::HeaderName = http::HeaderName::from_static("edgegate-vary-key");

/// The upstream's `Vary` members, lower case; `None` for `Vary: *`.
fn vary_members(response: &http::HeaderMap) -> Option<Vec<String>> {
    let mut members = Vec::new();
    for value in response.get_all(http::header::VARY) {
        for member in value.to_str().unwrap_or("*").split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if member == "*" {
                return None;
            }
            members.push(member.to_ascii_lowercase());
        }
    }
    members.sort_unstable();
    members.dedup();
    Some(members)
}

/// The values a request has for the headers a response varies on, as one header value
/// (`name=value&...`, percent-encoded); `None` when there is nothing to record.
fn vary_fingerprint(response: &http::HeaderMap, request: &http::HeaderMap) -> Option<HeaderValue> {
    let members = vary_members(response)?;
    if members.is_empty() {
        return None;
    }
    let mut text = String::new();
    for member in &members {
        if !text.is_empty() {
            text.push('&');
        }
        text.push_str(member);
        text.push('=');
        for (i, value) in request.get_all(member.as_str()).iter().enumerate() {
            if i > 0 {
                text.push_str("%2C");
            }
            crate::hygiene::push_escaped(&mut text, value.as_bytes());
        }
    }
    HeaderValue::try_from(text).ok()
}

/// Whether a stored answer may serve this request: it varies on nothing, or the request has
/// the values it was stored for. An answer that varies on `*` never matches.
fn vary_matches(stored: &http::HeaderMap, request: &http::HeaderMap) -> bool {
    if vary_members(stored).is_none() {
        return false;
    }
    let now = vary_fingerprint(stored, request);
    match (stored.get(&VARY_KEY), now) {
        (None, None) => true,
        (Some(recorded), Some(now)) => recorded == now,
        _ => false,
    }
}

/// How long an answer may be stored: only a 200 without `no-store`/`private` (and without
/// `Set-Cookie`, unless allowed) nor `Vary: *`, for the route's TTL or the upstream's
/// `s-maxage`/`max-age`.
fn storable_ttl<B>(policy: &crate::route::CachePolicy, response: &Response<B>) -> Option<u64> {
    if response.status() != http::StatusCode::OK {
        return None;
    }
    let headers = response.headers();
    vary_members(headers)?;
    // An event stream does not end: storing it would hold the client's copy to its end.
    if is_event_stream(headers) {
        return None;
    }
    if !policy.set_cookie && headers.contains_key(http::header::SET_COOKIE) {
        return None;
    }
    let cache_control = headers.get(http::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut max_age = None;
    let mut shared_max_age = None;
    for directive in cache_control.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "private" {
            return None;
        }
        if let Some(value) = directive.strip_prefix("s-maxage=") {
            shared_max_age = value.parse::<u64>().ok();
        } else if let Some(value) = directive.strip_prefix("max-age=") {
            max_age = value.parse::<u64>().ok();
        }
    }
    policy.ttl_s.or(shared_max_age).or(max_age).filter(|ttl| *ttl > 0)
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::{stored_headers, vary_matches};

    #[test]
    fn the_stored_copy_says_its_lifetime_drops_cookies_and_records_what_it_varies_on() {
        let mut answer = HeaderMap::new();
        answer.insert("cache-control", HeaderValue::from_static("private, max-age=5"));
        answer.insert("set-cookie", HeaderValue::from_static("session=1"));
        answer.insert("vary", HeaderValue::from_static("Accept-Language"));
        answer.insert("content-type", HeaderValue::from_static("application/json"));
        let mut sent = HeaderMap::new();
        sent.insert("accept-language", HeaderValue::from_static("fr"));

        let stored = stored_headers(&answer, &sent, 60);
        assert_eq!(stored["cache-control"], "public, max-age=60");
        assert!(stored.get("set-cookie").is_none());
        assert_eq!(stored["content-type"], "application/json");
        assert!(vary_matches(&stored, &sent));
        let mut other = HeaderMap::new();
        other.insert("accept-language", HeaderValue::from_static("de"));
        assert!(!vary_matches(&stored, &other));
        assert_eq!(answer["cache-control"], "private, max-age=5", "the client's copy is left as it was");
    }
}
