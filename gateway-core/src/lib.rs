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

pub mod config;
mod cors;
mod hygiene;
mod log;
mod pipeline;
pub mod ports;
mod problem;
mod route;
mod router;

pub use config::{ConfigError, ConfigErrorKind};
pub use pipeline::handle;
pub use problem::{problem, ProblemKind};

use cors::CorsPolicy;
use route::{CompiledRoute, UpstreamTarget};

/// A compiled routes file: immutable, built once per isolate, shared by every request.
#[derive(Debug)]
pub struct Gateway {
    router: router::Router,
    routes: Box<[CompiledRoute]>,
    upstreams: Box<[UpstreamTarget]>,
    cors: Box<[CorsPolicy]>,
    default_cors: Option<usize>,
    trust_forwarded: bool,
}

impl Gateway {
    /// Parses and compiles routes.json; every error comes with its JSON path.
    pub fn from_json(text: &str) -> Result<Self, Vec<ConfigError>> {
        config::from_json(text)
    }

    /// The route ids, in file order.
    pub fn route_ids(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| &*r.id)
    }

    /// `scheme://host[:port]` of every upstream, sorted and without duplicates: what a
    /// platform must allow outbound (Spin's `allowed_outbound_hosts`).
    pub fn upstream_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> =
            self.upstreams.iter().map(|u| format!("{}://{}", u.scheme, u.authority)).collect();
        origins.sort();
        origins.dedup();
        origins
    }
}
