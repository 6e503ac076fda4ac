//! Authentication through the public surface (`Gateway::from_json` + `handle`) over fakes:
//! JWTs from a runtime secret and from a JWKS, API keys, claims forwarding, and every
//! refusal as the client sees it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use gateway_core::ports::Client;
use gateway_core::{handle, Gateway, IsolateState};
use http::{Request, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod support;
use support::block_on;
use support::fake::{Fake, FakeBody, FreshInstances, Script};
use support::tokens::{es256, hs256, p256_jwk, p256_key};

const CLIENT: Client = Client { ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9))), https: true };
const SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!!";
/// The fakes' clock, in seconds.
const NOW: i64 = 1_795_314_861;

fn routes() -> String {
    let acme = hex(&Sha256::digest(b"acme-key"));
    json!({
      "version": 1,
      "auth": {
        "jwt": {
          "corp": {
            "issuers": [
              {"issuer": "https://id.example", "audiences": ["api"], "secrets": [{"secret": "jwt_secret", "alg": "HS256"}]},
              {"issuer": "https://tenant2.example", "jwks_url": "https://tenant2.example/jwks.json", "required_claims": ["sub"]}
            ],
            "forward_claims": {"x-user-id": "sub", "x-roles": "realm_access.roles"},
            "roles_claim": "realm_access.roles",
            "jwks_cache": {"refetch_cooldown_s": 30, "min_ttl_s": 60, "max_stale_s": 600}
          },
          "cookie": {"issuers": [{"issuer": "https://id.example", "secrets": [{"secret": "jwt_secret", "alg": "HS256"}]}],
                     "token": {"cookie": "session"}}
        },
        "api_keys": {
          "partners": {"consumers": [{"id": "acme", "name": "Acme", "tags": ["gold", "eu"], "key_sha256": acme}],
                       "query": "api_key", "store": true,
                       "forward": {"x-consumer-id": "id", "x-consumer-tags": "tags"}}
        }
      },
      "upstreams": {"a": {"url": "http://a.internal"}},
      "routes": [
        {"id": "private", "match": {"path": "/private"}, "upstream": "a", "auth": {"any_of": ["corp"]}},
        {"id": "admin", "match": {"path": "/admin"}, "upstream": "a", "auth": {"any_of": ["corp"], "scopes": {"all_of": ["admin"]}}},
        {"id": "ops", "match": {"path": "/ops"}, "upstream": "a", "auth": {"any_of": ["corp"], "roles": {"any_of": ["ops"]}}},
        {"id": "either", "match": {"path": "/either"}, "upstream": "a", "auth": {"any_of": ["corp", "partners"]}},
        {"id": "maybe", "match": {"path": "/maybe"}, "upstream": "a", "auth": {"any_of": ["corp"], "optional": true}},
        {"id": "cookie", "match": {"path": "/cookie"}, "upstream": "a", "auth": {"any_of": ["cookie"]}},
        {"id": "public", "match": {"path": "/public"}, "upstream": "a"}
      ]
    })
    .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gateway() -> Gateway {
    Gateway::from_json(&routes()).unwrap()
}

fn platform() -> Fake {
    let fake = Fake::new();
    fake.secrets.borrow_mut().insert("jwt_secret".into(), SECRET.into());
    fake
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({"iss": "https://id.example", "aud": "api", "sub": "user-1", "iat": NOW - 10, "exp": NOW + 300,
                            "scope": "read admin", "realm_access": {"roles": ["ops", "dev"]}});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn token(extra: Value) -> String {
    hs256(SECRET.as_bytes(), &json!({"alg": "HS256", "typ": "JWT"}), &claims(extra))
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<FakeBody> {
    let mut builder = Request::builder().method("GET").uri(format!("https://gw.example{uri}"));
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder.body(FakeBody::Empty).unwrap()
}

fn send(gateway: &Gateway, fake: &Fake, request: Request<FakeBody>) -> Response<FakeBody> {
    send_in(gateway, &IsolateState::new(), fake, request)
}

/// As one isolate serves several requests: what it learns (keys, breakers) carries over.
fn send_in(gateway: &Gateway, state: &IsolateState, fake: &Fake, request: Request<FakeBody>) -> Response<FakeBody> {
    block_on(handle(gateway, state, fake, request, &CLIENT))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn problem_type(response: &Response<FakeBody>) -> String {
    let body: Value = serde_json::from_str(&response.body().text()).unwrap();
    body["type"].as_str().unwrap().to_owned()
}

#[test]
fn a_valid_token_forwards_claims_and_never_the_token() {
    let gateway = gateway();
    let fake = platform();
    let token = token(json!({}));
    let auth = bearer(&token);
    let response = send(
        &gateway,
        &fake,
        get("/private", &[("authorization", &auth), ("x-user-id", "spoofed"), ("x-roles", "admin")]),
    );
    assert_eq!(response.status(), 200);
    let upstream = fake.last();
    assert_eq!(upstream.headers()["x-user-id"], "user-1");
    assert_eq!(upstream.headers()["x-roles"], "ops,dev");
    assert_eq!(upstream.headers().get_all("x-user-id").iter().count(), 1);
    assert!(upstream.headers().get("authorization").is_none(), "the credential is stripped");
    let logs = fake.logs.borrow();
    assert!(logs.iter().all(|line| !line.contains(&token)), "the token is never logged");
    assert!(logs.last().unwrap().contains("\"principal\":\"user-1\""));
}

#[test]
fn refusals_table() {
    let gateway = gateway();
    let none = format!(
        "{}.{}.",
        support::tokens::b64(br#"{"alg":"none"}"#),
        support::tokens::b64(claims(json!({})).to_string().as_bytes())
    );
    let none_upper = format!(
        "{}.{}.",
        support::tokens::b64(br#"{"alg":"NONE"}"#),
        support::tokens::b64(claims(json!({})).to_string().as_bytes())
    );
    let good = token(json!({}));
    let mut parts: Vec<&str> = good.split('.').collect();
    let tampered_payload = support::tokens::b64(claims(json!({"sub": "admin"})).to_string().as_bytes());
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");
    let wrong_secret = hs256(b"another-secret-that-is-long-enough-32b", &json!({"alg": "HS256"}), &claims(json!({})));
    let crit = hs256(SECRET.as_bytes(), &json!({"alg": "HS256", "crit": ["exp"], "exp": 1}), &claims(json!({})));
    let huge = "a".repeat(9000);
    // (path, Authorization, status, WWW-Authenticate contains)
    let table: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("/private", None, 401, "Bearer realm=\"edgegate\""),
        ("/private", Some("Basic dXNlcjpwYXNz".into()), 401, "Bearer realm=\"edgegate\""),
        ("/private", Some(bearer("not.a.jwt")), 401, "error=\"invalid_token\""),
        ("/private", Some(bearer("abc")), 401, "error=\"invalid_token\""),
        ("/private", Some(bearer(&none)), 401, "algorithm is not accepted"),
        ("/private", Some(bearer(&none_upper)), 401, "algorithm is not accepted"),
        ("/private", Some(bearer(&tampered)), 401, "signature is invalid"),
        ("/private", Some(bearer(&wrong_secret)), 401, "signature is invalid"),
        ("/private", Some(bearer(&crit)), 401, "critical"),
        ("/private", Some(bearer(&huge)), 401, "too large"),
        ("/private", Some(bearer(&token(json!({"exp": NOW - 120})))), 401, "expired"),
        ("/private", Some(bearer(&token(json!({"exp": null})))), 401, "no expiry"),
        ("/private", Some(bearer(&token(json!({"nbf": NOW + 600})))), 401, "not valid yet"),
        ("/private", Some(bearer(&token(json!({"iat": NOW + 600})))), 401, "issued in the future"),
        ("/private", Some(bearer(&token(json!({"iss": "https://evil.example"})))), 401, "issuer"),
        ("/private", Some(bearer(&token(json!({"aud": "other"})))), 401, "audience"),
        (
            "/admin",
            Some(bearer(&token(json!({"scope": "read"})))),
            403,
            "error=\"insufficient_scope\", scope=\"admin\"",
        ),
        ("/admin", Some(bearer(&token(json!({"scope": null, "scp": ["admin"]})))), 200, ""),
        ("/ops", Some(bearer(&token(json!({"realm_access": {"roles": ["dev"]}})))), 403, "insufficient_scope"),
        ("/ops", Some(bearer(&token(json!({})))), 200, ""),
        ("/public", None, 200, ""),
    ];
    for (path, authorization, status, challenge) in table {
        let fake = platform();
        let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", a.as_str())).collect();
        let response = send(&gateway, &fake, get(path, &headers));
        assert_eq!(response.status(), status, "{path} {authorization:?}");
        if status != 200 {
            let www =
                response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>();
            assert!(www.iter().any(|w| w.contains(challenge)), "{path} {authorization:?}: {www:?}");
            assert_eq!(response.headers()["content-type"], "application/problem+json");
            let expected = if status == 401 {
                "urn:edgegate:problem:unauthorized"
            } else {
                "urn:edgegate:problem:insufficient-scope"
            };
            assert_eq!(problem_type(&response), expected);
            assert!(fake.received.borrow().is_empty(), "a refused request never reaches the upstream");
        }
    }
}

#[test]
fn optional_auth_lets_anonymous_through_but_drops_spoofed_identity() {
    let gateway = gateway();
    let fake = platform();
    let response = send(&gateway, &fake, get("/maybe", &[("x-user-id", "admin")]));
    assert_eq!(response.status(), 200);
    assert!(fake.last().headers().get("x-user-id").is_none());
    let fake = platform();
    let auth = bearer(&token(json!({"exp": NOW - 3600})));
    assert_eq!(
        send(&gateway, &fake, get("/maybe", &[("authorization", &auth)])).status(),
        401,
        "present means checked"
    );
}

#[test]
fn cookie_tokens_and_their_removal() {
    let gateway = gateway();
    let fake = platform();
    let cookie = format!("theme=dark; session={}", token(json!({})));
    assert_eq!(send(&gateway, &fake, get("/cookie", &[("cookie", &cookie)])).status(), 200);
    assert_eq!(fake.last().headers()["cookie"], "theme=dark");
}

#[test]
fn api_keys_from_header_query_and_store() {
    let gateway = gateway();
    let fake = platform();
    assert_eq!(
        send(&gateway, &fake, get("/either", &[("x-api-key", "acme-key"), ("x-consumer-id", "root")])).status(),
        200
    );
    let upstream = fake.last();
    assert_eq!(upstream.headers()["x-consumer-id"], "acme");
    assert_eq!(upstream.headers()["x-consumer-tags"], "gold,eu");
    assert!(upstream.headers().get("x-api-key").is_none());

    let fake = platform();
    assert_eq!(send(&gateway, &fake, get("/either?api_key=acme-key&page=2", &[])).status(), 200);
    assert_eq!(fake.last().uri().to_string(), "http://a.internal/either?page=2", "the key leaves the query string");

    let fake = platform();
    let stored = hex(&Sha256::digest(b"stored-key"));
    fake.store.borrow_mut().insert(format!("apikey:{stored}"), Bytes::from(r#"{"id":"globex","tags":["trial"]}"#));
    assert_eq!(send(&gateway, &fake, get("/either", &[("x-api-key", "stored-key")])).status(), 200);
    assert_eq!(fake.last().headers()["x-consumer-id"], "globex");
    assert!(fake.logs.borrow().last().unwrap().contains("\"principal\":\"globex\""));

    let fake = platform();
    let response = send(&gateway, &fake, get("/either", &[("x-api-key", "wrong")]));
    assert_eq!(response.status(), 401);
    let www: Vec<_> =
        response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(www.len(), 2, "one challenge per scheme: {www:?}");
    assert!(www[1].starts_with("ApiKey realm=\"edgegate\", error=\"invalid_token\""), "{www:?}");
}

#[test]
fn a_missing_secret_fails_closed_with_503() {
    let gateway = gateway();
    let fake = Fake::new();
    let auth = bearer(&token(json!({})));
    let response = send(&gateway, &fake, get("/private", &[("authorization", &auth)]));
    assert_eq!(response.status(), 503);
    assert_eq!(problem_type(&response), "urn:edgegate:problem:auth-unavailable");
}

fn jwks(keys: &[Value]) -> String {
    json!({"keys": keys}).to_string()
}

fn tenant_token(key: &p256::ecdsa::SigningKey, kid: &str) -> String {
    es256(
        key,
        &json!({"alg": "ES256", "kid": kid}),
        &claims(json!({"iss": "https://tenant2.example", "aud": null, "exp": NOW + 100_000})),
    )
}

#[test]
fn jwks_rotation_refetches_once_per_cooldown_and_serves_stale_keys() {
    let gateway = gateway();
    let old = p256_key(1);
    let new = p256_key(2);
    let fake = platform().respond(200, &[("cache-control", "max-age=120")], &jwks(&[p256_jwk(&old, "k1")]));
    let jwks_requests = |fake: &Fake| fake.received.borrow().iter().filter(|r| r.uri().path() == "/jwks.json").count();

    // First use fetches the JWKS, then the request goes upstream.
    let auth = bearer(&tenant_token(&old, "k1"));
    assert_eq!(send(&gateway, &fake, get("/private", &[("authorization", &auth)])).status(), 200);
    assert_eq!(jwks_requests(&fake), 1);
    assert_eq!(fake.received.borrow()[0].uri().to_string(), "https://tenant2.example/jwks.json");

    // A cached key needs no fetch.
    assert_eq!(send(&gateway, &fake, get("/private", &[("authorization", &auth)])).status(), 200);
    assert_eq!(jwks_requests(&fake), 1);

    // Junk kids inside the cooldown: refused without any refetch.
    for i in 0..5 {
        let junk = bearer(&tenant_token(&new, &format!("junk-{i}")));
        let response = send(&gateway, &fake, get("/private", &[("authorization", &junk)]));
        assert_eq!(response.status(), 401);
    }
    assert_eq!(jwks_requests(&fake), 1, "no refetch storm");

    // After the cooldown, a rotated key is picked up by exactly one refetch.
    fake.now.set(fake.now.get() + 31_000);
    let rotated = fake.respond(200, &[], &jwks(&[p256_jwk(&old, "k1"), p256_jwk(&new, "k2")]));
    let auth_new = bearer(&tenant_token(&new, "k2"));
    assert_eq!(send(&gateway, &rotated, get("/private", &[("authorization", &auth_new)])).status(), 200);
    assert_eq!(jwks_requests(&rotated), 2);

    // The endpoint fails after expiry: stale keys keep serving within max_stale.
    rotated.now.set(rotated.now.get() + 400_000);
    let failing = rotated.then(Script::Unreachable);
    assert_eq!(send(&gateway, &failing, get("/private", &[("authorization", &auth_new)])).status(), 200);
    // Beyond max_stale nothing usable is left: fail closed with 503.
    failing.now.set(failing.now.get() + 700_000);
    let failing = failing.then(Script::Unreachable);
    let response = send(&gateway, &failing, get("/private", &[("authorization", &auth_new)]));
    assert_eq!(response.status(), 503);
    assert_eq!(problem_type(&response), "urn:edgegate:problem:auth-unavailable");
}

#[test]
fn the_jwks_is_shared_through_the_store() {
    let key = p256_key(3);
    let auth = bearer(&tenant_token(&key, "k1"));
    let first = platform().respond(200, &[], &jwks(&[p256_jwk(&key, "k1")]));
    assert_eq!(send(&gateway(), &first, get("/private", &[("authorization", &auth)])).status(), 200);
    // A fresh gateway (another isolate, or a Spin instance) with the same store needs no fetch.
    let second = platform();
    *second.store.borrow_mut() = first.store.borrow().clone();
    assert_eq!(send(&gateway(), &second, get("/private", &[("authorization", &auth)])).status(), 200);
    assert_eq!(second.received.borrow().len(), 1, "only the upstream request");
}

#[test]
fn no_jwks_and_no_cache_is_503() {
    let key = p256_key(4);
    let auth = bearer(&tenant_token(&key, "k1"));
    let fake = platform().then(Script::Unreachable);
    let response = send(&gateway(), &fake, get("/private", &[("authorization", &auth)]));
    assert_eq!(response.status(), 503);
}

#[test]
fn a_native_verifier_is_asked_only_for_the_keys_own_public_key_algorithm() {
    let key = p256_key(5);
    let good = bearer(&tenant_token(&key, "k1"));
    let jwks_doc = jwks(&[p256_jwk(&key, "k1")]);

    // The platform's answer decides for a public key...
    let refusing = platform().respond(200, &[], &jwks_doc);
    refusing.native_verify.set(Some(false));
    assert_eq!(send(&gateway(), &refusing, get("/private", &[("authorization", &good)])).status(), 401);
    assert_eq!(refusing.native_calls.get(), 1);

    // ...but it is never asked about a token whose alg is not the key's, however eager it is.
    let eager = platform().respond(200, &[], &jwks_doc);
    eager.native_verify.set(Some(true));
    let body =
        support::tokens::b64(claims(json!({"iss": "https://tenant2.example", "aud": null})).to_string().as_bytes());
    for header in [
        json!({"alg": "none", "kid": "k1"}),
        json!({"alg": "HS256", "kid": "k1"}),
        json!({"alg": "ES384", "kid": "k1"}),
    ] {
        let forged = bearer(&format!("{}.{}.c2ln", support::tokens::b64(header.to_string().as_bytes()), body));
        assert_eq!(send(&gateway(), &eager, get("/private", &[("authorization", &forged)])).status(), 401, "{header}");
    }
    assert_eq!(eager.native_calls.get(), 0);

    // HMAC stays in the core.
    let hmac = platform();
    hmac.native_verify.set(Some(false));
    let auth = bearer(&token(json!({})));
    assert_eq!(send(&gateway(), &hmac, get("/private", &[("authorization", &auth)])).status(), 200);
    assert_eq!(hmac.native_calls.get(), 0);
}

#[test]
fn a_repeated_token_skips_the_signature_check_for_a_minute_but_never_the_clock() {
    let state = IsolateState::new();
    let gateway = gateway();
    let key = p256_key(6);
    let fake = platform().respond(200, &[], &jwks(&[p256_jwk(&key, "k1")]));
    fake.native_verify.set(Some(true));
    let auth = bearer(&es256(
        &key,
        &json!({"alg": "ES256", "kid": "k1"}),
        &claims(json!({"iss": "https://tenant2.example", "aud": null, "exp": NOW + 90})),
    ));
    for _ in 0..3 {
        assert_eq!(send_in(&gateway, &state, &fake, get("/private", &[("authorization", &auth)])).status(), 200);
    }
    assert_eq!(fake.native_calls.get(), 1, "verified once");
    fake.now.set(fake.now.get() + 121_000);
    assert_eq!(send_in(&gateway, &state, &fake, get("/private", &[("authorization", &auth)])).status(), 200);
    assert_eq!(fake.native_calls.get(), 2, "verified again after a minute");
    fake.now.set(fake.now.get() + 30_000); // 151 s after minting: past exp and the 60 s leeway
    assert_eq!(
        send_in(&gateway, &state, &fake, get("/private", &[("authorization", &auth)])).status(),
        401,
        "expired meanwhile"
    );
}

#[test]
fn where_instances_live_one_request_the_store_remembers_a_verified_token() {
    let key = p256_key(7);
    let auth = bearer(&es256(
        &key,
        &json!({"alg": "ES256", "kid": "k1"}),
        &claims(json!({"iss": "https://tenant2.example", "aud": null, "exp": NOW + 90})),
    ));
    let fake = platform();
    fake.native_verify.set(Some(true));
    let spin = FreshInstances(&fake);
    // Every request compiles a gateway of its own, as a Spin instance does: nothing in memory.
    let request = |fresh: &FreshInstances| {
        // The JWKS answer, in case the keys must be fetched (every fresh instance has none).
        fresh.0.script.borrow_mut().push_front(Script::Respond({
            let mut response = Response::new(FakeBody::Bytes(Bytes::from(jwks(&[p256_jwk(&key, "k1")]))));
            response.headers_mut().insert("cache-control", "max-age=300".parse().unwrap());
            response
        }));
        let response = block_on(handle(
            &gateway(),
            &IsolateState::new(),
            fresh,
            get("/private", &[("authorization", &auth)]),
            &CLIENT,
        ));
        fresh.0.script.borrow_mut().clear();
        response.status()
    };
    assert_eq!(request(&spin), 200);
    assert_eq!(fake.native_calls.get(), 1);
    let stored: Vec<String> =
        fake.store.borrow().keys().filter(|k| k.starts_with("edgegate:verified:")).cloned().collect();
    assert_eq!(stored.len(), 1, "one slot");
    assert!(!String::from_utf8_lossy(&fake.store.borrow()[&stored[0]]).contains(&auth[7..]), "never the token itself");
    for _ in 0..3 {
        assert_eq!(request(&spin), 200);
    }
    assert_eq!(fake.native_calls.get(), 1, "the next instances recall it");

    // A gateway from another routes file does not believe the slot.
    let other = Gateway::from_json(&routes().replace(r#""id":"public""#, r#""id":"open""#)).unwrap();
    fake.script
        .borrow_mut()
        .push_front(Script::Respond(Response::new(FakeBody::Bytes(Bytes::from(jwks(&[p256_jwk(&key, "k1")]))))));
    assert_eq!(
        block_on(handle(&other, &IsolateState::new(), &spin, get("/private", &[("authorization", &auth)]), &CLIENT))
            .status(),
        200
    );
    assert_eq!(fake.native_calls.get(), 2, "verified: the file changed");
    fake.script.borrow_mut().clear();

    // The clock is checked every time, and the memory lasts a minute.
    fake.now.set(fake.now.get() + 61_000);
    assert_eq!(request(&spin), 200);
    assert_eq!(fake.native_calls.get(), 3, "verified again after a minute");
    fake.now.set(fake.now.get() + 90_000); // past exp and the leeway
    assert_eq!(request(&spin), 401, "expired meanwhile");

    // An isolate that lives on (the plain fake) keeps it in memory, never in the store.
    let workers = platform();
    workers.native_verify.set(Some(true));
    workers
        .script
        .borrow_mut()
        .push_back(Script::Respond(Response::new(FakeBody::Bytes(Bytes::from(jwks(&[p256_jwk(&key, "k1")]))))));
    let fresh_auth = bearer(&es256(
        &key,
        &json!({"alg": "ES256", "kid": "k1"}),
        &claims(json!({"iss": "https://tenant2.example", "aud": null, "exp": NOW + 90})),
    ));
    assert_eq!(send(&gateway(), &workers, get("/private", &[("authorization", &fresh_auth)])).status(), 200);
    assert!(workers.store.borrow().keys().all(|k| !k.starts_with("edgegate:verified:")));
}

#[test]
fn identity_headers_are_removed_on_every_route_whatever_guards_it() {
    let gateway = gateway();
    let spoofed =
        [("x-user-id", "victim"), ("x-roles", "admin"), ("x-consumer-id", "acme"), ("x-consumer-tags", "gold")];
    // A public route, and one guarded by the cookie scheme, which forwards no identity itself.
    for path in ["/public", "/cookie"] {
        let fake = platform();
        let session = format!("session={}", token(json!({})));
        let mut headers = spoofed.to_vec();
        headers.push(("cookie", &session));
        assert_eq!(send(&gateway, &fake, get(path, &headers)).status(), 200, "{path}");
        let upstream = fake.last();
        for (name, _) in spoofed {
            assert!(upstream.headers().get(name).is_none(), "{path}: {name} reached the upstream");
        }
    }
}

#[test]
fn registered_claims_of_the_wrong_type_make_the_token_invalid() {
    let gateway = gateway();
    for bad in [json!({"sub": 12345}), json!({"sub": {"id": 1}}), json!({"aud": ["api", 1]}), json!({"exp": "later"})] {
        let fake = platform();
        let auth = bearer(&token(bad.clone()));
        let response = send(&gateway, &fake, get("/private", &[("authorization", &auth)]));
        assert_eq!(response.status(), 401, "{bad}");
        assert!(fake.received.borrow().is_empty(), "{bad}");
    }
}

#[test]
fn hmac_secrets_are_bytes_in_the_declared_encoding() {
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    use base64ct::Encoding;
    let encoded = [
        ("base64", base64ct::Base64::encode_string(&key)),
        ("base64url", base64ct::Base64UrlUnpadded::encode_string(&key)),
        ("hex", hex(&key)),
    ];
    for (encoding, text) in encoded {
        let routes = json!({
          "version": 1,
          "auth": {"jwt": {"bin": {"issuers": [{"issuer": "https://id.example",
                    "secrets": [{"secret": "binary_key", "alg": "HS256", "encoding": encoding}]}]}}},
          "upstreams": {"a": {"url": "http://a.internal"}},
          "routes": [{"id": "p", "match": {"path": "/p"}, "upstream": "a", "auth": {"any_of": ["bin"]}}]
        });
        let gateway = Gateway::from_json(&routes.to_string()).unwrap();
        let fake = Fake::new();
        fake.secrets.borrow_mut().insert("binary_key".into(), format!("{text}\n"));
        let signed = hs256(&key, &json!({"alg": "HS256"}), &claims(json!({"aud": null})));
        let response = send(&gateway, &fake, get("/p", &[("authorization", &bearer(&signed))]));
        assert_eq!(response.status(), 200, "{encoding}");
        // The text of the secret is not the key.
        let fake = Fake::new();
        fake.secrets.borrow_mut().insert("binary_key".into(), text.clone());
        let wrong = hs256(text.as_bytes(), &json!({"alg": "HS256"}), &claims(json!({"aud": null})));
        assert_eq!(send(&gateway, &fake, get("/p", &[("authorization", &bearer(&wrong))])).status(), 401, "{encoding}");
    }
    let unknown = r#"{"version": 1, "auth": {"jwt": {"bin": {"issuers": [{"issuer": "https://id.example",
        "secrets": [{"secret": "k", "alg": "HS256", "encoding": "base32"}]}]}}}, "upstreams": {}, "routes": []}"#;
    let errors = Gateway::from_json(unknown).unwrap_err();
    assert!(errors.iter().any(|e| e.to_string().contains("auth.jwt.bin.issuers[0].secrets[0].encoding")), "{errors:?}");
}

#[test]
fn concurrent_unknown_kids_cause_one_jwks_fetch() {
    use support::join_all;
    let key = p256_key(1);
    for known in [true, false] {
        let gateway = gateway();
        let fake = platform().respond(200, &[], &jwks(&[p256_jwk(&key, "k1")]));
        fake.fetch_yields.set(3);
        let tokens: Vec<String> = (0..20)
            .map(|i| if known { tenant_token(&key, "k1") } else { tenant_token(&key, &format!("junk{i}")) })
            .collect();
        let requests: Vec<_> = tokens
            .iter()
            .map(|token| {
                let auth = bearer(token);
                let gateway = &gateway;
                let fake = &fake;
                async move {
                    handle(gateway, &IsolateState::new(), fake, get("/private", &[("authorization", &auth)]), &CLIENT)
                        .await
                        .status()
                }
            })
            .collect();
        let statuses = join_all(requests);
        let fetches = fake.received.borrow().iter().filter(|r| r.uri().path() == "/jwks.json").count();
        assert_eq!(fetches, 1, "known kid {known}: one fetch for the burst");
        let expected = if known { 200 } else { 401 };
        assert!(statuses.iter().all(|s| *s == expected), "{statuses:?}");
    }
}

/// Instances that share only the store (Spin: one per request) fetch once per cooldown too.
#[test]
fn instances_sharing_a_store_fetch_the_jwks_once() {
    use support::join_all;
    let key = p256_key(1);
    let fake = platform().respond(200, &[], &jwks(&[p256_jwk(&key, "k1")]));
    fake.fetch_yields.set(3);
    // Ten instances, each with its own (empty) memory, as Spin starts them.
    let instances: Vec<Gateway> = (0..10).map(|_| gateway()).collect();
    let token = tenant_token(&key, "k1");
    let auth = bearer(&token);
    let requests: Vec<_> = instances
        .iter()
        .map(|gateway| {
            let fake = &fake;
            let auth = auth.clone();
            async move {
                handle(gateway, &IsolateState::new(), fake, get("/private", &[("authorization", &auth)]), &CLIENT)
                    .await
                    .status()
            }
        })
        .collect();
    let statuses = join_all(requests);
    let fetches = fake.received.borrow().iter().filter(|r| r.uri().path() == "/jwks.json").count();
    assert_eq!(fetches, 1, "one fetch across instances");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
