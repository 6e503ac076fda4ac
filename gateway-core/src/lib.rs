//! # gateway-core
//!
//! The platform-neutral heart of edgegate: routes.json compiled into an immutable
//! [`Gateway`], and one async [`handle`] that answers a request using only the [`ports`]
//! an adapter provides (outbound fetch, clock, sleep, entropy, access log). It never reads
//! the clock, the environment or a global, and never panics on a request path.
//!
//! ```
//! let gateway = gateway_core::Gateway::from_json(r#"{
//!   "version": 1,
//!   "upstreams": {"users": {"url": "http://127.0.0.1:9000/v1"}},
//!   "routes": [{"id": "user", "match": {"path": "/users/{id}", "methods": ["GET"]}, "upstream": "users"}]
//! }"#).unwrap();
//! assert_eq!(gateway.route_ids().collect::<Vec<_>>(), ["user"]);
//! ```
//!
//! The file format is specified in the README and by `routes.schema.json`, generated from
//! [`config::RoutesFile`] (see [`config::json_schema`]).
#![allow(async_fn_in_trait)]
#![forbid(unsafe_code)]

mod aggregate;
pub mod auth;
pub mod config;
mod cors;
mod deadline;
mod encoding;
mod hygiene;
pub mod ipfilter;
mod isolate;
mod log;
mod path;
mod pipeline;
pub mod ports;
mod problem;
mod query;
pub mod ratelimit;
pub mod resilience;
mod route;
mod router;
pub mod runtime;
pub mod transform;
pub mod validate;

pub use config::{ConfigError, ConfigErrorKind};
pub use isolate::IsolateState;
pub use pipeline::handle;
pub use problem::{problem, ProblemKind, Source};

use cors::CorsPolicy;
use route::{CompiledRoute, UpstreamTarget};

/// A compiled routes file: immutable, built once (per isolate, or at build time on Spin),
/// shared by every request. What an isolate learns while serving is kept apart, in the
/// [`IsolateState`] the adapter holds beside it.
#[derive(Debug)]
pub struct Gateway {
    router: router::Router,
    routes: Box<[CompiledRoute]>,
    /// Every target of every upstream, flat.
    upstreams: Box<[UpstreamTarget]>,
    /// The named upstreams, by the index routes hold.
    pools: Box<[route::Pool]>,
    cors: Box<[CorsPolicy]>,
    default_cors: Option<usize>,
    auth: auth::policy::AuthPolicies,
    /// Every header any auth scheme forwards: removed from every request on every route.
    identity_headers: Box<[http::HeaderName]>,
    rate_policies: Box<[ratelimit::RatePolicy]>,
    trust_forwarded: bool,
    /// Merge duplicate slashes before routing.
    merge_slashes: bool,
    access_log: log::AccessLogMode,
    /// `openapi.path` and the document served there (empty until
    /// [`Gateway::with_openapi_document`] hands it over: the path then answers 404 as usual).
    openapi: Option<(Box<str>, bytes::Bytes)>,
    /// A digest of the routes file this gateway was compiled from (`None` when it was compiled
    /// from a parsed file): what the gateway keeps in the shared store is only ever read back
    /// by a gateway compiled from the same file.
    fingerprint: Option<[u8; 16]>,
}

impl Gateway {
    fn with_fingerprint(mut self, text: &str) -> Self {
        // FNV-1a, twice over (two offsets): tells one routes file from another, which is all
        // it is for (nobody can choose the file to collide), at a fraction of SHA-256's cost on
        // Spin, which compiles the file for every request.
        let fnv = |offset: u64| {
            text.bytes().fold(offset, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
        };
        let mut fingerprint = [0; 16];
        for (byte, hash_byte) in fingerprint
            .iter_mut()
            .zip(fnv(0xcbf2_9ce4_8422_2325).to_le_bytes().into_iter().chain(fnv(0x6c62_272e_07bb_0142).to_le_bytes()))
        {
            *byte = hash_byte;
        }
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Parses and compiles routes.json; every error comes with its JSON path.
    pub fn from_json(text: &str) -> Result<Self, Vec<ConfigError>> {
        config::from_json(text)
    }

    /// The route ids, in file order.
    pub fn route_ids(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| &*r.id)
    }

    /// The id of the route a request takes, or the problem the gateway answers instead
    /// ([`ProblemKind::RouteNotFound`] or [`ProblemKind::MethodNotAllowed`]). A pure function
    /// of the request line: this is the matching `handle` does, exposed for tools and benchmarks.
    ///
    /// ```
    /// # use gateway_core::{Gateway, ProblemKind};
    /// # use http::{HeaderMap, Method};
    /// let gateway = Gateway::from_json(r#"{"version": 1, "upstreams": {"u": {"url": "http://127.0.0.1:9000"}}, "routes": [
    ///   {"id": "one", "match": {"path": "/users/{id}", "methods": ["GET"]}, "upstream": "u"},
    ///   {"id": "new", "match": {"path": "/users/new", "methods": ["GET"]}, "upstream": "u"}]}"#).unwrap();
    /// let headers = HeaderMap::new();
    /// assert_eq!(gateway.find_route(&Method::GET, None, &headers, "/users/7"), Ok("one"));
    /// assert_eq!(gateway.find_route(&Method::GET, None, &headers, "/users/new"), Ok("new"));
    /// assert_eq!(gateway.find_route(&Method::POST, None, &headers, "/users/7"), Err(ProblemKind::MethodNotAllowed));
    /// assert_eq!(gateway.find_route(&Method::GET, None, &headers, "/orders"), Err(ProblemKind::RouteNotFound));
    /// ```
    pub fn find_route(
        &self,
        method: &http::Method,
        host: Option<&str>,
        headers: &http::HeaderMap,
        path: &str,
    ) -> Result<&str, ProblemKind> {
        match self.router.find(&self.routes, method, host, headers, path) {
            router::RouteMatch::Found { route, .. } => {
                self.routes.get(route).map(|r| &*r.id).ok_or(ProblemKind::Internal)
            }
            router::RouteMatch::MethodNotAllowed { .. } => Err(ProblemKind::MethodNotAllowed),
            router::RouteMatch::NotFound => Err(ProblemKind::RouteNotFound),
        }
    }

    /// For a request no route takes (see [`Gateway::find_route`]): the routes that miss it by
    /// one condition, in file order, each with its id and what it asks for instead. This is
    /// what `edgegate explain` prints on a 404 or 405.
    ///
    /// ```
    /// # use gateway_core::Gateway;
    /// # use http::{HeaderMap, Method};
    /// let gateway = Gateway::from_json(r#"{"version": 1, "upstreams": {"u": {"url": "http://u.internal"}},
    ///   "routes": [{"id": "read", "match": {"path": "/users/{id}", "methods": ["GET"]}, "upstream": "u"}]}"#).unwrap();
    /// let misses = gateway.near_misses(&Method::DELETE, None, &HeaderMap::new(), "/users/7");
    /// assert_eq!(misses, [("read", vec!["the method DELETE is not one of GET".to_owned()])]);
    /// ```
    pub fn near_misses(
        &self,
        method: &http::Method,
        host: Option<&str>,
        headers: &http::HeaderMap,
        path: &str,
    ) -> Vec<(&str, Vec<String>)> {
        self.router
            .near_misses(&self.routes, method, host, headers, path)
            .into_iter()
            .filter_map(|(index, reasons)| Some((&*self.routes.get(index)?.id, reasons)))
            .collect()
    }

    /// What the route `id` asks of a request and promises about it, one `(aspect, text)` line
    /// each, as compiled: auth, rate limits, IP lists, body limit and validation, timeouts,
    /// retries, cache. `edgegate explain` prints it under the route it took.
    ///
    /// ```
    /// # use gateway_core::Gateway;
    /// let gateway = Gateway::from_json(r#"{"version": 1, "upstreams": {"u": {"url": "http://u.internal"}},
    ///   "routes": [{"id": "r", "match": {"path": "/r"}, "upstream": "u", "timeout_ms": 2000}]}"#).unwrap();
    /// let summary = gateway.route_summary("r").unwrap();
    /// assert!(summary.contains(&("auth", "public".to_owned())));
    /// assert!(summary.contains(&("timeouts", "2000 ms to the response head; bodies may stall unbounded".to_owned())));
    /// ```
    pub fn route_summary(&self, id: &str) -> Option<Vec<(&'static str, String)>> {
        let route = self.routes.iter().find(|r| &*r.id == id)?;
        let mut lines = Vec::new();
        let auth = match route.auth.and_then(|i| self.auth.requirements.get(i)) {
            None => "public".to_owned(),
            Some(requirement) => {
                let names: Vec<&str> =
                    requirement.schemes.iter().filter_map(|i| self.auth.schemes.get(*i)).map(|s| &*s.name).collect();
                let mut text = format!("one of: {}", names.join(", "));
                let set = |rule: &auth::policy::SetRule| match rule {
                    auth::policy::SetRule::AnyOf(items) => format!("any of {}", items.join(", ")),
                    auth::policy::SetRule::AllOf(items) => format!("all of {}", items.join(", ")),
                };
                if let Some(scopes) = &requirement.scopes {
                    text.push_str(&format!("; scopes: {}", set(scopes)));
                }
                if let Some(roles) = &requirement.roles {
                    text.push_str(&format!("; roles: {}", set(roles)));
                }
                if requirement.optional {
                    text.push_str("; optional (anonymous requests pass)");
                }
                text
            }
        };
        lines.push(("auth", auth));
        let limits: Vec<&str> =
            route.rate_limits.iter().filter_map(|i| self.rate_policies.get(*i)).map(|p| &*p.name).collect();
        lines.push(("rate limits", if limits.is_empty() { "none".to_owned() } else { limits.join(", ") }));
        if route.ip.is_some() {
            lines.push(("ip", "allow/deny lists apply".to_owned()));
        }
        let validated = if route.validate.is_some() { "; the JSON body is validated" } else { "" };
        lines.push(("body", format!("at most {} bytes{validated}", route.max_body_bytes)));
        let idle = match route.idle_timeout {
            Some(idle) => format!("a body may stall {} ms", idle.as_millis()),
            None => "bodies may stall unbounded".to_owned(),
        };
        lines.push(("timeouts", format!("{} ms to the response head; {idle}", route.timeout.as_millis())));
        if let Some(retry) = &route.retry {
            lines.push((
                "retries",
                format!("up to {} attempts in all, backoff from {} ms", retry.attempts, retry.base_backoff_ms),
            ));
        }
        if let Some(cache) = &route.cache {
            let ttl = cache.ttl_s.map_or_else(|| "as long as the upstream allows".to_owned(), |ttl| format!("{ttl} s"));
            lines.push(("cache", format!("GET answers kept at the edge {ttl}")));
        }
        if let Some(lifetime) = route.socket_lifetime {
            lines.push(("websocket", format!("closed after {} ms", lifetime.as_millis())));
        }
        Some(lines)
    }

    /// The rules and persistence of the rate-limit policy `name`, for a limiter that decides
    /// from the routes file it was built with (the Workers Durable Object).
    pub fn rate_policy(&self, name: &str) -> Option<(&[ratelimit::decide::Rule], ratelimit::Persistence)> {
        self.rate_policies.iter().find(|p| &*p.name == name).map(|p| (&*p.rules, p.persistence))
    }

    /// Rate-limit policies that count with Cloudflare's `ratelimits` binding, which only
    /// Workers has (the Spin build refuses them).
    pub fn cloudflare_ratelimit_policies(&self) -> Vec<&str> {
        self.rate_policies
            .iter()
            .filter(|p| matches!(p.backend, ratelimit::Backend::CloudflareBinding { .. }))
            .map(|p| &*p.name)
            .collect()
    }

    /// The gateway serving `document` at the routes file's `openapi.path` (when it sets one):
    /// the text [`config::openapi::export`] makes, which the adapters' build scripts write next to
    /// the embedded routes file, so no request and no instance builds it.
    ///
    /// ```
    /// # use gateway_core::Gateway;
    /// let text = r#"{"version": 1, "upstreams": {"a": {"url": "http://a.internal"}},
    ///   "routes": [{"id": "r", "match": {"path": "/r"}, "upstream": "a"}],
    ///   "openapi": {"path": "/openapi.json"}}"#;
    /// let file: gateway_core::config::RoutesFile = serde_json::from_str(text).unwrap();
    /// let document = serde_json::to_vec(&gateway_core::config::openapi::export(&file)).unwrap();
    /// let gateway = Gateway::from_json(text).unwrap().with_openapi_document(document.into());
    /// assert_eq!(gateway.openapi_path(), Some("/openapi.json"));
    /// ```
    #[must_use]
    pub fn with_openapi_document(mut self, document: bytes::Bytes) -> Self {
        if let Some((_, served)) = &mut self.openapi {
            *served = document;
        }
        self
    }

    /// Where the routes file asks for its OpenAPI document to be served.
    pub fn openapi_path(&self) -> Option<&str> {
        self.openapi.as_ref().map(|(path, _)| &**path)
    }

    /// Routes that declare `websocket` (a lifetime for their sockets): the Spin build warns
    /// about them, since Spin answers every upgrade 501.
    pub fn websocket_routes(&self) -> Vec<&str> {
        self.routes.iter().filter(|r| r.socket_lifetime.is_some()).map(|r| &*r.id).collect()
    }

    /// Names of the runtime secrets the file refers to, sorted: what `wrangler secret put`
    /// must set, and the variables a Spin manifest must declare.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> =
            self.auth.issuers.iter().flat_map(|issuer| issuer.secrets.iter().map(|s| &*s.name)).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Whether the gateway uses the platform's key-value store (JWKS sharing, API-key
    /// consumers, rate-limit counters on Spin): Spin must then grant the `default` store.
    pub fn uses_store(&self) -> bool {
        !self.rate_policies.is_empty()
            || self.auth.issuers.iter().any(|issuer| issuer.jwks.is_some())
            || self
                .auth
                .schemes
                .iter()
                .any(|scheme| matches!(&scheme.kind, auth::policy::SchemeKind::ApiKey(keys) if keys.store))
    }

    /// `scheme://host[:port]` of every upstream, JWKS URL and OIDC issuer, sorted and without
    /// duplicates: what a platform must allow outbound (Spin's `allowed_outbound_hosts`).
    /// A JWKS URL found through discovery may live elsewhere; it must be allowed by hand.
    pub fn outbound_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> =
            self.upstreams.iter().map(|u| format!("{}://{}", u.scheme, u.authority)).collect();
        for issuer in self.auth.issuers.iter() {
            let url = match &issuer.jwks {
                Some(auth::policy::JwksSource::Url(url) | auth::policy::JwksSource::Discovery(url)) => url,
                None => continue,
            };
            if let Ok(uri) = url.parse::<http::Uri>() {
                if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
                    origins.push(format!("{scheme}://{authority}"));
                }
            }
        }
        origins.sort();
        origins.dedup();
        origins
    }
}
