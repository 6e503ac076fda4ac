//! The pipeline through its public surface (`Gateway::from_json` + `handle`) over fakes:
//! a scripted upstream that records what it received, a manual clock, fixed entropy.
#![allow(async_fn_in_trait, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use gateway_core::ports::Client;
use gateway_core::{handle, Gateway, IsolateState};
use http::Request;

mod support;
use support::block_on;
use support::fake::{Fake, FakeBody, Script};

const CLIENT: Client = Client { ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9))), https: true };

const ROUTES: &str = r#"{
  "version": 1,
  "defaults": { "max_body_bytes": 64 },
  "upstreams": {
    "a": { "url": "http://a.internal:8080" },
    "b": { "url": "https://b.internal/v1/" }
  },
  "routes": [
    { "id": "user", "match": { "path": "/users/{id}", "methods": ["GET"] }, "upstream": "b", "rewrite": "/people/{id}" },
    { "id": "user-new", "match": { "path": "/users/new", "methods": ["GET"] }, "upstream": "a" },
    { "id": "user-put", "match": { "path": "/users/{id}", "methods": ["PUT", "DELETE"] }, "upstream": "a" },
    { "id": "api", "match": { "path": "/api/{*rest}" }, "upstream": "a", "strip_prefix": "/api" },
    { "id": "api-root", "match": { "path": "/api" }, "upstream": "a", "strip_prefix": "/api" },
    { "id": "t-exact", "match": { "path": "/t", "host": "acme.example.com" }, "upstream": "a", "rewrite": "/exact" },
    { "id": "t-wild", "match": { "path": "/t", "host": "*.example.com" }, "upstream": "a", "rewrite": "/wild" },
    { "id": "t-any", "match": { "path": "/t" }, "upstream": "a", "rewrite": "/any" },
    { "id": "v2", "match": { "path": "/v", "headers": { "x-version": "2" } }, "upstream": "a", "rewrite": "/v2" },
    { "id": "v1", "match": { "path": "/v" }, "upstream": "a", "rewrite": "/v1" },
    { "id": "slow", "match": { "path": "/slow" }, "upstream": "a", "timeout_ms": 100 },
    { "id": "cors", "match": { "path": "/c", "methods": ["GET", "POST"] }, "upstream": "a",
      "cors": { "allow_origins": ["https://app.example.com"], "allow_headers": ["content-type"], "expose_headers": ["x-total"], "max_age_s": 60 } }
  ]
}"#;

fn gateway() -> Gateway {
    Gateway::from_json(ROUTES).unwrap()
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: FakeBody) -> Request<FakeBody> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder.body(body).unwrap()
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<FakeBody> {
    request("GET", uri, headers, FakeBody::Empty)
}

#[test]
fn routing_table() {
    // (method, uri, headers) -> upstream URI, or the gateway's own status.
    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Result<&'a str, u16>);
    let table: &[Row] = &[
        ("GET", "https://gw.example/users/7", &[], Ok("https://b.internal/v1/people/7")),
        ("GET", "https://gw.example/users/new", &[], Ok("http://a.internal:8080/users/new")),
        ("PUT", "https://gw.example/users/7", &[], Ok("http://a.internal:8080/users/7")),
        ("POST", "https://gw.example/users/7", &[], Err(405)),
        ("GET", "https://gw.example/users/7/extra", &[], Err(404)),
        ("GET", "https://gw.example/api/a/b?x=1&y", &[], Ok("http://a.internal:8080/a/b?x=1&y")),
        ("GET", "https://gw.example/api", &[], Ok("http://a.internal:8080/")),
        ("GET", "https://acme.example.com/t", &[], Ok("http://a.internal:8080/exact")),
        ("GET", "https://ACME.example.com:8443/t", &[], Ok("http://a.internal:8080/exact")),
        ("GET", "https://x.example.com/t", &[], Ok("http://a.internal:8080/wild")),
        ("GET", "https://example.com/t", &[], Ok("http://a.internal:8080/any")),
        ("GET", "/t", &[("host", "acme.example.com:443")], Ok("http://a.internal:8080/exact")),
        ("GET", "https://gw.example/v", &[("x-version", "2")], Ok("http://a.internal:8080/v2")),
        ("GET", "https://gw.example/v", &[("x-version", "3")], Ok("http://a.internal:8080/v1")),
        ("GET", "https://gw.example/api/../admin", &[], Err(400)),
        ("GET", "https://gw.example/api/%2E%2e/admin", &[], Err(400)),
        ("GET", "https://gw.example/nothing", &[], Err(404)),
    ];
    let gateway = gateway();
    for (method, uri, headers, expected) in table {
        let fake = Fake::new();
        let response = block_on(handle(
            &gateway,
            &IsolateState::new(),
            &fake,
            request(method, uri, headers, FakeBody::Empty),
            &CLIENT,
        ));
        match expected {
            Ok(upstream) => {
                assert_eq!(response.status(), 200, "{method} {uri}");
                assert_eq!(fake.last().uri().to_string(), *upstream, "{method} {uri}");
            }
            Err(status) => {
                assert_eq!(response.status().as_u16(), *status, "{method} {uri}");
                assert!(fake.received.borrow().is_empty(), "{method} {uri} reached the upstream");
            }
        }
    }
}

#[test]
fn method_not_allowed_lists_allowed_methods() {
    let response = block_on(handle(
        &gateway(),
        &IsolateState::new(),
        &Fake::new(),
        request("POST", "/users/7", &[], FakeBody::Empty),
        &CLIENT,
    ));
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, PUT, DELETE");
}

#[test]
fn problems_are_rfc9457_with_stable_types() {
    let fake = Fake::new();
    let response = block_on(handle(
        &gateway(),
        &IsolateState::new(),
        &fake,
        get("/nothing", &[("x-request-id", "req-1")]),
        &CLIENT,
    ));
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(&response.body().text()).unwrap();
    assert_eq!(body["type"], "urn:edgegate:problem:route-not-found");
    assert_eq!(body["status"], 404);
    assert_eq!(body["request_id"], "req-1");
    assert!(body["title"].is_string() && body["detail"].is_string());
}

#[test]
fn upstream_response_passes_through_with_hop_by_hop_removed() {
    let fake = Fake::new().respond(
        418,
        &[
            ("x-custom", "yes"),
            ("set-cookie", "a=1"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
        ],
        "teapot",
    );
    let response = block_on(handle(&gateway(), &IsolateState::new(), &fake, get("/api/x", &[]), &CLIENT));
    assert_eq!(response.status(), 418);
    assert_eq!(response.headers()["x-custom"], "yes");
    assert_eq!(response.headers()["set-cookie"], "a=1");
    for gone in ["connection", "x-hop", "keep-alive"] {
        assert!(!response.headers().contains_key(gone), "{gone}");
    }
    assert_eq!(response.body().text(), "teapot");
    assert_eq!(response.headers()["server-timing"], "edgegate;dur=0, upstream;dur=7");
}

#[test]
fn forwarding_headers_come_from_the_runtime_not_the_client() {
    let fake = Fake::new();
    let headers = [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-host", "evil"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("te", "trailers"),
        ("proxy-authorization", "x"),
    ];
    block_on(handle(&gateway(), &IsolateState::new(), &fake, get("https://gw.example:8443/api/x", &headers), &CLIENT));
    let sent = fake.last();
    let h = sent.headers();
    assert_eq!(h["x-forwarded-for"], "203.0.113.9");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "gw.example:8443");
    for gone in ["forwarded", "x-real-ip", "te", "proxy-authorization", "host"] {
        assert!(!h.contains_key(gone), "{gone}");
    }
}

#[test]
fn trusted_forwarding_headers_are_extended() {
    let gateway = Gateway::from_json(
        &ROUTES.replace(r#""max_body_bytes": 64 }"#, r#""max_body_bytes": 64, "trust_forwarded_headers": true }"#),
    )
    .unwrap();
    let fake = Fake::new();
    block_on(handle(
        &gateway,
        &IsolateState::new(),
        &fake,
        get("/api/x", &[("x-forwarded-for", "198.51.100.1"), ("x-forwarded-proto", "http")]),
        &CLIENT,
    ));
    let sent = fake.last();
    assert_eq!(sent.headers()["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
    assert_eq!(sent.headers()["x-forwarded-proto"], "http");
}

#[test]
fn request_ids_are_kept_when_well_formed_and_made_otherwise() {
    let table = [
        ("abc-123", "abc-123"),
        ("has space", "01020304-0506-4708-890a-0b0c0d0e0f10"),
        ("", "01020304-0506-4708-890a-0b0c0d0e0f10"),
    ];
    for (incoming, expected) in table {
        let fake = Fake::new();
        let response = block_on(handle(
            &gateway(),
            &IsolateState::new(),
            &fake,
            get("/api/x", &[("x-request-id", incoming)]),
            &CLIENT,
        ));
        assert_eq!(response.headers()["x-request-id"], expected, "{incoming:?}");
        assert_eq!(fake.last().headers()["x-request-id"], expected, "{incoming:?}");
    }
}

#[test]
fn trace_context_is_continued_or_started() {
    let fake = Fake::new();
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    block_on(handle(
        &gateway(),
        &IsolateState::new(),
        &fake,
        get("/api/x", &[("traceparent", incoming), ("tracestate", "v=1")]),
        &CLIENT,
    ));
    let sent = fake.last();
    assert_eq!(sent.headers()["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01");
    assert_eq!(sent.headers()["tracestate"], "v=1");

    let fake = Fake::new();
    block_on(handle(
        &gateway(),
        &IsolateState::new(),
        &fake,
        get("/api/x", &[("traceparent", "garbage"), ("tracestate", "v=1")]),
        &CLIENT,
    ));
    let sent = fake.last();
    assert_eq!(sent.headers()["traceparent"], "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-00");
    assert!(!sent.headers().contains_key("tracestate"));
}

#[test]
fn timeouts_and_unreachable_upstreams() {
    let response =
        block_on(handle(&gateway(), &IsolateState::new(), &Fake::new().then(Script::Hang), get("/slow", &[]), &CLIENT));
    assert_eq!(response.status(), 504);
    let response = block_on(handle(
        &gateway(),
        &IsolateState::new(),
        &Fake::new().then(Script::Unreachable),
        get("/slow", &[]),
        &CLIENT,
    ));
    assert_eq!(response.status(), 502);
    let body = response.body().text();
    assert!(!body.contains("connection refused"), "internal detail leaked: {body}");
}

#[test]
fn body_limits() {
    let gateway = gateway();
    // Declared too large: refused without reading.
    let fake = Fake::new();
    let response = block_on(handle(
        &gateway,
        &IsolateState::new(),
        &fake,
        request("PUT", "/users/1", &[("content-length", "65")], FakeBody::Chunks(vec![])),
        &CLIENT,
    ));
    assert_eq!(response.status(), 413);
    assert!(fake.received.borrow().is_empty());
    // Undeclared and too large: counted as it streams; the upload is cut and the client gets 413.
    let chunks = vec![Bytes::from(vec![b'x'; 40]), Bytes::from(vec![b'x'; 40])];
    let fake = Fake::new();
    let response = block_on(handle(
        &gateway,
        &IsolateState::new(),
        &fake,
        request("PUT", "/users/1", &[], FakeBody::Chunks(chunks)),
        &CLIENT,
    ));
    assert_eq!(response.status(), 413);
    assert!(response.body().text().contains("urn:edgegate:problem:payload-too-large"));
    assert!(fake.received.borrow().is_empty(), "no whole request reached the upstream");
    // Undeclared and small enough: streamed through as it came, never buffered.
    let fake = Fake::new();
    let body = FakeBody::Chunks(vec![Bytes::from_static(b"hel"), Bytes::from_static(b"lo")]);
    let response =
        block_on(handle(&gateway, &IsolateState::new(), &fake, request("PUT", "/users/1", &[], body.clone()), &CLIENT));
    assert_eq!(response.status(), 200);
    let sent = fake.last();
    assert!(!sent.headers().contains_key("content-length"));
    assert_eq!(*sent.body(), body);
    // A declared length within the limit streams through untouched.
    let fake = Fake::new();
    let body = FakeBody::Chunks(vec![Bytes::from_static(b"abc")]);
    block_on(handle(
        &gateway,
        &IsolateState::new(),
        &fake,
        request("PUT", "/users/1", &[("content-length", "3")], body.clone()),
        &CLIENT,
    ));
    assert_eq!(*fake.last().body(), body);
    // A malformed length is a bad request.
    let response = block_on(handle(
        &gateway,
        &IsolateState::new(),
        &Fake::new(),
        request("PUT", "/users/1", &[("content-length", "x")], FakeBody::Empty),
        &CLIENT,
    ));
    assert_eq!(response.status(), 400);
}

#[test]
fn cors_preflight_and_actual_requests() {
    let gateway = gateway();
    let preflight = [
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "Content-Type"),
    ];
    let fake = Fake::new();
    let response = block_on(handle(
        &gateway,
        &IsolateState::new(),
        &fake,
        request("OPTIONS", "/c", &preflight, FakeBody::Empty),
        &CLIENT,
    ));
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(response.headers()["access-control-allow-methods"], "GET, POST");
    assert_eq!(response.headers()["access-control-allow-headers"], "content-type");
    assert_eq!(response.headers()["access-control-max-age"], "60");
    assert_eq!(response.headers()["vary"], "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    assert!(fake.received.borrow().is_empty());

    let refusals: [&[(&str, &str)]; 3] = [
        &[("origin", "https://evil.example"), ("access-control-request-method", "GET")],
        &[("origin", "https://app.example.com"), ("access-control-request-method", "DELETE")],
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-secret"),
        ],
    ];
    for headers in refusals {
        let response = block_on(handle(
            &gateway,
            &IsolateState::new(),
            &Fake::new(),
            request("OPTIONS", "/c", headers, FakeBody::Empty),
            &CLIENT,
        ));
        assert!(matches!(response.status().as_u16(), 403 | 405), "{headers:?}: {}", response.status());
        assert!(!response.headers().contains_key("access-control-allow-origin"), "{headers:?}");
    }

    let response = block_on(handle(
        &gateway,
        &IsolateState::new(),
        &Fake::new(),
        get("/c", &[("origin", "https://app.example.com")]),
        &CLIENT,
    ));
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(response.headers()["access-control-expose-headers"], "x-total");
    let response = block_on(handle(
        &gateway,
        &IsolateState::new(),
        &Fake::new(),
        get("/c", &[("origin", "https://evil.example")]),
        &CLIENT,
    ));
    assert!(!response.headers().contains_key("access-control-allow-origin"));
}

#[test]
fn one_access_log_line_per_request_without_query() {
    let fake = Fake::new().respond(201, &[], "");
    block_on(handle(
        &gateway(),
        &IsolateState::new(),
        &fake,
        get("/api/x?token=secret", &[("x-request-id", "r-1")]),
        &CLIENT,
    ));
    let logs = fake.logs.borrow();
    assert_eq!(logs.len(), 1);
    let line: serde_json::Value = serde_json::from_str(&logs[0]).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"time": "2026-11-22T02:34:21.000Z", "request_id": "r-1", "route": "api", "method": "GET", "path": "/api/x",
            "status": 201, "upstream_status": 201, "duration_ms": 7, "upstream_ms": 7})
    );
}

#[test]
fn upstream_origins_for_platform_allow_lists() {
    assert_eq!(gateway().outbound_origins(), ["http://a.internal:8080", "https://b.internal"]);
}
