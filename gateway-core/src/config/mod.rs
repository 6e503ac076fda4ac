//! routes.json: the serde model ([`RoutesFile`]), its compilation into a
//! [`crate::Gateway`] and its JSON Schema.

mod aggregate;
mod auth;
mod body;
mod compile;
mod edits;
mod error;
mod ip;
mod model;
pub mod openapi;
mod ratelimit;
mod upstreams;

pub use compile::{compile, from_json, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_MS};
pub use error::{ConfigError, ConfigErrorKind};
pub use model::{
    ApiKeyScheme, AuthSchemes, Consumer, Cors, Defaults, InlineKey, Issuer, JwksCache, JwtScheme, Match, PemKey,
    QuotaRule, RateLimitPolicy, RateLimitRule, Requirement, Route, RouteAuth, RouteAuthSetting, RouteCors,
    RouteRateLimit, RoutesFile, SecretKey, TokenSource, Upstream,
};

/// The JSON Schema of routes.json, pretty-printed; `routes.schema.json` is this text.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RoutesFile);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
