//! Transforms, body validation, IP lists and retries through the public surface over fakes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use gateway_core::ports::Client;
use gateway_core::{handle, Gateway, IsolateState};
use http::{Request, Response};
use serde_json::{json, Value};

mod support;
use support::block_on;
use support::fake::{Fake, FakeBody, Script};

const CLIENT: Client = Client { ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9))), https: true };

fn gateway() -> Gateway {
    Gateway::from_json(
        &json!({
          "version": 1,
          "upstreams": {"a": {"url": "http://a.internal"}, "b": {"url": "https://b.internal/v2"}},
          "routes": [
            {"id": "edit", "match": {"path": "/u/{id}"}, "upstream": "a",
             "request": {"headers": {"set": {"x-id": "{params.id}", "x-ip": "{request.ip}"}, "remove": ["x-debug"], "rename": {"x-old": "x-new"},
                                     "add": {"x-sub": "{claims.sub}"}},
                         "query": {"allow": ["page"], "add": {"src": "edge gw"}}},
             "response": {"headers": {"set": {"x-rid": "{request.id}"}, "remove": ["server"]},
                          "body": {"target": "data", "deny": ["items.secret"], "rename": {"items.n": "name"}, "group": "result"}}},
            {"id": "strict", "match": {"path": "/strict"}, "upstream": "a", "response": {"body": {"target": "data", "on_invalid": "bad_gateway", "max_bytes": 64}}},
            {"id": "lenient", "match": {"path": "/lenient"}, "upstream": "a", "response": {"body": {"deny": ["secret"], "on_invalid": "pass_through", "max_bytes": 64}}},
            {"id": "guarded", "match": {"path": "/guarded"}, "upstream": "a", "response": {"body": {"deny": ["secret"], "max_bytes": 64}}},
            {"id": "reshape", "match": {"path": "/reshape"}, "upstream": "a", "response": {"body": {"target": "data", "max_bytes": 64}}},
            {"id": "orders", "match": {"path": "/orders"}, "upstream": "a",
             "validate_body": {"type": "object", "required": ["qty"], "properties": {"qty": {"type": "integer", "minimum": 1}}}},
            {"id": "office", "match": {"path": "/office"}, "upstream": "a", "ip": {"allow": ["203.0.113.0/24"], "deny": ["203.0.113.9"]}},
            {"id": "lan", "match": {"path": "/lan"}, "upstream": "a", "ip": {"allow": ["10.0.0.0/8", "203.0.113.0/24"]}},
            {"id": "retry", "match": {"path": "/r"}, "upstream": "a", "retry": {"attempts": 3, "backoff_ms": 5}},
            {"id": "home", "match": {"path": "/home/{id}"}, "aggregate": {"legs": [
              {"name": "user", "upstream": "a", "path": "/users/{params.id}", "group": "user"},
              {"name": "prefs", "upstream": "b", "path": "/prefs?u={params.id}"},
              {"name": "ads", "upstream": "a", "path": "/ads", "required": false, "group": "ads"},
              {"name": "badges", "upstream": "b", "path": "/badges", "required": false, "group": "badges"}]},
             "response": {"body": {"deny": ["user.secret"]}}},
            {"id": "strict-home", "match": {"path": "/strict-home"}, "aggregate": {"legs": [
              {"name": "user", "upstream": "a", "path": "/users/1"}]}}
          ]
        })
        .to_string(),
    )
    .unwrap()
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: FakeBody) -> Request<FakeBody> {
    let mut builder = Request::builder().method(method).uri(format!("https://gw.example{path}"));
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder.body(body).unwrap()
}

fn send(fake: &Fake, request: Request<FakeBody>) -> Response<FakeBody> {
    block_on(handle(&gateway(), &IsolateState::new(), fake, request, &CLIENT))
}

fn problem_type(response: &Response<FakeBody>) -> String {
    let body: Value = serde_json::from_str(&response.body().text()).unwrap();
    body["type"].as_str().unwrap().to_owned()
}

#[test]
fn request_and_response_edits() {
    let upstream_body =
        json!({"data": {"items": [{"n": "a", "secret": 1}, {"n": "b", "secret": 2}]}, "meta": 1}).to_string();
    let fake = Fake::new().respond(
        200,
        &[("content-type", "application/json"), ("server", "nginx"), ("content-length", "999")],
        &upstream_body,
    );
    let response = send(
        &fake,
        request(
            "GET",
            "/u/42?page=2&debug=1",
            &[("x-debug", "1"), ("x-old", "v"), ("x-id", "spoofed")],
            FakeBody::Empty,
        ),
    );
    assert_eq!(response.status(), 200);
    let sent = fake.last();
    assert_eq!(sent.uri().to_string(), "http://a.internal/u/42?page=2&src=edge%20gw");
    assert_eq!(sent.headers()["x-id"], "42");
    assert_eq!(sent.headers()["x-ip"], "203.0.113.9");
    assert_eq!(sent.headers()["x-new"], "v");
    assert!(sent.headers().get("x-debug").is_none() && sent.headers().get("x-old").is_none());
    assert!(sent.headers().get("x-sub").is_none(), "an anonymous caller has no claims: nothing is added");
    assert!(response.headers().get("server").is_none());
    assert_eq!(response.headers()["x-rid"], response.headers()["x-request-id"]);
    let body: Value = serde_json::from_str(&response.body().text()).unwrap();
    assert_eq!(body, json!({"result": {"items": [{"name": "a"}, {"name": "b"}]}}));
    assert_eq!(response.headers()["content-length"], response.body().text().len().to_string().as_str());
}

#[test]
fn body_transforms_leave_errors_and_non_json_alone_or_refuse_as_configured() {
    let fake = Fake::new().respond(500, &[], r#"{"data": {"error": true}}"#);
    let response = send(&fake, request("GET", "/u/1", &[], FakeBody::Empty));
    assert_eq!(response.status(), 500);
    assert_eq!(response.body().text(), r#"{"data": {"error": true}}"#, "upstream errors pass through unchanged");

    // A route that removes fields fails closed by default: what it cannot filter is refused.
    let fake = Fake::new().respond(200, &[], "plain text");
    let response = send(&fake, request("GET", "/u/1", &[], FakeBody::Empty));
    assert_eq!(response.status(), 502, "deny filters default to bad_gateway");
    assert_eq!(problem_type(&response), "urn:edgegate:problem:bad-upstream-body");
    let too_long = format!(r#"{{"secret": "{}"}}"#, "s".repeat(100));
    let length = too_long.len().to_string();
    let fake = Fake::new().respond(200, &[("content-length", &length)], &too_long);
    let response = send(&fake, request("GET", "/guarded", &[], FakeBody::Empty));
    assert_eq!(response.status(), 502, "a declared length over the limit is refused too");

    // Passing through is what a route asks for explicitly, or gets when it only reshapes.
    let fake = Fake::new().respond(200, &[("content-length", &length)], &too_long);
    let response = send(&fake, request("GET", "/lenient", &[], FakeBody::Empty));
    assert_eq!(response.body().text(), too_long, "on_invalid pass_through");
    let fake = Fake::new().respond(200, &[], "plain text");
    let response = send(&fake, request("GET", "/reshape", &[], FakeBody::Empty));
    assert_eq!(response.body().text(), "plain text", "no filter: pass_through by default");

    let fake = Fake::new().respond(200, &[], "plain text");
    let response = send(&fake, request("GET", "/strict", &[], FakeBody::Empty));
    assert_eq!(response.status(), 502);
    assert_eq!(problem_type(&response), "urn:edgegate:problem:bad-upstream-body");

    let big = format!(r#"{{"data": "{}"}}"#, "x".repeat(100));
    let fake = Fake::new().respond(200, &[], &big);
    assert_eq!(send(&fake, request("GET", "/strict", &[], FakeBody::Empty)).status(), 502, "over max_bytes");
}

#[test]
fn an_event_stream_is_never_waited_for_by_a_body_transform() {
    // A stream that never ends: reading it would hang this test.
    let events = || {
        let mut response = Response::new(FakeBody::Stalled);
        response.headers_mut().insert("content-type", "text/event-stream; charset=utf-8".parse().unwrap());
        Script::Respond(response)
    };
    let fake = Fake::new().then(events());
    let response = send(&fake, request("GET", "/reshape", &[], FakeBody::Empty));
    assert_eq!(response.status(), 200);
    assert_eq!(*response.body(), FakeBody::Stalled, "passed through untouched, unread");
    let fake = Fake::new().then(events());
    let response = send(&fake, request("GET", "/u/1", &[], FakeBody::Empty));
    assert_eq!(response.status(), 502, "a filter that must read the body refuses at once");
    assert_eq!(problem_type(&response), "urn:edgegate:problem:bad-upstream-body");
}

#[test]
fn body_validation_names_the_failing_path() {
    let fake = Fake::new();
    let bad = FakeBody::Bytes(Bytes::from_static(br#"{"qty": 0}"#));
    let response = send(&fake, request("POST", "/orders", &[("content-length", "10")], bad));
    assert_eq!(response.status(), 400);
    assert_eq!(problem_type(&response), "urn:edgegate:problem:invalid-body");
    let detail: Value = serde_json::from_str(&response.body().text()).unwrap();
    assert!(detail["detail"].as_str().unwrap().starts_with("$.qty: "), "{detail}");
    assert!(fake.received.borrow().is_empty());
    let good = FakeBody::Chunks(vec![Bytes::from_static(br#"{"qty""#), Bytes::from_static(br#": 3}"#)]);
    assert_eq!(send(&fake, request("POST", "/orders", &[], good)).status(), 200);
    assert_eq!(fake.last().body().text(), r#"{"qty": 3}"#);
}

#[test]
fn ip_lists() {
    let fake = Fake::new();
    let denied = send(&fake, request("GET", "/office", &[], FakeBody::Empty));
    assert_eq!(denied.status(), 403, "deny wins over allow");
    assert_eq!(problem_type(&denied), "urn:edgegate:problem:ip-denied");
    assert_eq!(send(&fake, request("GET", "/lan", &[], FakeBody::Empty)).status(), 200);
    let unknown = block_on(handle(
        &gateway(),
        &IsolateState::new(),
        &fake,
        request("GET", "/lan", &[], FakeBody::Empty),
        &Client { ip: None, https: true },
    ));
    assert_eq!(unknown.status(), 403, "an unknown address fails closed");
}

#[test]
fn retries_only_what_may_be_retried() {
    let fake = Fake::new().respond(503, &[], "busy").then(Script::Unreachable).respond(200, &[], "ok");
    let response = send(&fake, request("GET", "/r", &[], FakeBody::Empty));
    assert_eq!(response.status(), 200);
    assert_eq!(fake.received.borrow().len(), 3);

    let fake = Fake::new().respond(503, &[], "busy").respond(503, &[], "busy").respond(503, &[], "still busy").respond(
        200,
        &[],
        "late",
    );
    let response = send(&fake, request("GET", "/r", &[], FakeBody::Empty));
    assert_eq!((response.status().as_u16(), response.body().text()), (503, "still busy".to_owned()), "attempt cap");

    let fake = Fake::new().respond(503, &[], "busy").respond(200, &[], "ok");
    let body = FakeBody::Bytes(Bytes::from_static(b"{}"));
    let response = send(&fake, request("POST", "/r", &[("content-length", "2")], body));
    assert_eq!(response.status(), 503, "a POST is not retried");
    assert_eq!(fake.received.borrow().len(), 1);

    let fake = Fake::new().respond(404, &[], "nope").respond(200, &[], "ok");
    assert_eq!(
        send(&fake, request("PUT", "/r", &[], FakeBody::Empty)).status(),
        404,
        "a 404 is an answer, not a failure"
    );
}

#[test]
fn aggregation_merges_legs_and_marks_a_partial_answer() {
    let fake = Fake::new()
        .respond(200, &[], r#"{"id": "7", "secret": "x"}"#)
        .respond(200, &[], r#"{"theme": "dark", "user": {"plan": "pro"}}"#)
        .then(Script::Hang)
        .respond(500, &[], "down");
    let response = send(&fake, request("GET", "/home/7", &[], FakeBody::Empty));
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["gateway-completed"], "false");
    let body: Value = serde_json::from_str(&response.body().text()).unwrap();
    assert_eq!(
        body,
        json!({"user": {"id": "7", "plan": "pro"}, "theme": "dark"}),
        "grouped, merged into the root, transformed"
    );
    let uris: Vec<String> = fake.received.borrow().iter().map(|r| r.uri().to_string()).collect();
    assert_eq!(
        uris,
        [
            "http://a.internal/users/7",
            "https://b.internal/v2/prefs?u=7",
            "http://a.internal/ads",
            "https://b.internal/v2/badges"
        ]
    );

    let fake = Fake::new().respond(200, &[], "{}").respond(200, &[], "{}").respond(200, &[], r#"{"n": 1}"#).respond(
        200,
        &[],
        "[1]",
    );
    let response = send(&fake, request("GET", "/home/7", &[], FakeBody::Empty));
    assert_eq!(response.headers()["gateway-completed"], "true");

    let fake = Fake::new().then(Script::Unreachable);
    let response = send(&fake, request("GET", "/strict-home", &[], FakeBody::Empty));
    assert_eq!(response.status(), 502);
    assert_eq!(problem_type(&response), "urn:edgegate:problem:upstream-unreachable");
}

#[test]
fn edge_cache_hit_miss_bypass() {
    let gateway = Gateway::from_json(
        &json!({"version": 1, "upstreams": {"a": {"url": "http://a.internal"}},
                "routes": [{"id": "c", "match": {"path": "/c/{*rest}"}, "upstream": "a", "cache": {"vary": ["accept-language"]}}]})
        .to_string(),
    )
    .unwrap();
    let fake = Fake::new()
        .respond(200, &[("cache-control", "public, max-age=30")], "one")
        .respond(200, &[("cache-control", "no-store")], "two")
        .respond(200, &[("cache-control", "max-age=30"), ("set-cookie", "s=1")], "three")
        .respond(200, &[("cache-control", "max-age=30")], "four");
    let get = |path: &str, headers: &[(&str, &str)]| {
        block_on(handle(&gateway, &IsolateState::new(), &fake, request("GET", path, headers, FakeBody::Empty), &CLIENT))
    };
    let status = |r: &Response<FakeBody>| r.headers()["cache-status"].to_str().unwrap().to_owned();
    assert_eq!(status(&get("/c/x", &[("accept-language", "en")])), "edgegate; fwd=uri-miss; stored");
    let hit = get("/c/x", &[("accept-language", "en")]);
    assert_eq!((status(&hit), hit.body().text()), ("edgegate; hit".to_owned(), "one".to_owned()));
    assert_eq!(status(&get("/c/x", &[("accept-language", "de")])), "edgegate; fwd=uri-miss", "no-store");
    assert_eq!(status(&get("/c/y", &[])), "edgegate; fwd=uri-miss", "Set-Cookie is never stored");
    assert_eq!(status(&get("/c/x", &[("accept-language", "en"), ("cookie", "s=1")])), "edgegate; fwd=bypass");
    assert_eq!(fake.received.borrow().len(), 4);
}
