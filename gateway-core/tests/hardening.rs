//! The defects hostile and careful use found (issue 9), each as the client and the upstream
//! see it through `handle` over fakes. Each test failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use gateway_core::ports::Client;
use gateway_core::{handle, Gateway, IsolateState};
use http::{Request, Response};
use serde_json::{json, Value};

mod support;
use support::block_on;
use support::fake::{Fake, FakeBody, Script};

const CLIENT: Client = Client { ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9))), https: true };

fn routes(trust: bool) -> String {
    json!({
      "version": 1,
      "defaults": {"trust_forwarded_headers": trust},
      "auth": {
        "jwt": {"corp": {"issuers": [{"issuer": "https://id.example", "secrets": [{"secret": "s", "alg": "HS256"}]}],
                         "forward_claims": {"x-user-id": "sub"}}},
        "api_keys": {"partners": {"store": true, "forward": {"x-consumer-id": "id"}}}
      },
      "rate_limits": {"tenant": {"key": ["header:x-tenant"], "limits": [{"requests": 1, "per_s": 60}]},
                      "per-ip": {"key": ["ip"], "limits": [{"requests": 100, "per_s": 60}]}},
      "upstreams": {
        "a": {"url": "http://a.internal"},
        "fragile": {"url": "http://fragile.internal", "breaker": {"failure_percent": 50, "min_requests": 2, "window_s": 30, "cooldown_s": 30}}
      },
      "routes": [
        {"id": "pub", "match": {"path": "/pub/{*rest}"}, "upstream": "a"},
        {"id": "override", "match": {"path": "/override"}, "upstream": "a", "method_override": true},
        {"id": "cors", "match": {"path": "/cors"}, "upstream": "a",
         "cors": {"allow_origins": ["https://app.example.com"], "allow_credentials": true}},
        {"id": "cors-keep", "match": {"path": "/cors-keep"}, "upstream": "a",
         "cors": {"allow_origins": ["https://app.example.com"], "keep_upstream_headers": true}},
        {"id": "any", "match": {"path": "/any"}, "upstream": "a", "cors": {"allow_origins": ["*"]}},
        {"id": "deny", "match": {"path": "/deny"}, "upstream": "a", "request": {"query": {"deny": ["token"]}}},
        {"id": "allow", "match": {"path": "/allow"}, "upstream": "a", "request": {"query": {"allow": ["page"]}}},
        {"id": "cached", "match": {"path": "/cached"}, "upstream": "a", "cache": {"ttl_s": 60}},
        {"id": "validated", "match": {"path": "/validated"}, "upstream": "a", "validate_body": {"type": "object"}},
        {"id": "fragile", "match": {"path": "/fragile"}, "upstream": "fragile", "timeout_ms": 100},
        {"id": "home", "match": {"path": "/home"}, "aggregate": {"legs": [
          {"name": "one", "upstream": "a", "path": "/one", "group": "one"},
          {"name": "two", "upstream": "a", "path": "/two", "group": "two"}]}},
        {"id": "limited", "match": {"path": "/limited"}, "upstream": "a", "rate_limit": ["tenant"]},
        {"id": "ids", "match": {"path": "/ids/{id}"}, "upstream": "a", "allow_encoded_slashes": true},
        {"id": "by-ip", "match": {"path": "/by-ip"}, "upstream": "a", "rate_limit": ["per-ip"]},
        {"id": "tenant", "match": {"path": "/tenant"}, "upstream": "a", "request": {"headers": {"set": {"x-tenant": "{claims.tenant}"}}}},
        {"id": "upload", "match": {"path": "/upload"}, "upstream": "fragile", "timeout_ms": 100},
        {"id": "filtered", "match": {"path": "/filtered"}, "upstream": "a", "response": {"body": {"deny": ["data.secret"]}}}
      ]
    })
    .to_string()
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<FakeBody> {
    request_with(method, path, headers, FakeBody::Empty)
}

fn request_with(method: &str, path: &str, headers: &[(&str, &str)], body: FakeBody) -> Request<FakeBody> {
    let mut builder = Request::builder().method(method).uri(format!("https://gw.example{path}"));
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder.body(body).unwrap()
}

fn send(gateway: &Gateway, fake: &Fake, request: Request<FakeBody>) -> Response<FakeBody> {
    send_in(gateway, &IsolateState::new(), fake, request)
}

/// As one isolate serves several requests: what it learns (keys, breakers) carries over.
fn send_in<const BOUNDED: bool>(
    gateway: &Gateway,
    state: &IsolateState,
    fake: &Fake<BOUNDED>,
    request: Request<FakeBody>,
) -> Response<FakeBody> {
    block_on(handle(gateway, state, fake, request, &CLIENT))
}

fn problem_type(response: &Response<FakeBody>) -> String {
    let body: Value = serde_json::from_str(&response.body().text()).unwrap();
    body["type"].as_str().unwrap().to_owned()
}

/// Items 1 and 2: what the client says about identity and the connection never reaches the
/// upstream; the gateway's own forwarding headers do.
#[test]
fn spoofable_headers_never_reach_the_upstream() {
    let spoofed = [
        ("x-user-id", "victim"),
        ("x-consumer-id", "acme"),
        ("x-forwarded-port", "8443"),
        ("x-forwarded-prefix", "/admin"),
        ("x-forwarded-server", "evil"),
        ("x-forwarded-scheme", "http"),
        ("x-forwarded-ssl", "off"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-original-url", "/admin/x"),
        ("x-rewrite-url", "/admin/x"),
        ("x-real-ip", "10.0.0.1"),
        ("forwarded", "for=10.0.0.1;proto=http"),
        ("true-client-ip", "10.0.0.1"),
        ("x-client-ip", "10.0.0.1"),
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
    ];
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new();
    assert_eq!(send(&gateway, &fake, request("POST", "/pub/x", &spoofed)).status(), 200);
    let upstream = fake.last();
    for (name, _) in spoofed {
        let expected = match name {
            "x-forwarded-for" => Some("203.0.113.9"),
            _ => None,
        };
        assert_eq!(upstream.headers().get(name).map(|v| v.to_str().unwrap()), expected, "{name}");
    }
    assert_eq!(upstream.headers()["x-forwarded-proto"], "https");
    assert_eq!(upstream.headers()["x-forwarded-host"], "gw.example");

    // A route that opts in keeps the method override; identity headers go everywhere.
    let fake = Fake::new();
    send(&gateway, &fake, request("POST", "/override", &spoofed));
    let upstream = fake.last();
    assert_eq!(upstream.headers()["x-http-method-override"], "DELETE");
    assert!(upstream.headers().get("x-user-id").is_none());

    // Behind a trusted proxy the forwarding headers stay, identity headers still go.
    let trusting = Gateway::from_json(&routes(true)).unwrap();
    let fake = Fake::new();
    send(&trusting, &fake, request("GET", "/pub/x", &spoofed));
    let upstream = fake.last();
    assert_eq!(upstream.headers()["x-forwarded-prefix"], "/admin");
    assert_eq!(upstream.headers()["x-forwarded-for"], "10.0.0.1, 203.0.113.9");
    assert!(upstream.headers().get("x-user-id").is_none() && upstream.headers().get("x-consumer-id").is_none());
}

/// Items 3 and 4: with a policy the gateway owns CORS, and says what the answer varies on.
#[test]
fn the_route_policy_owns_cors_and_varies_on_origin() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let reflecting = |origin: &str| {
        Fake::new().respond(
            200,
            &[
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
                ("access-control-expose-headers", "x-secret"),
                ("vary", "Accept-Encoding"),
            ],
            "{}",
        )
    };
    let evil = [("origin", "https://evil.example")];
    let response = send(&gateway, &reflecting("https://evil.example"), request("GET", "/cors", &evil));
    assert_eq!(response.status(), 200);
    for name in ["access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers"] {
        assert!(response.headers().get(name).is_none(), "{name} from the upstream widened the policy");
    }
    assert_eq!(response.headers()["vary"], "Accept-Encoding, Origin");

    let response = send(&gateway, &reflecting("*"), request("GET", "/cors", &[]));
    assert_eq!(response.headers()["vary"], "Accept-Encoding, Origin", "also without an Origin");
    assert!(response.headers().get("access-control-allow-origin").is_none());

    let app = [("origin", "https://app.example.com")];
    let response = send(&gateway, &reflecting("https://evil.example"), request("GET", "/cors", &app));
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(response.headers()["access-control-allow-credentials"], "true");

    // Gateway answers on the route vary too.
    let fake = Fake::new().then(Script::Unreachable);
    let response = send(&gateway, &fake, request("GET", "/cors", &[]));
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["vary"], "Origin");

    // Opting out keeps the upstream's.
    let response = send(&gateway, &reflecting("https://evil.example"), request("GET", "/cors-keep", &evil));
    assert_eq!(response.headers()["access-control-allow-origin"], "https://evil.example");

    // `*` is said to everyone, and does not vary.
    let response = send(&gateway, &Fake::new(), request("GET", "/any", &[]));
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response.headers().get("vary").is_none());
}

/// Item 5: query names are compared as the upstream decodes them.
#[test]
fn query_lists_compare_decoded_names() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new();
    send(&gateway, &fake, request("GET", "/deny?tok%65n=x&%74oken=y&q=1&token=z", &[]));
    assert_eq!(fake.last().uri().query(), Some("q=1"));
    let fake = Fake::new();
    send(&gateway, &fake, request("GET", "/allow?p%61ge=2&pag%65s=3&debug=1", &[]));
    assert_eq!(fake.last().uri().query(), Some("p%61ge=2"));
}

/// Item 6: a stored answer serves only requests with the values it varies on.
#[test]
fn the_edge_cache_follows_the_upstreams_vary() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new()
        .respond(200, &[("vary", "X-Tenant")], "tenant one")
        .respond(200, &[("vary", "X-Tenant")], "tenant two")
        .respond(200, &[("vary", "*")], "anything")
        .respond(200, &[("vary", "*")], "anything again");
    let get = |tenant: &str| send(&gateway, &fake, request("GET", "/cached", &[("x-tenant", tenant)]));
    assert_eq!(get("one").body().text(), "tenant one");
    let hit = get("one");
    assert_eq!(hit.body().text(), "tenant one");
    assert_eq!(hit.headers()["cache-status"], "edgegate; hit");
    assert!(hit.headers().get("edgegate-vary-key").is_none(), "the bookkeeping header stays inside");
    let other = get("two");
    assert_eq!(other.body().text(), "tenant two", "another tenant never gets the first one's answer");
    assert_ne!(other.headers()["cache-status"], "edgegate; hit");
    assert_eq!(fake.received.borrow().len(), 2);

    fake.cache.borrow_mut().clear();
    assert_eq!(get("x").body().text(), "anything");
    assert_eq!(get("x").body().text(), "anything again", "Vary: * is never reused");

    // An event stream never ends: it is passed on, never stored.
    fake.cache.borrow_mut().clear();
    let fake = fake.respond(200, &[("content-type", "text/event-stream")], "data: 1\n\n");
    let events = send(&gateway, &fake, request("GET", "/cached", &[("x-tenant", "sse")]));
    assert_eq!(events.headers()["cache-status"], "edgegate; fwd=uri-miss");
    assert!(fake.cache.borrow().is_empty());
}

/// Item 8: a body the gateway must read has a deadline.
#[test]
fn a_stalled_upload_is_answered_408() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new();
    let response = send(&gateway, &fake, request_with("POST", "/validated", &[], FakeBody::Stalled));
    assert_eq!(response.status(), 408);
    assert_eq!(problem_type(&response), "urn:edgegate:problem:request-timeout");
    assert!(fake.received.borrow().is_empty());
}

/// Item 14: an attempt the route timeout cuts short counts against its target's breaker.
#[test]
fn timeouts_open_the_breaker() {
    let state = IsolateState::new();
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new().then(Script::Hang).then(Script::Hang);
    assert_eq!(send_in(&gateway, &state, &fake, request("GET", "/fragile", &[])).status(), 504);
    assert_eq!(send_in(&gateway, &state, &fake, request("GET", "/fragile", &[])).status(), 504);
    let open = send_in(&gateway, &state, &fake, request("GET", "/fragile", &[]));
    assert_eq!(open.status(), 503);
    assert_eq!(problem_type(&open), "urn:edgegate:problem:upstream-circuit-open");
    assert_eq!(fake.received.borrow().len(), 2, "the open breaker sent nothing");
}

/// Where the platform bounds each upstream call itself (Workers keeps the timer in JS), no
/// timer is raced from the core: each call is given the time left, a timeout is the same 504,
/// and it counts against the target's breaker as before.
#[test]
fn where_the_platform_bounds_each_call_a_timeout_is_the_same() {
    let state = IsolateState::new();
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::bounded().then(Script::Hang).then(Script::Hang);
    for _ in 0..2 {
        let response = send_in(&gateway, &state, &fake, request("GET", "/fragile", &[]));
        assert_eq!(response.status(), 504);
        assert_eq!(problem_type(&response), "urn:edgegate:problem:upstream-timeout");
    }
    assert_eq!(*fake.limits_given.borrow(), [std::time::Duration::from_millis(100); 2], "the route's timeout_ms");
    let open = send_in(&gateway, &state, &fake, request("GET", "/fragile", &[]));
    assert_eq!(problem_type(&open), "urn:edgegate:problem:upstream-circuit-open");
    assert_eq!(fake.received.borrow().len(), 2, "the open breaker sent nothing");
}

/// Item 15: every upstream call, aggregation legs included, carries the request id and a
/// span of the client's trace.
#[test]
fn aggregation_legs_carry_request_id_and_trace() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new().respond(200, &[], r#"{"a": 1}"#).respond(200, &[], r#"{"b": 2}"#);
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = send(&gateway, &fake, request("GET", "/home", &[("traceparent", trace), ("x-request-id", "req-1")]));
    assert_eq!(response.status(), 200);
    let legs = fake.received.borrow();
    assert_eq!(legs.len(), 2);
    for leg in legs.iter() {
        assert_eq!(leg.headers()["x-request-id"], "req-1");
        let parent = leg.headers()["traceparent"].to_str().unwrap();
        assert!(parent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{parent}");
        assert!(!parent.contains("00f067aa0ba902b7"), "each leg is a new span: {parent}");
        assert_eq!(leg.headers()["x-forwarded-for"], "203.0.113.9");
        assert_eq!(leg.headers()["accept-encoding"], "identity", "the gateway parses legs: never compressed");
    }
}

/// Item 16: no header value counts with another key part, nor with the keyless requests.
#[test]
fn rate_limit_keys_do_not_collide() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new();
    assert_eq!(send(&gateway, &fake, request("GET", "/limited", &[])).status(), 200, "the keyless share one counter");
    for spelled in ["?missing", "%3Fmissing", "|?missing"] {
        let response = send(&gateway, &fake, request("GET", "/limited", &[("x-tenant", spelled)]));
        assert_eq!(response.status(), 200, "{spelled:?} is its own tenant");
    }
    assert_eq!(send(&gateway, &fake, request("GET", "/limited", &[])).status(), 429);
    let keys: Vec<String> = fake.limits.borrow().keys().cloned().collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
}

/// One client, one address: an IPv4-mapped IPv6 peer is counted and forwarded as its IPv4.
#[test]
fn an_ipv4_mapped_address_is_its_ipv4_address() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let mapped = Client { ip: Some("::ffff:203.0.113.9".parse().unwrap()), https: true };
    let fake = Fake::new();
    block_on(handle(&gateway, &IsolateState::new(), &fake, request("GET", "/pub/x", &[]), &mapped));
    assert_eq!(fake.last().headers()["x-forwarded-for"], "203.0.113.9");
    // One counter for the client, whichever form its address came in.
    let fake = Fake::new();
    block_on(handle(&gateway, &IsolateState::new(), &fake, request("GET", "/by-ip", &[]), &mapped));
    block_on(handle(&gateway, &IsolateState::new(), &fake, request("GET", "/by-ip", &[]), &CLIENT));
    let keys: Vec<String> = fake.limits.borrow().keys().cloned().collect();
    assert_eq!(keys, ["rl:per-ip|203.0.113.9"]);
}

/// Issue 15: hostile paths against a public prefix never reach a protected one upstream; each
/// refusal names its reason; the upstream gets the normalized path.
#[test]
fn hostile_paths_never_reach_the_protected_prefix() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let hostile = [
        ("/pub/..;/admin/x", "';' parameters"),
        ("/pub/.;/admin/x", "';' parameters"),
        ("/pub/../admin/x", "'..' segments"),
        ("/pub/%2e%2e/admin/x", "'..' segments"),
        ("/pub/..%2fadmin/x", "'..' segments"),
        ("/pub/%2e%2e%2fadmin/x", "'..' segments"),
        ("/pub/..%5cadmin/x", "backslash"),
        ("/pub/..%5Cadmin/x", "backslash"),
        ("/pub/%252e%252e/admin/x", "double-encoded"),
        ("/pub/%252e%252e%252fadmin/x", "double-encoded"),
        ("/pub/%ef%bc%8e%ef%bc%8e/admin/x", "look like a dot"),
        ("/pub/%00/x", "control characters"),
        ("/pub/x%2fy", "encoded '/'"),
    ];
    for (path, reason) in hostile {
        let fake = Fake::new();
        let response = send(&gateway, &fake, request("GET", path, &[]));
        assert_eq!(response.status(), 400, "{path}");
        let detail: Value = serde_json::from_str(&response.body().text()).unwrap();
        assert!(detail["detail"].as_str().unwrap().contains(reason), "{path}: {detail}");
        assert!(fake.received.borrow().is_empty(), "{path} reached the upstream");
    }
    let fake = Fake::new();
    send(&gateway, &fake, request("GET", "/pub//a/%41%7e/b%c3%a9?q=%2e", &[]));
    assert_eq!(
        fake.last().uri().to_string(),
        "http://a.internal/pub/a/A~/b%C3%A9?q=%2e",
        "normalized path, query untouched"
    );
    // A route that says so takes encoded slashes, and forwards them encoded; dots stay refused.
    let fake = Fake::new();
    assert_eq!(send(&gateway, &fake, request("GET", "/ids/a%2fb", &[])).status(), 200);
    assert_eq!(fake.last().uri().path(), "/ids/a%2Fb");
    assert_eq!(send(&gateway, &Fake::new(), request("GET", "/ids/..%2fx", &[])).status(), 400);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Issue 16: a body a policy reads is read decoded on every runtime, or refused.
#[test]
fn compressed_bodies_are_read_decoded_or_refused() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let secret = br#"{"data":{"keep":1,"secret":"s3cr3t"}}"#;
    let answer = |encoding: &str, body: Vec<u8>| {
        let mut response = Response::new(FakeBody::Bytes(body.into()));
        response.headers_mut().insert("content-encoding", encoding.parse().unwrap());
        Fake::new().then(Script::Respond(response))
    };
    let fake = answer("gzip", gzip(secret));
    let response = send(&gateway, &fake, request("GET", "/filtered", &[]));
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().text(), r#"{"data":{"keep":1}}"#);
    assert!(response.headers().get("content-encoding").is_none());
    assert_eq!(fake.last().headers()["accept-encoding"], "identity", "the gateway asks for what it can read");

    let response = send(&gateway, &answer("br", b"\x1b\x00\x00".to_vec()), request("GET", "/filtered", &[]));
    assert_eq!(response.status(), 502, "an encoding the gateway cannot read is never passed unfiltered");
    assert_eq!(problem_type(&response), "urn:edgegate:problem:bad-upstream-body");

    // A compressed request body is validated decoded and forwarded as sent.
    let compressed = gzip(br#"{"ok": true}"#);
    let length = compressed.len().to_string();
    let fake = Fake::new();
    let headers = [("content-encoding", "gzip"), ("content-length", length.as_str())];
    let response =
        send(&gateway, &fake, request_with("POST", "/validated", &headers, FakeBody::Bytes(compressed.clone().into())));
    assert_eq!(response.status(), 200);
    let sent = fake.last();
    assert_eq!(sent.headers()["content-encoding"], "gzip");
    assert_eq!(sent.body(), &FakeBody::Bytes(compressed.into()));
    let not_object = gzip(b"[1]");
    let response = send(
        &gateway,
        &Fake::new(),
        request_with("POST", "/validated", &[("content-encoding", "gzip")], FakeBody::Bytes(not_object.into())),
    );
    assert_eq!(response.status(), 400, "the decoded body is what is validated");
    let response = send(
        &gateway,
        &Fake::new(),
        request_with("POST", "/validated", &[("content-encoding", "br")], FakeBody::Bytes(b"x".to_vec().into())),
    );
    assert_eq!(response.status(), 415);
    assert_eq!(problem_type(&response), "urn:edgegate:problem:unsupported-content-encoding");
}

/// The access-log lines of one success and one 404 under these `defaults`.
fn access_lines(defaults: serde_json::Value) -> Vec<String> {
    let routes = json!({"version": 1, "defaults": defaults,
        "upstreams": {"a": {"url": "http://a.internal"}},
        "routes": [{"id": "p", "match": {"path": "/p"}, "upstream": "a"}]});
    let gateway = Gateway::from_json(&routes.to_string()).unwrap();
    let fake = Fake::new();
    send(&gateway, &fake, request("GET", "/p", &[]));
    send(&gateway, &fake, request("GET", "/nowhere", &[]));
    let lines = fake.logs.borrow().iter().filter(|l| l.contains("\"request_id\"")).cloned().collect();
    lines
}

/// `defaults.access_log`: every request, only errors, or none; the line costs CPU per request.
#[test]
fn access_log_modes() {
    for (mode, expected) in [("all", 2), ("errors", 1), ("off", 0)] {
        assert_eq!(access_lines(json!({"access_log": mode})).len(), expected, "{mode}");
    }
    let bad = r#"{"version": 1, "defaults": {"access_log": "some"}, "upstreams": {}, "routes": []}"#;
    assert!(Gateway::from_json(bad).unwrap_err().iter().any(|e| e.to_string().contains("defaults.access_log")));
}

/// `defaults.access_log_sample`: a random share of the successes gets a line, every error its
/// own. The fake's entropy draws 0x0807060504030201 every time, about 0.031 of 2^64.
#[test]
fn access_log_sample_keeps_every_error_and_a_share_of_the_rest() {
    for (share, expected) in [(0.5, 2), (0.01, 1), (1.0, 2)] {
        let lines = access_lines(json!({"access_log_sample": share}));
        assert_eq!(lines.len(), expected, "{share}: {lines:?}");
        assert!(lines.iter().any(|l| l.contains("\"status\":404")), "the error is always logged");
    }
    for (defaults, reason) in [
        (json!({"access_log_sample": 0}), "a share must be above 0 and at most 1"),
        (json!({"access_log_sample": 1.5}), "a share must be above 0 and at most 1"),
        (json!({"access_log": "errors", "access_log_sample": 0.1}), "samples only what access_log \"all\" logs"),
    ] {
        let routes = json!({"version": 1, "defaults": defaults, "upstreams": {}, "routes": []});
        let errors = Gateway::from_json(&routes.to_string()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("defaults.access_log_sample") && e.to_string().contains(reason)),
            "{defaults}: {errors:?}"
        );
    }
}

/// A header a route sets from a value the request lacks is removed, never left as the client sent it.
#[test]
fn a_set_header_without_its_value_is_not_the_clients() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new();
    send(&gateway, &fake, request("GET", "/tenant", &[("x-tenant", "victim")]));
    assert!(fake.last().headers().get("x-tenant").is_none());
}

/// A client that stalls its streamed upload is not the upstream's failure.
#[test]
fn a_stalled_streamed_upload_does_not_open_the_breaker() {
    let gateway = Gateway::from_json(&routes(false)).unwrap();
    let fake = Fake::new().then(Script::Hang).then(Script::Hang).then(Script::Hang);
    for _ in 0..3 {
        let response =
            send(&gateway, &fake, request_with("POST", "/upload", &[("content-length", "1000")], FakeBody::Stalled));
        assert_eq!(response.status(), 504);
    }
    assert_eq!(fake.received.borrow().len(), 3, "the breaker stayed closed");
}

/// `idle_timeout_ms`: a streamed upload that stalls is given up (408, and not the upstream's
/// failure: the breaker stays closed), and a streamed answer leaves carrying the bound for the
/// runtime to enforce; a route without it streams unbounded, as before.
#[test]
fn idle_timeouts_end_stalled_streams_both_ways() {
    let gateway = Gateway::from_json(
        &json!({
          "version": 1,
          "upstreams": {"a": {"url": "http://a.internal", "breaker": {"failure_percent": 50, "min_requests": 2, "window_s": 30, "cooldown_s": 30}}},
          "routes": [
            {"id": "idle", "match": {"path": "/idle"}, "upstream": "a", "idle_timeout_ms": 400},
            {"id": "open", "match": {"path": "/open"}, "upstream": "a"}
          ]
        })
        .to_string(),
    )
    .unwrap();
    let fake = Fake::new();
    for _ in 0..3 {
        let response =
            send(&gateway, &fake, request_with("POST", "/idle", &[("content-length", "1000")], FakeBody::Stalled));
        assert_eq!(response.status(), 408);
        assert_eq!(problem_type(&response), "urn:edgegate:problem:request-timeout");
        assert!(response.body().text().contains("nothing arrived for 400 ms"), "{}", response.body().text());
    }
    let streamed = || Response::new(FakeBody::Chunks(vec!["a".into(), "b".into()]));
    let fake = Fake::new().then(Script::Respond(streamed())).then(Script::Respond(streamed()));
    let response = send(&gateway, &fake, request("GET", "/idle", &[]));
    assert_eq!(response.status(), 200, "the breaker stayed closed");
    assert_eq!(
        *response.body(),
        FakeBody::Idle(Box::new(FakeBody::Chunks(vec!["a".into(), "b".into()])), std::time::Duration::from_millis(400))
    );
    let response = send(&gateway, &fake, request("GET", "/open", &[]));
    assert_eq!(*response.body(), FakeBody::Chunks(vec!["a".into(), "b".into()]));
}

/// WebSocket upgrades: passed to the upstream with their handshake headers (browsers do not
/// preflight them, so a route's CORS origins are checked on the upgrade itself), never served
/// from the edge cache, and a `101` answer leaves with the route's socket limits attached.
#[test]
fn websocket_upgrades_are_checked_and_carry_their_limits() {
    let gateway = Gateway::from_json(
        &json!({
          "version": 1,
          "upstreams": {"a": {"url": "http://a.internal"}},
          "routes": [
            {"id": "chat", "match": {"path": "/chat"}, "upstream": "a", "idle_timeout_ms": 30000,
             "websocket": {"max_lifetime_ms": 3600000}, "cache": {"ttl_s": 60},
             "cors": {"allow_origins": ["https://app.example.com"]}}
          ]
        })
        .to_string(),
    )
    .unwrap();
    let upgrade = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];
    let foreign = [upgrade.as_slice(), &[("origin", "https://evil.example")]].concat();
    let fake = Fake::new();
    let refused = send(&gateway, &fake, request("GET", "/chat", &foreign));
    assert_eq!(refused.status(), 403);
    assert_eq!(problem_type(&refused), "urn:edgegate:problem:cors-rejected");
    assert!(fake.received.borrow().is_empty(), "the upstream never saw it");

    let mut switching = Response::new(FakeBody::Empty);
    *switching.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    switching.headers_mut().insert("upgrade", "websocket".parse().unwrap());
    switching.headers_mut().insert("connection", "Upgrade".parse().unwrap());
    let fake = Fake::new().then(Script::Respond(switching));
    let own = [upgrade.as_slice(), &[("origin", "https://app.example.com")]].concat();
    let response = send(&gateway, &fake, request("GET", "/chat", &own));
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["upgrade"], "websocket", "the answer keeps its handshake");
    assert!(
        response.headers().get("cache-status").is_none()
            || response.headers()["cache-status"] == "edgegate; fwd=bypass"
    );
    assert_eq!(
        response.extensions().get::<gateway_core::ports::SocketLimits>(),
        Some(&gateway_core::ports::SocketLimits {
            idle: Some(std::time::Duration::from_secs(30)),
            max_lifetime: Some(std::time::Duration::from_secs(3600)),
        })
    );
    let sent = fake.last();
    assert_eq!(sent.headers()["upgrade"], "websocket");
    assert_eq!(sent.headers()["connection"], "upgrade");
    assert_eq!(sent.headers()["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
}
