//! Rate limiting through the public surface over fakes: the decision runs in an in-memory
//! limiter with the core's own `decide`, and the clock is the fake's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use gateway_core::ports::Client;
use gateway_core::{handle, Gateway, IsolateState};
use http::{Request, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod support;
use support::block_on;
use support::fake::{Fake, FakeBody};

const CLIENT: Client = Client { ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9))), https: true };
const SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!!";

fn gateway() -> Gateway {
    let acme: String = Sha256::digest(b"acme-key").iter().map(|b| format!("{b:02x}")).collect();
    Gateway::from_json(
        &json!({
          "version": 1,
          "auth": {
            "jwt": {"corp": {"issuers": [{"issuer": "https://id.example", "secrets": [{"secret": "jwt_secret", "alg": "HS256"}]}]}},
            "api_keys": {"partners": {"consumers": [{"id": "acme", "key_sha256": acme}]}}
          },
          "rate_limits": {
            "per-ip": {"key": ["ip"], "limits": [{"requests": 2, "per_s": 1}]},
            "two-rules": {"key": ["ip", "route"], "limits": [{"requests": 10, "per_s": 1, "burst": 3}, {"requests": 4, "per_s": 60}]},
            "daily": {"key": ["header:x-client"], "quotas": [{"requests": 2, "per": "day"}], "on_missing_key": "skip"},
            "strict-tenant": {"key": ["header:x-tenant"], "limits": [{"requests": 1, "per_s": 60}], "on_missing_key": "reject"},
            "shared-tenant": {"key": ["header:x-tenant"], "limits": [{"requests": 1, "per_s": 60}]},
            "per-user": {"key": ["claim:sub"], "limits": [{"requests": 1, "per_s": 60}]},
            "per-consumer": {"key": ["consumer"], "limits": [{"requests": 1, "per_s": 60}]},
            "open": {"limits": [{"requests": 1, "per_s": 60}], "on_error": "open"},
            "closed": {"limits": [{"requests": 1, "per_s": 60}]},
            "quiet": {"key": ["ip"], "limits": [{"requests": 5, "per_s": 1}], "headers": false}
          },
          "defaults": {"rate_limit": ["per-ip"]},
          "upstreams": {"a": {"url": "http://a.internal"}},
          "routes": [
            {"id": "default", "match": {"path": "/default"}, "upstream": "a"},
            {"id": "two", "match": {"path": "/two"}, "upstream": "a", "rate_limit": ["two-rules"]},
            {"id": "daily", "match": {"path": "/daily"}, "upstream": "a", "rate_limit": ["daily"]},
            {"id": "strict", "match": {"path": "/strict"}, "upstream": "a", "rate_limit": ["strict-tenant"]},
            {"id": "shared", "match": {"path": "/shared"}, "upstream": "a", "rate_limit": ["shared-tenant"]},
            {"id": "user", "match": {"path": "/user"}, "upstream": "a", "auth": {"any_of": ["corp"]}, "rate_limit": ["per-user"]},
            {"id": "consumer", "match": {"path": "/consumer"}, "upstream": "a", "auth": {"any_of": ["partners"]}, "rate_limit": ["per-consumer"]},
            {"id": "open", "match": {"path": "/open"}, "upstream": "a", "rate_limit": ["open"]},
            {"id": "closed", "match": {"path": "/closed"}, "upstream": "a", "rate_limit": ["closed"]},
            {"id": "quiet", "match": {"path": "/quiet"}, "upstream": "a", "rate_limit": ["quiet"]},
            {"id": "free", "match": {"path": "/free"}, "upstream": "a", "rate_limit": false}
          ]
        })
        .to_string(),
    )
    .unwrap()
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request<FakeBody> {
    let mut builder = Request::builder().method("GET").uri(format!("https://gw.example{path}"));
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder.body(FakeBody::Empty).unwrap()
}

fn send(gateway: &Gateway, fake: &Fake, path: &str, headers: &[(&str, &str)]) -> Response<FakeBody> {
    block_on(handle(gateway, &IsolateState::new(), fake, get(path, headers), &CLIENT))
}

fn header<'a>(response: &'a Response<FakeBody>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

fn problem_type(response: &Response<FakeBody>) -> String {
    let body: Value = serde_json::from_str(&response.body().text()).unwrap();
    body["type"].as_str().unwrap().to_owned()
}

#[test]
fn burst_then_429_with_headers_then_refill() {
    let gateway = gateway();
    let fake = Fake::new();
    let first = send(&gateway, &fake, "/default", &[]);
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "ratelimit-policy"), Some(r#""per-ip";q=2;w=1"#));
    assert_eq!(header(&first, "ratelimit"), Some(r#""per-ip";r=1;t=1"#));
    assert_eq!(header(&send(&gateway, &fake, "/default", &[]), "ratelimit"), Some(r#""per-ip";r=0;t=1"#));
    let denied = send(&gateway, &fake, "/default", &[]);
    assert_eq!(denied.status(), 429);
    assert_eq!(problem_type(&denied), "urn:edgegate:problem:rate-limited");
    assert_eq!(header(&denied, "retry-after"), Some("1"));
    assert_eq!(header(&denied, "ratelimit"), Some(r#""per-ip";r=0;t=1"#));
    assert_eq!(fake.received.borrow().len(), 2, "a limited request never reaches the upstream");
    fake.now.set(fake.now.get() + 500);
    assert_eq!(send(&gateway, &fake, "/default", &[]).status(), 200, "one token back after half the period");
    assert_eq!(send(&gateway, &fake, "/free", &[]).status(), 200);
    assert!(send(&gateway, &fake, "/free", &[]).headers().get("ratelimit").is_none());
}

/// A refused client keeps being refused by what the isolate remembers, without asking the
/// limiter again, with the same answer counted down, until its Retry-After has passed.
#[test]
fn a_refusal_is_remembered_by_the_isolate_until_its_retry_after() {
    let gateway = gateway();
    let fake = Fake::new();
    let isolate = IsolateState::new();
    let send = |path: &str| block_on(handle(&gateway, &isolate, &fake, get(path, &[]), &CLIENT));
    let statuses: Vec<u16> = (0..3).map(|_| send("/default").status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(fake.limiter_calls.get(), 3);
    fake.now.set(fake.now.get() + 100);
    for _ in 0..5 {
        let denied = send("/default");
        assert_eq!(denied.status(), 429);
        assert_eq!(problem_type(&denied), "urn:edgegate:problem:rate-limited");
        assert_eq!(header(&denied, "retry-after"), Some("1"));
        assert_eq!(header(&denied, "ratelimit-policy"), Some(r#""per-ip";q=2;w=1"#));
        assert_eq!(header(&denied, "ratelimit"), Some(r#""per-ip";r=0;t=1"#));
    }
    assert_eq!(fake.limiter_calls.get(), 3, "remembered: the limiter was not asked again");
    assert_eq!(fake.received.borrow().len(), 2);
    let fresh = block_on(handle(&gateway, &IsolateState::new(), &fake, get("/default", &[]), &CLIENT));
    assert_eq!(fresh.status(), 429);
    assert_eq!(fake.limiter_calls.get(), 4, "another isolate asks");
    fake.now.set(fake.now.get() + 400);
    assert_eq!(send("/default").status(), 200, "the window is over: asked and admitted");
    assert_eq!(fake.limiter_calls.get(), 5);
}

#[test]
fn several_rules_are_decided_together() {
    let gateway = gateway();
    let fake = Fake::new();
    let statuses: Vec<u16> = (0..4).map(|_| send(&gateway, &fake, "/two", &[]).status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "burst 3 of the per-second rule");
    let first = fake.logs.borrow().len();
    assert!(first > 0);
    fake.now.set(fake.now.get() + 1000);
    let ok = send(&gateway, &fake, "/two", &[]);
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "ratelimit-policy"), Some(r#""two-rules/0";q=10;w=1, "two-rules/1";q=4;w=60"#));
    assert!(header(&ok, "ratelimit").unwrap().contains(r#""two-rules/1";r=0;"#), "{:?}", header(&ok, "ratelimit"));
    fake.now.set(fake.now.get() + 1000);
    let denied = send(&gateway, &fake, "/two", &[]);
    assert_eq!(denied.status(), 429, "the per-minute rule is spent; the 429 of the burst consumed nothing");
    assert!(header(&denied, "retry-after").unwrap().parse::<u64>().unwrap() > 1);
}

#[test]
fn a_daily_quota_resets_at_utc_midnight() {
    let gateway = gateway();
    let fake = Fake::new();
    // 2026-11-22T23:59:59.000Z
    fake.now.set(1_795_391_999_000);
    let client = [("x-client", "c1")];
    assert_eq!(send(&gateway, &fake, "/daily", &client).status(), 200);
    assert_eq!(send(&gateway, &fake, "/daily", &client).status(), 200);
    let denied = send(&gateway, &fake, "/daily", &client);
    assert_eq!(denied.status(), 429);
    assert_eq!(header(&denied, "retry-after"), Some("1"));
    fake.now.set(1_795_392_000_000);
    assert_eq!(send(&gateway, &fake, "/daily", &client).status(), 200, "a new UTC day");
    // on_missing_key skip: a request without the header is not limited at all.
    for _ in 0..5 {
        assert_eq!(send(&gateway, &fake, "/daily", &[]).status(), 200);
    }
}

#[test]
fn missing_key_parts_are_rejected_or_shared_as_configured() {
    let gateway = gateway();
    let fake = Fake::new();
    let rejected = send(&gateway, &fake, "/strict", &[]);
    assert_eq!(rejected.status(), 403);
    assert_eq!(problem_type(&rejected), "urn:edgegate:problem:rate-limit-key-missing");
    assert_eq!(send(&gateway, &fake, "/strict", &[("x-tenant", "t1")]).status(), 200);
    // shared: all requests without the header count under one key.
    assert_eq!(send(&gateway, &fake, "/shared", &[]).status(), 200);
    assert_eq!(send(&gateway, &fake, "/shared", &[]).status(), 429);
    assert_eq!(send(&gateway, &fake, "/shared", &[("x-tenant", "t1")]).status(), 200);
}

#[test]
fn keys_from_claims_and_consumers() {
    let gateway = gateway();
    let fake = Fake::new();
    fake.secrets.borrow_mut().insert("jwt_secret".into(), SECRET.into());
    let token = |sub: &str| {
        let claims = json!({"iss": "https://id.example", "sub": sub, "exp": 4_000_000_000u64});
        format!("Bearer {}", support::tokens::hs256(SECRET.as_bytes(), &json!({"alg": "HS256"}), &claims))
    };
    let (alice, bob) = (token("alice"), token("bob"));
    assert_eq!(send(&gateway, &fake, "/user", &[("authorization", &alice)]).status(), 200);
    assert_eq!(send(&gateway, &fake, "/user", &[("authorization", &alice)]).status(), 429);
    assert_eq!(send(&gateway, &fake, "/user", &[("authorization", &bob)]).status(), 200);
    assert_eq!(send(&gateway, &fake, "/consumer", &[("x-api-key", "acme-key")]).status(), 200);
    assert_eq!(send(&gateway, &fake, "/consumer", &[("x-api-key", "acme-key")]).status(), 429);
    let keys: Vec<String> = fake.limits.borrow().keys().cloned().collect();
    assert!(keys.contains(&"rl:per-user|alice".to_owned()), "{keys:?}");
    assert!(keys.contains(&"rl:per-consumer|acme".to_owned()), "{keys:?}");
}

#[test]
fn an_unreachable_limiter_fails_as_configured_and_is_logged() {
    let gateway = gateway();
    let fake = Fake::new();
    fake.limiter_down.set(true);
    assert_eq!(send(&gateway, &fake, "/open", &[]).status(), 200);
    let closed = send(&gateway, &fake, "/closed", &[]);
    assert_eq!(closed.status(), 503);
    assert_eq!(problem_type(&closed), "urn:edgegate:problem:rate-limit-unavailable");
    let warnings = fake.logs.borrow().iter().filter(|l| l.contains("rate limiter unavailable")).count();
    assert_eq!(warnings, 2);
}

#[test]
fn headers_can_be_turned_off() {
    let gateway = gateway();
    let fake = Fake::new();
    let response = send(&gateway, &fake, "/quiet", &[]);
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("ratelimit").is_none() && response.headers().get("ratelimit-policy").is_none());
}
