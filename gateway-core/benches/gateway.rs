//! Criterion benchmarks: route matching at 10, 100 and 1,000 routes, and the whole
//! pipeline for a plain proxy route over in-memory fakes.
#![allow(async_fn_in_trait, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use gateway_core::ports::{AccessLog, Body, BodyError, Client, Clock, Entropy, Fetch, FetchError, Sleep, UnixMillis};
use gateway_core::{handle, Gateway};
use http::{HeaderMap, Method, Request, Response};

#[path = "../tests/support/mod.rs"]
mod support;
use support::block_on;

/// A routes file shaped like a real fleet: per service, CRUD routes with parameters, a
/// nested resource and a catch-all.
fn routes_file(count: usize) -> String {
    let mut routes = Vec::new();
    let mut service = 0;
    while routes.len() < count {
        let s = format!("svc{service}");
        let shapes = [
            (format!("/{s}/items"), "GET"),
            (format!("/{s}/items/{{id}}"), "GET"),
            (format!("/{s}/items/{{id}}/parts/{{part}}"), "GET"),
            (format!("/{s}/items"), "POST"),
            (format!("/{s}/static/{{*rest}}"), "GET"),
        ];
        for (path, method) in shapes {
            if routes.len() < count {
                routes.push(format!(
                    r#"{{"id": "r{}", "match": {{"path": "{path}", "methods": ["{method}"]}}, "upstream": "u"}}"#,
                    routes.len()
                ));
            }
        }
        service += 1;
    }
    format!(
        r#"{{"version": 1, "upstreams": {{"u": {{"url": "http://127.0.0.1:9000"}}}}, "routes": [{}]}}"#,
        routes.join(",")
    )
}

fn route_matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("find_route");
    let headers = HeaderMap::new();
    for count in [10, 100, 1000] {
        let gateway = Gateway::from_json(&routes_file(count)).unwrap();
        let last_service = count / 5 - 1;
        let path = format!("/svc{last_service}/items/12345/parts/abc");
        let expected = gateway.find_route(&Method::GET, None, &headers, &path);
        assert!(expected.is_ok(), "{path}");
        group.bench_with_input(BenchmarkId::from_parameter(count), &path, |b, path| {
            b.iter(|| gateway.find_route(black_box(&Method::GET), None, &headers, black_box(path)))
        });
    }
    group.finish();
}

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
        black_box(line);
    }
}

fn pipeline(c: &mut Criterion) {
    let gateway = Gateway::from_json(&routes_file(100)).unwrap();
    let client = Client { ip: Some([203, 0, 113, 9].into()), https: true };
    // The adapter builds the http::Request; the benchmark times the core from there.
    c.bench_function("handle/plain_proxy_route", |b| {
        b.iter_batched(
            || {
                Request::builder()
                    .method("GET")
                    .uri("https://api.example.com/svc3/items/12345?expand=parts")
                    .header("accept", "application/json")
                    .header("user-agent", "bench/1.0")
                    .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                    .body(FakeBody)
                    .unwrap()
            },
            |request| block_on(handle(&gateway, &Fakes, request, &client)),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("compile/100_routes", |b| {
        let text = routes_file(100);
        b.iter(|| Gateway::from_json(black_box(&text)).unwrap())
    });
}

criterion_group!(benches, route_matching, pipeline);
criterion_main!(benches);
