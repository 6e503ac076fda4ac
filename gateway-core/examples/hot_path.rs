//! Runs the plain-proxy-route pipeline N times over fakes, for instruction counts:
//! `valgrind --tool=callgrind target/release/examples/hot_path 10000` (deterministic where
//! wall-clock benchmarks on shared machines are not).
#![allow(async_fn_in_trait, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use gateway_core::ports::{AccessLog, Body, BodyError, Client, Clock, Entropy, Fetch, FetchError, Sleep, UnixMillis};
use gateway_core::{handle, Gateway};
use http::{Request, Response};

#[path = "../tests/support/mod.rs"]
mod support;
use support::block_on;

struct FakeBody;
impl Body for FakeBody {
    fn empty() -> Self {
        FakeBody
    }
    fn from_bytes(_: Bytes) -> Self {
        FakeBody
    }
    fn is_known_empty(&self) -> bool {
        true
    }
    async fn collect(self, _: u64) -> Result<Bytes, BodyError> {
        Ok(Bytes::new())
    }
}

struct Fakes;
impl Fetch for Fakes {
    type Body = FakeBody;
    async fn fetch(&self, _: Request<FakeBody>) -> Result<Response<FakeBody>, FetchError> {
        let mut response = Response::new(FakeBody);
        response.headers_mut().insert("content-type", "application/json".parse().unwrap());
        Ok(response)
    }
}
impl Clock for Fakes {
    fn now(&self) -> UnixMillis {
        1_795_314_861_000
    }
}
impl Sleep for Fakes {
    async fn sleep(&self, _: Duration) {
        std::future::pending::<()>().await
    }
}
impl Entropy for Fakes {
    fn fill(&self, buf: &mut [u8]) {
        buf.fill(7);
    }
}
impl AccessLog for Fakes {
    fn log(&self, line: &str) {
        std::hint::black_box(line);
    }
}

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let gateway = Gateway::from_json(
        r#"{"version": 1, "upstreams": {"u": {"url": "http://127.0.0.1:9000"}},
        "routes": [{"id": "items", "match": {"path": "/svc3/items/{id}", "methods": ["GET"]}, "upstream": "u"}]}"#,
    )
    .unwrap();
    let client = Client { ip: Some([203, 0, 113, 9].into()), https: true };
    for _ in 0..iterations {
        let request = Request::builder()
            .method("GET")
            .uri("https://api.example.com/svc3/items/12345?expand=parts")
            .header("accept", "application/json")
            .header("user-agent", "bench/1.0")
            .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .body(FakeBody)
            .unwrap();
        std::hint::black_box(block_on(handle(&gateway, &Fakes, request, &client)));
    }
}
