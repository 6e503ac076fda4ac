//! Runs the plain-proxy-route pipeline N times over fakes, for instruction counts:
//! `valgrind --tool=callgrind target/release/examples/hot_path 10000` (deterministic where
//! wall-clock benchmarks on shared machines are not).
#![allow(async_fn_in_trait, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gateway_core::{handle, Gateway};

#[path = "../tests/support/mod.rs"]
mod support;
use support::block_on;
#[path = "../tests/support/hot_path.rs"]
mod hot_path;
use hot_path::{plain_proxy_request, Fakes, CLIENT};

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let gateway = Gateway::from_json(
        r#"{"version": 1, "upstreams": {"u": {"url": "http://127.0.0.1:9000"}},
        "routes": [{"id": "items", "match": {"path": "/svc3/items/{id}", "methods": ["GET"]}, "upstream": "u"}]}"#,
    )
    .unwrap();
    for _ in 0..iterations {
        std::hint::black_box(block_on(handle(&gateway, &Fakes, plain_proxy_request(), &CLIENT)));
    }
}
