//! The routes.json file as plain serde data. Nothing here is validated beyond its
//! shape; [`super::compile`] turns it into a [`crate::Gateway`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// The whole gateway, as written in routes.json.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "edgegate routes file")]
pub struct RoutesFile {
    /// The JSON Schema this file follows; editors use it for completion. Ignored by the gateway.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// Format version of this file. Only `1` exists.
    pub version: u32,
    /// Settings every route inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// Named authentication schemes routes refer to (by name, in `auth.any_of`).
    #[serde(default)]
    pub auth: AuthSchemes,
    /// Named rate-limit policies routes refer to (in `rate_limit`).
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimitPolicy>,
    /// Named backends routes forward to.
    pub upstreams: BTreeMap<String, Upstream>,
    /// The routes, tried by the documented priority (not by their order, except as the last tie-break).
    pub routes: Vec<Route>,
    /// Serve the gateway's OpenAPI 3.1 document (what `edgegate openapi export` prints) from
    /// the edge, built once when the file is compiled.
    #[serde(default)]
    pub openapi: Option<OpenApi>,
}

/// The OpenAPI document served from the edge.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenApi {
    /// The literal path it is served at to GET and HEAD (e.g. `/openapi.json`), ahead of the routes.
    pub path: String,
    /// `info.title` (default `edgegate`).
    #[serde(default)]
    pub title: Option<String>,
    /// `info.version` (default the routes file's `version`).
    #[serde(default)]
    pub version: Option<String>,
}

/// Gateway-wide settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Upstream timeout in milliseconds for routes that do not set one (default 30000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 600000))]
    pub timeout_ms: Option<u64>,
    /// `idle_timeout_ms` for routes that do not set one (default: off).
    #[serde(default)]
    #[schemars(range(min = 1, max = 600000))]
    pub idle_timeout_ms: Option<u64>,
    /// Largest accepted request body in bytes for routes that do not set one (default 10485760).
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// CORS policy for routes that do not set their own.
    #[serde(default)]
    pub cors: Option<Cors>,
    /// Trust X-Forwarded-For/-Proto/-Host, Forwarded and X-Request-Id sent by the client
    /// (only when another proxy you control sits in front). Default false: they are replaced.
    #[serde(default)]
    pub trust_forwarded_headers: Option<bool>,
    /// Which requests get an access-log line: `all` (default), `errors` (status 400 and
    /// above: what an operator must see, at a fraction of the cost per request) or `off`.
    /// Warnings (an unreachable limiter, a failing JWKS) are logged whatever this says.
    #[serde(default)]
    #[schemars(regex(pattern = r"^(all|errors|off)$"))]
    pub access_log: Option<String>,
    /// With `access_log: all`, the share of answers below 400 that get a line, drawn at random
    /// per request (default 1: every one); answers of 400 and above always get theirs. Logging
    /// every success costs CPU per request and log volume; a sample keeps the picture.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub access_log_sample: Option<f64>,
    /// Merge duplicate slashes in the path before routing and forwarding (default true:
    /// `//admin` is `/admin` to most servers, so it is to the gateway too).
    #[serde(default)]
    pub merge_slashes: Option<bool>,
    /// Let routes take paths with an encoded slash (`%2F`), forwarded as it is (default false:
    /// 400). A route's own `allow_encoded_slashes` overrides this.
    #[serde(default)]
    pub allow_encoded_slashes: Option<bool>,
    /// Authentication for routes that do not set their own.
    #[serde(default)]
    pub auth: Option<RouteAuth>,
    /// Rate-limit policies (names from `rate_limits`) for routes that do not set their own.
    #[serde(default)]
    pub rate_limit: Option<Vec<String>>,
}

/// A named backend.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Base URL: `http://` or `https://`, a host, an optional port and an optional path
    /// prefix; no query or fragment. Excludes `targets`.
    #[serde(default)]
    pub url: Option<String>,
    /// Several base URLs for one upstream (canary, replicas, failover). Excludes `url`.
    #[serde(default)]
    pub targets: Option<Vec<UpstreamTargetConfig>>,
    /// How a target is chosen: `weighted` (default), `round_robin` or `failover` (the next
    /// target is tried on a connect error or 502/503/504).
    #[serde(default)]
    pub balance: Option<String>,
    /// Keep a cohort on one target (weighted only): `claim:<path>`, `header:<name>` or `cookie:<name>`.
    #[serde(default)]
    pub sticky: Option<String>,
    /// Stop sending to a failing target for a while (state per isolate).
    #[serde(default)]
    pub breaker: Option<BreakerConfig>,
}

/// One target of an upstream.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTargetConfig {
    /// Base URL, as for `url`.
    pub url: String,
    /// Share of requests with `balance: weighted` (default 1; 0 = only as a fallback).
    #[serde(default)]
    pub weight: Option<u32>,
}

/// A circuit breaker per target: open after too many failures, one probe after the cool-down.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failure share in percent (connect errors, timeouts, 5xx) that opens the breaker (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub failure_percent: Option<u8>,
    /// Fewest requests in the window before the breaker may open (default 10).
    #[serde(default)]
    pub min_requests: Option<u32>,
    /// The sliding window in seconds (default 30).
    #[serde(default)]
    pub window_s: Option<u64>,
    /// How long an open breaker refuses before one probe is let through, in seconds (default 15).
    #[serde(default)]
    pub cooldown_s: Option<u64>,
}

/// One route: what it matches and where it forwards.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique, stable name used in logs and metrics: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// What a request must look like to take this route.
    #[serde(rename = "match")]
    pub matcher: Match,
    /// Name of an entry in `upstreams`. Required unless the route aggregates.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Literal prefix of `match.path` removed before forwarding. Excludes `rewrite`.
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Path sent upstream, with `{name}` replaced by the matched parameter. Excludes `strip_prefix`.
    #[serde(default)]
    pub rewrite: Option<String>,
    /// Upstream timeout in milliseconds; past it the client gets 504.
    #[serde(default)]
    #[schemars(range(min = 1, max = 600000))]
    pub timeout_ms: Option<u64>,
    /// Longest silence in milliseconds inside a streamed body, either way: an upstream answer
    /// that sends nothing for this long is aborted at the client (never ended as if complete),
    /// and an upload that stalls this long is aborted upstream and answered 408. Off unless set:
    /// `timeout_ms` bounds the wait for the response head only.
    #[serde(default)]
    #[schemars(range(min = 1, max = 600000))]
    pub idle_timeout_ms: Option<u64>,
    /// WebSocket connections opened through this route (any route passes an upgrade its
    /// upstream accepts; this bounds their lifetime). Their idle bound is `idle_timeout_ms`.
    #[serde(default)]
    pub websocket: Option<WebSocket>,
    /// Largest accepted request body in bytes; above it the client gets 413.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// CORS policy for this route; replaces `defaults.cors` entirely. `false` turns CORS off here.
    #[serde(default)]
    pub cors: Option<RouteCors>,
    /// Who may call this route; replaces `defaults.auth` entirely. `false` makes the route public.
    #[serde(default)]
    pub auth: Option<RouteAuthSetting>,
    /// Rate-limit policies (names from `rate_limits`), each checked in order; replaces
    /// `defaults.rate_limit`. `false` turns rate limiting off here.
    #[serde(default)]
    pub rate_limit: Option<RouteRateLimit>,
    /// Client addresses allowed or denied (CIDR), checked first.
    #[serde(default)]
    pub ip: Option<IpLists>,
    /// Changes made to the request before it goes upstream.
    #[serde(default)]
    pub request: Option<RequestTransform>,
    /// Changes made to the upstream's response.
    #[serde(default)]
    pub response: Option<ResponseTransform>,
    /// A JSON Schema the request body must satisfy (400 naming the failing path otherwise).
    #[serde(default)]
    pub validate_body: Option<serde_json::Value>,
    /// Retries of failed upstream attempts, inside the route's timeout.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Call several upstreams in parallel and answer with their merged JSON (instead of `upstream`).
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    /// Cache GET answers at the edge (Workers Cache API; Spin has no edge cache).
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// Let `X-HTTP-Method-Override`, `X-HTTP-Method` and `X-Method-Override` reach the
    /// upstream (default false: removed, so a client cannot turn an allowed POST into a DELETE
    /// the route does not accept).
    #[serde(default)]
    pub method_override: Option<bool>,
    /// Accept paths with an encoded slash (`%2F`, e.g. in identifiers) on this route and
    /// forward them encoded (default: `defaults.allow_encoded_slashes`, false).
    #[serde(default)]
    pub allow_encoded_slashes: Option<bool>,
}

/// Edge caching of GET answers.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Seconds to keep an answer, overriding the upstream's `Cache-Control: max-age`. Absent:
    /// the upstream's `s-maxage` or `max-age` decides, and an answer without one is not stored.
    #[serde(default)]
    pub ttl_s: Option<u64>,
    /// Request headers that are part of the cache key (e.g. `accept-language`).
    #[serde(default)]
    pub vary: Vec<String>,
    /// Also cache answers to requests that carried credentials (Authorization, Cookie, an API
    /// key): they are then shared by every caller with the same key. Default false.
    #[serde(default)]
    pub cache_credentialed: Option<bool>,
    /// Also cache answers that set cookies. Default false.
    #[serde(default)]
    pub cache_set_cookie: Option<bool>,
}

/// A route's CORS setting: a policy, or `false` to turn an inherited policy off.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RouteCors {
    /// `false`: no CORS on this route (`true` is rejected: write a policy instead).
    Enabled(bool),
    /// The policy for this route.
    Policy(Cors),
}

/// The request attributes a route matches on. All given attributes must match.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Path template: literal segments, `{name}` for one segment, `{*name}` for the rest of
    /// the path (last segment only).
    pub path: String,
    /// Accepted methods (upper case). Absent: every method.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Exact host (`api.example.com`) or one leading wildcard label (`*.example.com`), without port.
    #[serde(default)]
    pub host: Option<String>,
    /// Request headers that must be present with exactly these values (names case-insensitive).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// Cross-origin resource sharing policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Allowed origins: exact (`https://app.example.com`), a pattern with one leading
    /// wildcard label (`https://*.example.com`), or `*` (not with credentials).
    pub allow_origins: Vec<String>,
    /// Methods allowed in preflight answers (default: the route's methods, or GET, HEAD, POST).
    #[serde(default)]
    pub allow_methods: Option<Vec<String>>,
    /// Request headers allowed in preflight answers (default: none beyond the CORS-safelisted ones).
    #[serde(default)]
    pub allow_headers: Option<Vec<String>>,
    /// Response headers exposed to the browser.
    #[serde(default)]
    pub expose_headers: Option<Vec<String>>,
    /// Allow cookies and credentials (Access-Control-Allow-Credentials: true).
    #[serde(default)]
    pub allow_credentials: Option<bool>,
    /// How long browsers may cache a preflight answer, in seconds.
    #[serde(default)]
    #[schemars(range(max = 86400))]
    pub max_age_s: Option<u32>,
    /// Keep the upstream's own `Access-Control-*` response headers (default false: with a
    /// policy the gateway owns CORS and removes them, so an upstream that reflects any origin
    /// cannot widen the policy). When kept, the gateway adds its own only where the upstream
    /// sent no `Access-Control-Allow-Origin`.
    #[serde(default)]
    pub keep_upstream_headers: Option<bool>,
}

/// The authentication schemes, by kind. Names are unique across both maps.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSchemes {
    /// JSON Web Token schemes (bearer tokens from one or more issuers).
    #[serde(default)]
    pub jwt: BTreeMap<String, JwtScheme>,
    /// API-key schemes (consumers identified by a key).
    #[serde(default)]
    pub api_keys: BTreeMap<String, ApiKeyScheme>,
}

/// Accepts JWTs from the listed issuers; the token's `iss` picks the issuer's keys and rules.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtScheme {
    /// The issuers whose tokens this scheme accepts (several for multi-tenant setups).
    pub issuers: Vec<Issuer>,
    /// Where the token is read from. Default: `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<TokenSource>,
    /// Longest token accepted, in bytes, checked before parsing (default 8192).
    #[serde(default)]
    #[schemars(range(min = 64, max = 65536))]
    pub max_token_bytes: Option<u32>,
    /// Clock skew tolerated for `exp`, `nbf` and `iat`, in seconds (default 60).
    #[serde(default)]
    #[schemars(range(max = 600))]
    pub leeway_s: Option<u32>,
    /// Claims copied into request headers for the upstream: header name → claim path
    /// (`sub`, `realm_access.roles`). Arrays are joined with `,`. A client-sent header of the
    /// same name is always removed first.
    #[serde(default)]
    pub forward_claims: BTreeMap<String, String>,
    /// Forward the token itself to the upstream (default false: it is removed).
    #[serde(default)]
    pub forward_token: Option<bool>,
    /// Path of the roles claim used by a route's `roles` requirement (default `roles`).
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// How JWKS documents are cached.
    #[serde(default)]
    pub jwks_cache: Option<JwksCache>,
}

/// One token issuer and the rules for its tokens.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The exact `iss` value of its tokens.
    pub issuer: String,
    /// Accepted audiences; the token's `aud` must contain at least one. Absent: `aud` is not checked.
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// Public keys written inline: JWKs (with `alg`, or EC/OKP keys whose curve implies it) or PEM keys.
    #[serde(default)]
    pub keys: Vec<InlineKey>,
    /// HMAC secrets, by the name of a runtime secret (wrangler secret / `.dev.vars`, Spin variable).
    #[serde(default)]
    pub secrets: Vec<SecretKey>,
    /// URL of the issuer's JWKS document.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Find the JWKS through OIDC discovery (`{issuer}/.well-known/openid-configuration`).
    #[serde(default)]
    pub discovery: Option<bool>,
    /// Algorithm for JWKS RSA keys that do not declare one (default RS256).
    #[serde(default)]
    pub rsa_default_alg: Option<String>,
    /// Claims every token must carry (besides `exp`, which is always required).
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Longest accepted lifetime (`exp` − `iat`) in seconds; tokens must then carry `iat`.
    #[serde(default)]
    pub max_lifetime_s: Option<u64>,
}

/// An inline public key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum InlineKey {
    /// A PEM public key with its algorithm.
    Pem(PemKey),
    /// A public JWK (RFC 7517).
    Jwk(serde_json::Map<String, serde_json::Value>),
}

/// A PEM-encoded public key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PemKey {
    /// `-----BEGIN PUBLIC KEY-----` (SPKI) or `-----BEGIN RSA PUBLIC KEY-----` text.
    pub pem: String,
    /// The one algorithm this key verifies, e.g. `RS256`, `ES256`, `EdDSA`.
    pub alg: String,
    /// Key id matched against the token's `kid`.
    #[serde(default)]
    pub kid: Option<String>,
}

/// An HMAC secret held by the runtime, never written in routes.json.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKey {
    /// Name of the runtime secret (lower case letters, digits, `_`; the same name works as a
    /// wrangler secret and a Spin variable).
    pub secret: String,
    /// `HS256`, `HS384` or `HS512`.
    pub alg: String,
    /// Key id matched against the token's `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// How the secret's text encodes the key bytes: `utf8` (default: the text itself),
    /// `base64`, `base64url` (padding optional) or `hex`. The decoded key must be at least as
    /// long as the hash (32, 48, 64 bytes).
    #[serde(default)]
    #[schemars(regex(pattern = r"^(utf8|base64|base64url|hex)$"))]
    pub encoding: Option<String>,
}

/// Where a credential is read from. At most one field; none means the default.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// A request header carrying the bare token.
    #[serde(default)]
    pub header: Option<String>,
    /// A cookie carrying the token.
    #[serde(default)]
    pub cookie: Option<String>,
    /// A query parameter carrying the token (leaks into logs and histories: only when unavoidable).
    #[serde(default)]
    pub query: Option<String>,
}

/// Bounds for JWKS caching.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwksCache {
    /// Shortest time a fetched JWKS is kept, whatever its Cache-Control says (default 60 s).
    #[serde(default)]
    pub min_ttl_s: Option<u64>,
    /// Longest time a fetched JWKS is kept (default 86400 s).
    #[serde(default)]
    pub max_ttl_s: Option<u64>,
    /// Least time between two fetches caused by an unknown `kid` or a failure (default 30 s).
    #[serde(default)]
    pub refetch_cooldown_s: Option<u64>,
    /// How long expired keys keep serving while the JWKS endpoint fails (default 86400 s).
    #[serde(default)]
    pub max_stale_s: Option<u64>,
}

/// Consumers identified by an API key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyScheme {
    /// Header carrying the key (default `X-API-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// Also accept the key from this query parameter (off unless set).
    #[serde(default)]
    pub query: Option<String>,
    /// Consumers declared here.
    #[serde(default)]
    pub consumers: Vec<Consumer>,
    /// Also look consumers up in the key-value store, under `apikey:<sha256 hex>`.
    #[serde(default)]
    pub store: Option<bool>,
    /// Consumer fields copied into request headers: header name → `id`, `name` or `tags`.
    #[serde(default)]
    pub forward: BTreeMap<String, String>,
    /// Forward the key itself to the upstream (default false: it is removed).
    #[serde(default)]
    pub forward_key: Option<bool>,
}

/// A caller identified by an API key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    /// Stable id (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// SHA-256 of the key, 64 lower-case hex digits (`printf %s "$KEY" | sha256sum`).
    pub key_sha256: String,
}

/// A route's auth setting: a requirement, or `false` to make an inherited one public.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RouteAuthSetting {
    /// `false`: no authentication on this route.
    Enabled(bool),
    /// The requirement for this route.
    Require(RouteAuth),
}

/// Who may call a route.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    /// Scheme names; a request must pass one of them (tried in order).
    pub any_of: Vec<String>,
    /// Let requests without any credential through anonymously (a credential that is present
    /// must still be valid).
    #[serde(default)]
    pub optional: Option<bool>,
    /// Scopes the JWT must grant (`scope` space-separated or `scp` array).
    #[serde(default)]
    pub scopes: Option<Requirement>,
    /// Roles the JWT must carry (at the scheme's `roles_claim`).
    #[serde(default)]
    pub roles: Option<Requirement>,
}

/// A set requirement: one of, or all of.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// At least one of these.
    #[serde(default)]
    pub any_of: Option<Vec<String>>,
    /// Every one of these.
    #[serde(default)]
    pub all_of: Option<Vec<String>>,
}

/// A route's rate-limit setting: policy names, or `false`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RouteRateLimit {
    /// `false`: no rate limiting on this route.
    Enabled(bool),
    /// Policy names from `rate_limits`.
    Policies(Vec<String>),
}

/// A rate-limit policy: what a request is counted under, and the limits it must stay within.
/// All limits and quotas of one policy are decided together and atomically: a request denied
/// by one consumes nothing from the others.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitPolicy {
    /// The parts the counting key is built from, joined: `ip`, `consumer` (API-key consumer id),
    /// `claim:<path>` (a JWT claim, e.g. `claim:sub`), `header:<name>`, `route` (the route id).
    /// Empty: one global counter for the policy.
    #[serde(default)]
    pub key: Vec<String>,
    /// Rate limits (GCRA): `requests` per `per_s` seconds, with bursts up to `burst`.
    #[serde(default)]
    pub limits: Vec<RateLimitRule>,
    /// Quotas per UTC calendar window.
    #[serde(default)]
    pub quotas: Vec<QuotaRule>,
    /// When a key part is missing (no claim, no consumer, no header): `shared` (count all such
    /// requests under one key, the default), `skip` (do not limit them) or `reject` (answer 403).
    #[serde(default)]
    pub on_missing_key: Option<String>,
    /// When the counter cannot be reached: `closed` (answer 503, the default) or `open` (let the
    /// request through). Either way it is logged.
    #[serde(default)]
    pub on_error: Option<String>,
    /// Send `RateLimit-Policy` and `RateLimit` headers (default true).
    #[serde(default)]
    pub headers: Option<bool>,
    /// Where requests are counted: `exact` (default: a Durable Object per key on Workers,
    /// key-value compare-and-swap on Spin) or `cloudflare_ratelimit` (Workers only: Cloudflare's
    /// `ratelimits` binding named in `binding`; approximate, counted per location, one limit
    /// with `per_s` 10 or 60 that must equal the binding's `simple` setting in wrangler.toml).
    #[serde(default)]
    pub backend: Option<String>,
    /// The `ratelimits` binding name, with `backend: cloudflare_ratelimit`.
    #[serde(default)]
    pub binding: Option<String>,
    /// How the Workers Durable Object persists counters: `every_request` (default: exact across
    /// an eviction) or `write_behind` (written at most once a second: cheaper; an eviction can
    /// forget up to a second of counts).
    #[serde(default)]
    pub persistence: Option<String>,
}

/// `requests` per `per_s` seconds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRule {
    /// Requests allowed per period.
    #[schemars(range(min = 1, max = 1000000))]
    pub requests: u64,
    /// The period in seconds.
    #[schemars(range(min = 1, max = 31536000))]
    pub per_s: u64,
    /// Largest burst (default: `requests`).
    #[serde(default)]
    pub burst: Option<u64>,
}

/// `requests` per UTC `minute`, `hour`, `day` or `month`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaRule {
    /// Requests allowed per window.
    #[schemars(range(min = 1))]
    pub requests: u64,
    /// `minute`, `hour`, `day` or `month`, aligned to UTC calendar boundaries.
    pub per: String,
}

/// Client address lists (CIDR, IPv4 and IPv6). Deny wins; with an allow list, only listed
/// addresses pass.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpLists {
    /// Addresses or ranges let through (`10.0.0.0/8`, `2001:db8::/32`, `203.0.113.7`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Addresses or ranges refused (403).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Header edits. Values are templates over `{params.x}`, `{claims.path}`, `{consumer.id}`,
/// `{consumer.name}`, `{consumer.tags}`, `{request.ip}`, `{request.id}`, `{request.method}`,
/// `{request.path}` and `{header.name}`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderEdits {
    /// Headers removed.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Headers renamed: old name → new name.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Headers set (replacing any value): name → template.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Headers added (keeping existing values): name → template.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
}

/// Changes to the request sent upstream.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestTransform {
    /// Header edits, applied after authentication's own header changes.
    #[serde(default)]
    pub headers: Option<HeaderEdits>,
    /// What happens to the client's query string.
    #[serde(default)]
    pub query: Option<QueryPolicy>,
}

/// The query-string policy: pass everything (default), only listed names, or all but listed names; plus fixed parameters.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryPolicy {
    /// Only these parameters pass (zero-trust). Excludes `deny`.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// These parameters are removed. Excludes `allow`.
    #[serde(default)]
    pub deny: Option<Vec<String>>,
    /// Parameters added: name → template (percent-encoded when rendered).
    #[serde(default)]
    pub add: BTreeMap<String, String>,
}

/// Changes to the upstream's response.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseTransform {
    /// Header edits (templates see the request, e.g. `{request.id}`).
    #[serde(default)]
    pub headers: Option<HeaderEdits>,
    /// JSON body operations; without them the body streams through untouched.
    #[serde(default)]
    pub body: Option<BodyTransform>,
}

/// JSON body operations, applied in order: target, allow, deny, rename, group.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BodyTransform {
    /// Return only the value at this dotted path.
    #[serde(default)]
    pub target: Option<String>,
    /// Keep only these dotted paths (through arrays: `items.id`).
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Remove these dotted paths.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Rename: dotted path → new key name.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Wrap the result under this key.
    #[serde(default)]
    pub group: Option<String>,
    /// Largest body transformed, in bytes (default 1048576).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// A body that is not JSON or is too large: `bad_gateway` (502 `bad-upstream-body`) or
    /// `pass_through` (unchanged). Default: `bad_gateway` when `allow` or `deny` is given (a
    /// filter fails closed), else `pass_through`.
    #[serde(default)]
    pub on_invalid: Option<String>,
}

/// Retries of failed upstream attempts.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in total, the first included (2–10).
    pub attempts: u32,
    /// First backoff in ms, doubled each retry, with full jitter (default 50).
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// Largest backoff in ms (default 1000).
    #[serde(default)]
    pub max_backoff_ms: Option<u64>,
    /// Retry POST and PATCH too (default false: only idempotent methods).
    #[serde(default)]
    pub non_idempotent: Option<bool>,
    /// Upstream statuses retried (default 502, 503, 504); connect errors always are.
    #[serde(default)]
    pub statuses: Option<Vec<u16>>,
}

/// Several backend legs called in parallel, merged into one JSON answer. A failed optional leg
/// is left out and the answer carries `Gateway-Completed: false`; a failed required leg makes
/// the route answer 502 (504 when it timed out).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// The legs, merged in this order.
    pub legs: Vec<AggregateLeg>,
    /// The whole answer's deadline in ms (default: the route's timeout).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// One backend call of an aggregate.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateLeg {
    /// Name used in errors and logs (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Name of an entry in `upstreams`.
    pub upstream: String,
    /// Path (and query) on that upstream: a template over `{params.x}`, `{claims.path}`, ...
    pub path: String,
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Whether the whole answer fails without this leg (default true).
    #[serde(default)]
    pub required: Option<bool>,
    /// This leg's timeout in ms (default: the deadline).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Put this leg's JSON under this key; absent: merge it into the root object.
    #[serde(default)]
    pub group: Option<String>,
    /// Client request headers passed to this leg.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Headers set on this leg's request: name → template.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// WebSocket connections on a route.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocket {
    /// Longest a connection stays open, in milliseconds (1 to 86400000); then both sides are
    /// closed with 1001 "maximum lifetime".
    #[schemars(range(min = 1, max = 86400000))]
    pub max_lifetime_ms: u64,
}
