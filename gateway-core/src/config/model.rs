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
    /// Named backends routes forward to.
    pub upstreams: BTreeMap<String, Upstream>,
    /// The routes, tried by the documented priority (not by their order, except as the last tie-break).
    pub routes: Vec<Route>,
}

/// Gateway-wide settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Upstream timeout in milliseconds for routes that do not set one (default 30000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 600000))]
    pub timeout_ms: Option<u64>,
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
}

/// A named backend.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Base URL: `http://` or `https://`, a host, an optional port and an optional path
    /// prefix; no query or fragment.
    pub url: String,
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
    /// Name of an entry in `upstreams`.
    pub upstream: String,
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
    /// Largest accepted request body in bytes; above it the client gets 413.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// CORS policy for this route; replaces `defaults.cors` entirely. `false` turns CORS off here.
    #[serde(default)]
    pub cors: Option<RouteCors>,
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
}
