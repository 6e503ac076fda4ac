//! Criterion benchmarks: route matching at 10, 100 and 1,000 routes, and the whole
//! pipeline for a plain proxy route over in-memory fakes.
#![allow(async_fn_in_trait, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use gateway_core::{handle, Gateway, IsolateState};
use http::{HeaderMap, Method};

#[path = "../tests/support/mod.rs"]
mod support;
use support::block_on;
#[path = "../tests/support/hot_path.rs"]
mod hot_path;
use hot_path::{browser_proxy_request, plain_proxy_request, Fakes, CLIENT};

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

fn pipeline(c: &mut Criterion) {
    let gateway = Gateway::from_json(&routes_file(100)).unwrap();
    let state = IsolateState::new();
    // The adapter builds the http::Request; the benchmark times the core from there.
    c.bench_function("handle/plain_proxy_route", |b| {
        b.iter_batched(
            plain_proxy_request,
            |request| block_on(handle(&gateway, &state, &Fakes, request, &CLIENT)),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("handle/plain_proxy_route_browser_headers", |b| {
        b.iter_batched(
            browser_proxy_request,
            |request| block_on(handle(&gateway, &state, &Fakes, request, &CLIENT)),
            criterion::BatchSize::SmallInput,
        )
    });
    // An ES256 JWT route with a claim header; the token repeats, as a client's does, so after
    // the first request its signature check is skipped (the claims are still checked).
    let key = support::tokens::p256_key(9);
    let jwt_state = IsolateState::new();
    let jwt_gateway = Gateway::from_json(&serde_json::json!({
        "version": 1,
        "auth": {"jwt": {"bench": {"issuers": [{"issuer": "https://bench.test", "keys": [support::tokens::p256_jwk(&key, "k1")]}],
                                   "forward_claims": {"x-user-id": "sub"}}}},
        "upstreams": {"u": {"url": "http://127.0.0.1:9000"}},
        "routes": [{"id": "jwt", "match": {"path": "/svc3/items/{id}"}, "upstream": "u", "auth": {"any_of": ["bench"]}}]
    }).to_string()).unwrap();
    let token = support::tokens::es256(
        &key,
        &serde_json::json!({"alg": "ES256", "kid": "k1"}),
        &serde_json::json!({"iss": "https://bench.test", "sub": "user-1", "exp": 4_000_000_000u64, "scope": "read"}),
    );
    let authorization = format!("Bearer {token}");
    let jwt_request = || {
        let mut request = plain_proxy_request();
        request.headers_mut().insert("authorization", authorization.parse().unwrap());
        request
    };
    c.bench_function("handle/es256_jwt_route_repeated_token", |b| {
        b.iter_batched(
            jwt_request,
            |request| block_on(handle(&jwt_gateway, &jwt_state, &Fakes, request, &CLIENT)),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("compile/bench_routes_file", |b| {
        let text = include_str!("../../tests/bench/routes.json");
        b.iter(|| Gateway::from_json(black_box(text)).unwrap())
    });
    c.bench_function("compile/100_routes", |b| {
        let text = routes_file(100);
        b.iter(|| Gateway::from_json(black_box(&text)).unwrap())
    });
}

criterion_group!(benches, route_matching, pipeline);
criterion_main!(benches);
