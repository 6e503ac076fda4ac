//! JWKS caching: when to fetch is a pure function of the cached entry, the clock and the
//! bounds; the fetch itself goes through the platform's `Fetch`, and the entry is shared
//! through its `Store` so that instances without isolate memory (Spin) still cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderValue, Method, Request, StatusCode};
use serde::{Deserialize, Serialize};

use super::jwt::{self, Algorithm, VerifyingKey};
use super::policy::{IssuerPolicy, JwksBounds, JwksSource};
use crate::deadline::with_timeout;
use crate::ports::{Body, Platform, UnixMillis};

/// Longest wait for a JWKS or discovery document.
const FETCH_TIMEOUT_MS: u64 = 5_000;
const FETCH_TIMEOUT: Duration = Duration::from_millis(FETCH_TIMEOUT_MS);
/// Largest JWKS or discovery document read.
const MAX_DOCUMENT_BYTES: u64 = 256 * 1024;
/// Lifetime of a JWKS whose response has no `max-age`, before clamping to the bounds.
const DEFAULT_TTL_MS: u64 = 300_000;

/// What is known about one issuer's JWKS.
#[derive(Debug, Clone, Default)]
pub(crate) struct JwksEntry {
    pub keys: Arc<[VerifyingKey]>,
    /// When the keys were fetched; `None` if no fetch ever succeeded.
    pub fetched_at: Option<UnixMillis>,
    pub expires_at: UnixMillis,
    /// When the last fetch started, successful or not: the cooldown counts from here.
    pub attempted_at: UnixMillis,
    /// The JWKS URL found through discovery.
    pub jwks_url: Option<Box<str>>,
    /// The document the keys came from, as the shared store keeps it.
    pub document: Option<Arc<str>>,
}

impl JwksEntry {
    /// Keys still allowed to verify: fresh, or stale within `max_stale`.
    pub fn usable_keys(&self, now: UnixMillis, bounds: &JwksBounds) -> &[VerifyingKey] {
        match self.fetched_at {
            Some(_) if now < self.expires_at.saturating_add(bounds.max_stale) => &self.keys,
            _ => &[],
        }
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }
}

/// Whether to fetch now: always without an entry; when expired or when the token names a
/// `kid` the keys lack, but never twice within the cooldown (junk kids cause no storm).
pub(crate) fn should_fetch(entry: Option<&JwksEntry>, kid: Option<&str>, now: UnixMillis, bounds: &JwksBounds) -> bool {
    let Some(entry) = entry else { return true };
    let cooling = now < entry.attempted_at.saturating_add(bounds.cooldown);
    let expired = now >= entry.expires_at;
    let unknown_kid = kid.is_some_and(|kid| !entry.has_kid(kid));
    (expired || unknown_kid) && !cooling
}

/// `max-age` from Cache-Control, clamped to the bounds; `no-store`/`no-cache` count as 0.
pub(crate) fn ttl_ms(cache_control: Option<&str>, bounds: &JwksBounds) -> u64 {
    let mut ttl = DEFAULT_TTL_MS;
    for directive in cache_control.unwrap_or_default().split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            ttl = 0;
            break;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=").and_then(|s| s.trim_matches('"').parse::<u64>().ok()) {
            ttl = seconds.saturating_mul(1000);
        }
    }
    ttl.clamp(bounds.min_ttl, bounds.max_ttl.max(bounds.min_ttl))
}

/// How long a verified token is remembered: a repeated token skips the signature check (its
/// claims are still checked against the clock every time). Also how long a token signed by a
/// key that has since left the JWKS can stay accepted.
pub(crate) const VERIFIED_TTL_MS: u64 = 60_000;
/// Most tokens remembered per isolate.
const VERIFIED_CAPACITY: usize = 4096;

/// A token whose signature was verified, with its claims.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedToken {
    pub issuer: usize,
    pub claims: Arc<serde_json::Map<String, serde_json::Value>>,
    pub verified_at: UnixMillis,
}

/// Per-isolate memory: JWKS entries and HMAC keys read from secrets, by issuer index, and
/// recently verified tokens.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    jwks: Mutex<HashMap<usize, JwksEntry>>,
    secrets: Mutex<HashMap<(usize, usize), VerifyingKey>>,
    verified: Mutex<HashMap<Box<str>, VerifiedToken>>,
    /// Issuers whose keys one request is fetching now, with when it started. A flight older
    /// than any fetch can take (its request was cancelled and never dropped) is taken over.
    flights: Mutex<HashMap<usize, UnixMillis>>,
}

/// Ends a fetch's flight when dropped, also when the fetching request is cancelled.
struct Flight<'a> {
    cache: &'a KeyCache,
    issuer: usize,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.cache.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&self.issuer);
    }
}

/// How often a request waiting for another's JWKS fetch looks again.
const FLIGHT_POLL_MS: u64 = 5;
const FLIGHT_POLL: Duration = Duration::from_millis(FLIGHT_POLL_MS);
/// A fetch is discovery plus JWKS, each within [`FETCH_TIMEOUT`]: the longest a request
/// waits for another's.
const FLIGHT_WAIT_POLLS: u32 = (2 * FETCH_TIMEOUT_MS / FLIGHT_POLL_MS) as u32;
/// A flight older than this is abandoned (its request was cancelled and never dropped).
const STALE_FLIGHT_MS: u64 = 3 * FETCH_TIMEOUT_MS;
/// Waiting on another instance reads the store, so less often.
const STORE_POLL_EVERY: u32 = 5;

impl KeyCache {
    /// A token verified within [`VERIFIED_TTL_MS`], compared by its exact bytes.
    pub fn verified(&self, token: &str, now: UnixMillis) -> Option<VerifiedToken> {
        let map = self.verified.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(token).filter(|hit| now.saturating_sub(hit.verified_at) < VERIFIED_TTL_MS).cloned()
    }

    pub fn remember(&self, token: &str, verified: VerifiedToken) {
        let mut map = self.verified.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = verified.verified_at;
        if !crate::isolate::make_room(&mut map, VERIFIED_CAPACITY, |hit| {
            now.saturating_sub(hit.verified_at) < VERIFIED_TTL_MS
        }) {
            map.clear();
        }
        map.insert(token.into(), verified);
    }

    /// Starts the issuer's fetch flight, or `None` when one is under way.
    fn take_off(&self, issuer: usize, now: UnixMillis) -> Option<Flight<'_>> {
        let mut flights = self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if flights.get(&issuer).is_some_and(|started| now.saturating_sub(*started) < STALE_FLIGHT_MS) {
            return None;
        }
        flights.insert(issuer, now);
        Some(Flight { cache: self, issuer })
    }

    fn in_flight(&self, issuer: usize, now: UnixMillis) -> bool {
        let flights = self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        flights.get(&issuer).is_some_and(|started| now.saturating_sub(*started) < STALE_FLIGHT_MS)
    }

    /// Resolves when the issuer's flight has ended. It looks on its own timer rather than being
    /// woken by the fetching request: Workers cancels a continuation that another request's
    /// context resolves.
    async fn landing<P: Platform>(&self, platform: &P, issuer: usize) {
        for _ in 0..FLIGHT_WAIT_POLLS {
            if !self.in_flight(issuer, platform.now()) {
                return;
            }
            platform.sleep(FLIGHT_POLL).await;
        }
    }

    /// Waits (on this request's own timer) until another instance has saved a newer entry,
    /// bounded by the time a fetch may take; then what is known, as documented (stale keys,
    /// or none: 503).
    async fn stored_by_another<P: Platform>(
        &self,
        platform: &P,
        issuer_index: usize,
        issuer: &IssuerPolicy,
        known: Option<JwksEntry>,
    ) -> JwksEntry {
        let seen = known.as_ref().map_or(0, |e| e.attempted_at);
        for _ in 0..FLIGHT_WAIT_POLLS / STORE_POLL_EVERY {
            platform.sleep(FLIGHT_POLL * STORE_POLL_EVERY).await;
            if let Some(stored) = load(platform, &issuer.issuer, issuer.rsa_default).await {
                if stored.attempted_at > seen {
                    self.set_entry(issuer_index, stored.clone());
                    return stored;
                }
            }
        }
        known.unwrap_or_default()
    }

    fn entry(&self, issuer: usize) -> Option<JwksEntry> {
        // Never held across an await; a poisoned lock only means a panic elsewhere, and the
        // data (a cache) stays valid.
        let map = self.jwks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&issuer).cloned()
    }

    fn set_entry(&self, issuer: usize, entry: JwksEntry) {
        let mut map = self.jwks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.insert(issuer, entry);
    }

    /// HMAC keys of an issuer, read from the runtime's secrets once per isolate.
    pub fn secret_keys<P: Platform>(
        &self,
        platform: &P,
        issuer_index: usize,
        issuer: &IssuerPolicy,
    ) -> Vec<VerifyingKey> {
        let mut map = self.secrets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut keys = Vec::with_capacity(issuer.secrets.len());
        for (i, secret) in issuer.secrets.iter().enumerate() {
            if let Some(key) = map.get(&(issuer_index, i)) {
                keys.push(key.clone());
                continue;
            }
            let Some(value) = platform.secret(&secret.name) else {
                platform.log(&warning(&format!("secret \"{}\" is not set; its key is skipped", secret.name)));
                continue;
            };
            let bytes = match secret.encoding.decode(&value) {
                Ok(bytes) => bytes,
                Err(error) => {
                    platform.log(&warning(&format!("secret \"{}\" cannot be used: {error}", secret.name)));
                    continue;
                }
            };
            match VerifyingKey::hmac(&bytes, secret.alg, secret.kid.as_deref()) {
                Ok(key) => {
                    map.insert((issuer_index, i), key.clone());
                    keys.push(key);
                }
                Err(error) => {
                    platform.log(&warning(&format!("secret \"{}\" cannot be used: {error}", secret.name)));
                }
            }
        }
        keys
    }

    /// The issuer's JWKS entry after fetching if [`should_fetch`] says so: from isolate
    /// memory, else the shared store, else the network.
    pub async fn jwks<P: Platform>(
        &self,
        platform: &P,
        issuer_index: usize,
        issuer: &IssuerPolicy,
        source: &JwksSource,
        kid: Option<&str>,
    ) -> JwksEntry {
        let now = platform.now();
        let bounds = &issuer.cache;
        let mut entry = self.entry(issuer_index);
        // Single flight: the first request reads the store and fetches; concurrent ones that
        // cannot do with the keys at hand wait for it and take what it found, so a burst of
        // unknown kids costs one fetch.
        if self.in_flight(issuer_index, now) {
            let sufficient = entry
                .as_ref()
                .is_some_and(|e| !e.usable_keys(now, bounds).is_empty() && kid.is_none_or(|kid| e.has_kid(kid)));
            if !sufficient {
                self.landing(platform, issuer_index).await;
                entry = self.entry(issuer_index);
            }
            return entry.unwrap_or_default();
        }
        if entry.is_some() && !should_fetch(entry.as_ref(), kid, now, bounds) {
            return entry.unwrap_or_default();
        }
        let Some(_flight) = self.take_off(issuer_index, now) else {
            self.landing(platform, issuer_index).await;
            return self.entry(issuer_index).unwrap_or_default();
        };
        // Another isolate may have fetched already.
        if let Some(stored) = load(platform, &issuer.issuer, issuer.rsa_default).await {
            let newer = entry.as_ref().is_none_or(|e| stored.attempted_at > e.attempted_at);
            if newer {
                self.set_entry(issuer_index, stored.clone());
                entry = Some(stored);
            }
        }
        if !should_fetch(entry.as_ref(), kid, now, bounds) {
            return entry.unwrap_or_default();
        }
        // Across instances that share only the store (Spin runs one per request), the store
        // decides who fetches; the others wait for what it saves.
        let claim = format!("jwks-claim:{}", issuer.issuer);
        if let Ok(false) = platform.claim(&claim, now, bounds.cooldown.max(1)).await {
            return self.stored_by_another(platform, issuer_index, issuer, entry).await;
        }
        let mut next = entry.unwrap_or_default();
        next.attempted_at = now;
        // The attempt counts from now, before awaiting: if this request is cancelled mid-fetch
        // (its flight then ends), the cooldown still holds off the next one.
        self.set_entry(issuer_index, next.clone());
        match fetch_keys(platform, issuer, source, next.jwks_url.as_deref()).await {
            Ok(Fetched { keys, jwks_url, cache_control, document }) => {
                let fetched = platform.now();
                next.keys = keys.into();
                next.document = Some(document.into());
                next.fetched_at = Some(fetched);
                next.expires_at = fetched.saturating_add(ttl_ms(cache_control.as_deref(), bounds));
                next.jwks_url = jwks_url;
            }
            Err(reason) => {
                platform.log(&warning(&format!("JWKS for issuer \"{}\" failed: {reason}", issuer.issuer)));
                // Discover again next time: the document may have moved.
                next.jwks_url = None;
            }
        }
        self.set_entry(issuer_index, next.clone());
        save(platform, &issuer.issuer, &next).await;
        next
    }
}

pub(crate) fn warning(message: &str) -> String {
    serde_json::json!({"level": "warn", "message": message}).to_string()
}

/// The form an entry takes in the shared store.
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    fetched_at: Option<u64>,
    expires_at: u64,
    attempted_at: u64,
    #[serde(default)]
    jwks_url: Option<String>,
    /// The JWKS document as fetched.
    #[serde(default)]
    jwks: Option<String>,
}

fn store_key(issuer: &str) -> String {
    format!("jwks:{issuer}")
}

async fn load<P: Platform>(platform: &P, issuer: &str, rsa_default: Algorithm) -> Option<JwksEntry> {
    let bytes = platform.get(&store_key(issuer)).await.ok()??;
    let stored: StoredEntry = serde_json::from_slice(&bytes).ok()?;
    let keys = match &stored.jwks {
        Some(document) => jwt::parse_jwks(document.as_bytes(), rsa_default).ok()?.0,
        None => Vec::new(),
    };
    let document = stored.jwks.map(Into::into);
    Some(JwksEntry {
        keys: keys.into(),
        fetched_at: stored.fetched_at,
        expires_at: stored.expires_at,
        attempted_at: stored.attempted_at,
        jwks_url: stored.jwks_url.map(Into::into),
        document,
    })
}

async fn save<P: Platform>(platform: &P, issuer: &str, entry: &JwksEntry) {
    let stored = StoredEntry {
        fetched_at: entry.fetched_at,
        expires_at: entry.expires_at,
        attempted_at: entry.attempted_at,
        jwks_url: entry.jwks_url.as_deref().map(str::to_owned),
        jwks: entry.document.as_deref().map(str::to_owned),
    };
    if let Ok(text) = serde_json::to_vec(&stored) {
        // A deployment without a store still caches in isolate memory.
        let _ = platform.put(&store_key(issuer), Bytes::from(text)).await;
    }
}

struct Fetched {
    keys: Vec<VerifyingKey>,
    jwks_url: Option<Box<str>>,
    cache_control: Option<String>,
    document: String,
}

async fn fetch_keys<P: Platform>(
    platform: &P,
    issuer: &IssuerPolicy,
    source: &JwksSource,
    known_url: Option<&str>,
) -> Result<Fetched, String> {
    let (url, discovered) = match (source, known_url) {
        (JwksSource::Url(url), _) => (url.to_string(), None),
        (JwksSource::Discovery(_), Some(url)) => (url.to_owned(), Some(url.into())),
        (JwksSource::Discovery(issuer_url), None) => {
            let url = discover(platform, issuer_url).await?;
            (url.clone(), Some(url.into()))
        }
    };
    let (document, cache_control) = get_json(platform, &url).await?;
    let (keys, skipped) = jwt::parse_jwks(&document, issuer.rsa_default).map_err(|e| e.to_string())?;
    if skipped > 0 {
        platform.log(&warning(&format!("JWKS {url}: {skipped} unusable key(s) skipped")));
    }
    let document = String::from_utf8(document.to_vec()).map_err(|_| format!("{url}: not UTF-8"))?;
    Ok(Fetched { keys, jwks_url: discovered, cache_control, document })
}

/// The `jwks_uri` of an OIDC issuer; the document must name the same issuer.
async fn discover<P: Platform>(platform: &P, issuer: &str) -> Result<String, String> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let (document, _) = get_json(platform, &url).await?;
    let document: serde_json::Value =
        serde_json::from_slice(&document).map_err(|_| "discovery document is not JSON".to_owned())?;
    if document.get("issuer").and_then(|i| i.as_str()) != Some(issuer) {
        return Err("discovery document names another issuer".into());
    }
    let jwks_uri = document.get("jwks_uri").and_then(|u| u.as_str()).ok_or("discovery document has no jwks_uri")?;
    if !(jwks_uri.starts_with("https://") || jwks_uri.starts_with("http://")) {
        return Err("jwks_uri is not an http(s) URL".into());
    }
    Ok(jwks_uri.to_owned())
}

/// A JSON document, head and body within [`FETCH_TIMEOUT`]: an issuer that stalls mid-body
/// must not hold the fetch (and every request waiting for it) any longer.
async fn get_json<P: Platform>(platform: &P, url: &str) -> Result<(Bytes, Option<String>), String> {
    // The step "keys" names the URL alone: `explain` answers that fetch itself, offline.
    crate::ports::explain(platform, "keys", || url.to_owned());
    match with_timeout(get_json_untimed(platform, url), platform.sleep(FETCH_TIMEOUT)).await {
        Some(result) => result,
        None => Err(format!("{url}: no complete answer within {} s", FETCH_TIMEOUT.as_secs())),
    }
}

async fn get_json_untimed<P: Platform>(platform: &P, url: &str) -> Result<(Bytes, Option<String>), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("invalid URL {url}"))?;
    let mut request = Request::new(P::Body::empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    request.headers_mut().insert(ACCEPT, HeaderValue::from_static("application/json"));
    let response = platform.fetch(request).await.map_err(|error| format!("{url}: {error:?}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("{url}: status {}", response.status().as_u16()));
    }
    let cache_control = response.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.into_body().collect(MAX_DOCUMENT_BYTES).await.map_err(|e| format!("{url}: body {e:?}"))?;
    Ok((body, cache_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: JwksBounds = JwksBounds { min_ttl: 60_000, max_ttl: 3_600_000, cooldown: 30_000, max_stale: 600_000 };

    #[test]
    fn fetch_decisions() {
        let entry =
            JwksEntry { fetched_at: Some(1_000), expires_at: 100_000, attempted_at: 1_000, ..Default::default() };
        let table = [
            (None, None, 0, true),
            (Some(&entry), None, 50_000, false),
            (Some(&entry), Some("new"), 20_000, false), // unknown kid inside the cooldown
            (Some(&entry), Some("new"), 31_000, true),  // unknown kid after it
            (Some(&entry), None, 100_000, true),        // expired
        ];
        for (entry, kid, now, expected) in table {
            assert_eq!(should_fetch(entry, kid, now, &BOUNDS), expected, "{kid:?} at {now}");
        }
        let failing = JwksEntry { attempted_at: 200_000, ..entry.clone() };
        assert!(!should_fetch(Some(&failing), None, 210_000, &BOUNDS), "a failed refetch cools down too");
        assert_eq!(entry.usable_keys(699_999, &BOUNDS).len(), entry.keys.len());
        assert!(JwksEntry::default().usable_keys(0, &BOUNDS).is_empty());
    }

    #[test]
    fn ttl_from_cache_control() {
        let table = [
            (None, 300_000),
            (Some("public, max-age=600"), 600_000),
            (Some("max-age=5"), 60_000),
            (Some("max-age=999999"), 3_600_000),
            (Some("no-store"), 60_000),
        ];
        for (header, expected) in table {
            assert_eq!(ttl_ms(header, &BOUNDS), expected, "{header:?}");
        }
    }
}
