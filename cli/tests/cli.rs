//! The `edgegate` command and the committed JSON Schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn edgegate(args: &[&str]) -> (bool, String, String) {
    let (code, stdout, stderr) = edgegate_status(args);
    (code == 0, stdout, stderr)
}

#[test]
fn committed_schema_matches_the_types() {
    let committed = std::fs::read_to_string(root().join("routes.schema.json")).unwrap();
    assert!(
        committed == gateway_core::config::json_schema(),
        "routes.schema.json drifted from the config types: run `cargo run -p edgegate-cli -- schema > routes.schema.json`"
    );
    let (ok, stdout, _) = edgegate(&["schema"]);
    assert!(ok);
    assert_eq!(stdout, committed);
}

#[test]
fn check_accepts_the_shipped_files() {
    let (ok, stdout, stderr) = edgegate(&["check"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("routes.json: ok"), "{stdout}");
}

/// `embed` (the Workers build): the routes file as a JS module, checked first; a broken file
/// writes nothing and fails with its located findings.
#[test]
fn embed_writes_the_routes_module_only_for_a_valid_file() {
    let out = std::env::temp_dir().join(format!("edgegate-embed-{}.mjs", std::process::id()));
    let out_arg = out.to_str().unwrap();
    let routes = "tests/conformance/routes.json";
    let (ok, _, stderr) = edgegate(&["embed", routes, out_arg]);
    assert!(ok, "{stderr}");
    let module = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let exported = |name: &str| -> String {
        let line = module.lines().find_map(|l| l.strip_prefix(&format!("export const {name} = "))).unwrap();
        serde_json::from_str(line.strip_suffix(';').unwrap()).unwrap()
    };
    assert_eq!(exported("routes"), std::fs::read_to_string(root().join(routes)).unwrap());
    let document: serde_json::Value = serde_json::from_str(&exported("openapi")).unwrap();
    assert_eq!(document["openapi"], "3.1.0", "the file sets openapi.path: its document travels along");

    let (ok, _, stderr) = edgegate(&["embed", "gateway-core/tests/fixtures/invalid/typo-upstream.json", out_arg]);
    assert!(!ok);
    assert!(stderr.contains(":8:45: routes[3].upstream: unknown upstream \"user\""), "{stderr}");
    assert!(!out.exists(), "nothing written for a broken file");
}

#[test]
fn check_reports_every_error_with_its_path_and_fails() {
    let fixture = "gateway-core/tests/fixtures/invalid/many-errors.json";
    let (ok, _, stderr) = edgegate(&["check", fixture]);
    assert!(!ok);
    let expected =
        std::fs::read_to_string(root().join("gateway-core/tests/fixtures/invalid/many-errors.errors")).unwrap();
    for line in expected.lines() {
        // `file:line:column: path: reason`: every error of this file has a place to jump to.
        let reported = stderr
            .lines()
            .find(|l| l.ends_with(&format!(": {line}")))
            .unwrap_or_else(|| panic!("missing {line:?} in\n{stderr}"));
        let place =
            reported.strip_prefix(&format!("{fixture}:")).and_then(|rest| rest.strip_suffix(&format!(": {line}")));
        let numbers: Vec<usize> = place.unwrap_or_default().split(':').filter_map(|n| n.parse().ok()).collect();
        assert_eq!(numbers.len(), 2, "no line:column in {reported:?}");
    }
    // The line and column are the member's own.
    let text = std::fs::read_to_string(root().join(fixture)).unwrap();
    let (line, column) = edgegate_cli::locate::locate(&text, "routes[3].upstream").unwrap();
    let row = text.lines().nth(line - 1).unwrap();
    assert!(row.chars().skip(column - 1).collect::<String>().starts_with("\"upstream\""), "{row}");
    assert!(stderr.contains(&format!("{fixture}:{line}:{column}: routes[3].upstream: unknown upstream")));
}

#[test]
fn check_catches_a_spin_manifest_out_of_step() {
    let dir = std::env::temp_dir().join(format!("edgegate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("spin.toml");
    let shipped = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    std::fs::write(&manifest, shipped.replace("http://127.0.0.1:8788", "http://127.0.0.1:1")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_edgegate"))
        .args(["check"])
        .current_dir(root())
        .env_remove("GATEWAY_ROUTES")
        .env("EDGEGATE_SPIN_MANIFEST", &manifest)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("allowed_outbound_hosts"));

    let synced = edgegate_cli::sync_spin_manifest(
        &std::fs::read_to_string(&manifest).unwrap(),
        &edgegate_cli::load(&root().join("routes.json")).unwrap().1,
    )
    .unwrap();
    assert_eq!(synced, shipped);
    std::fs::remove_dir_all(dir).unwrap();
}

fn edgegate_status(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_edgegate"))
        .args(args)
        .current_dir(root())
        .env_remove("GATEWAY_ROUTES")
        .env_remove("EDGEGATE_SPIN_MANIFEST")
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn explain_shows_the_route_what_the_upstream_gets_and_the_answer() {
    // The shipped demo: a rewrite, and a client-sent forwarding header the gateway replaces.
    let (code, stdout, _) = edgegate_status(&[
        "explain",
        "GET",
        "https://localhost:8787/api/users/7?x=1",
        "-H",
        "X-Forwarded-For: 6.6.6.6",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("route     users-get (routes[1])"), "{stdout}");
    assert!(stdout.contains("auth: public") && stdout.contains("rate limits: none"), "{stdout}");
    assert!(stdout.contains("timeouts: 10000 ms to the response head"), "the route's terms, as compiled: {stdout}");
    assert!(stdout.contains("outbound  #1 GET http://127.0.0.1:8788/users/7?x=1"), "{stdout}");
    assert!(stdout.contains("~ x-forwarded-for: 203.0.113.1") && !stdout.contains("6.6.6.6"), "{stdout}");
    assert!(stdout.contains("+ x-request-id: "), "what the gateway adds is marked: {stdout}");
    assert!(stdout.contains("response  200 OK"), "{stdout}");

    // No route: the routes that miss the request by one condition, and which.
    let (code, stdout, _) = edgegate_status(&["explain", "DELETE", "https://localhost:8787/api/users/7"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("near users-get (routes[1]): the method DELETE is not one of GET, HEAD"), "{stdout}");
    let (_, stdout, _) = edgegate_status(&["explain", "GET", "https://localhost:8787/api/user/7"]);
    assert!(
        stdout.contains("near users-get (routes[1]): the path /api/user/7 does not fit /api/users/{id}"),
        "{stdout}"
    );

    // The gateway answers itself: no route, or a route whose auth refuses.
    let (code, stdout, _) = edgegate_status(&["explain", "GET", "https://localhost:8787/missing"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("route     none: no route matches (404)") && stdout.contains("response  404"), "{stdout}");
    let (code, stdout, _) = edgegate_status(&[
        "explain",
        "--routes",
        "tests/conformance/routes.json",
        "--json",
        "GET",
        "http://gw.test/auth/jwt/x",
    ]);
    assert_eq!(code, 1);
    let explained: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(explained["route"]["id"], "auth-jwt");
    assert_eq!(explained["outbound"].as_array().unwrap().len(), 0, "{explained}");
    assert!(explained["response"]["start"].as_str().unwrap().starts_with("401"), "{explained}");
    let steps = explained["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["step"] == "auth" && s["why"] == "scheme \"idp\": no credential where it looks"),
        "the refusing scheme and why: {explained}"
    );

    // Phase by phase: a token whose keys are remote (explain stays offline and says where they
    // would come from), a rate limit's counting key, an origin the route's CORS policy refuses.
    let b64 = |json: &str| base64url(json.as_bytes());
    let token = format!(
        "{}.{}.AAAA",
        b64(r#"{"alg":"ES256","kid":"k1"}"#),
        b64(r#"{"iss":"http://127.0.0.1:27183","sub":"u1","aud":"edgegate-tests","exp":9999999999}"#)
    );
    let bearer = format!("Authorization: Bearer {token}");
    let conformance = ["explain", "--routes", "tests/conformance/routes.json"];
    let (code, stdout, _) =
        edgegate_status(&[&conformance[..], &["GET", "http://gw.test/auth/jwt/x", "-H", &bearer]].concat());
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("auth       scheme \"idp\": no key can be obtained for this token"), "{stdout}");
    assert!(stdout.contains("keys      would fetch http://127.0.0.1:27183/jwks.json"), "{stdout}");
    assert!(stdout.contains("outbound  none") && stdout.contains("response  503"), "{stdout}");
    let (code, stdout, _) =
        edgegate_status(&[&conformance[..], &["GET", "http://gw.test/rl/burst", "-H", "x-client: c1"]].concat());
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout
            .contains("rate-limit policy \"burst5\": counted under key rl:burst5|c1: allowed (remaining per rule: 4)"),
        "{stdout}"
    );
    assert!(stdout.contains("dispatch   targets in order: http://127.0.0.1:27181/rl/burst"), "{stdout}");
    let (_, stdout, _) = edgegate_status(
        &[&conformance[..], &["GET", "http://gw.test/h/cors-keep", "-H", "Origin: https://evil.example"]].concat(),
    );
    assert!(stdout.contains("cors       origin https://evil.example not allowed"), "{stdout}");
    let preflight = ["OPTIONS", "http://gw.test/h/cors-keep", "-H", "Origin: https://evil.example"];
    let (code, stdout, _) =
        edgegate_status(&[&conformance[..], &preflight, &["-H", "Access-Control-Request-Method: GET"]].concat());
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("cors       preflight for GET: refused (Origin not allowed)"), "{stdout}");

    // The upstream's canned answer passes through as a real one would.
    let (code, stdout, _) = edgegate_status(&[
        "explain",
        "--upstream-status",
        "503",
        "--upstream-body",
        r#"{"down":true}"#,
        "GET",
        "https://localhost:8787/",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("response  503") && stdout.contains(r#"{"down":true}"#), "{stdout}");

    // A body is sent with its length, as a client sends a file: over the route's limit, 413.
    let big = std::env::temp_dir().join(format!("edgegate-explain-{}.txt", std::process::id()));
    std::fs::write(&big, vec![b'a'; 70_000]).unwrap();
    let (code, stdout, _) =
        edgegate_status(&["explain", "POST", "https://localhost:8787/api/users", "--body", big.to_str().unwrap()]);
    std::fs::remove_file(&big).unwrap();
    assert_eq!(code, 1);
    assert!(stdout.contains("response  413") && stdout.contains("outbound  none"), "{stdout}");

    // Usage errors are 2.
    assert_eq!(edgegate_status(&["explain", "GET"]).0, 2);
    assert_eq!(edgegate_status(&["explain", "GET", "/relative"]).0, 2);
    let (code, stdout, _) = edgegate_status(&["explain", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("usage: edgegate explain"));
    for command in [
        &["check", "--help"][..],
        &["embed", "--help"],
        &["schema", "--help"],
        &["spin-sync", "-h"],
        &["openapi", "export", "--help"],
    ] {
        let (code, stdout, _) = edgegate_status(command);
        assert_eq!(code, 0, "{command:?}");
        assert!(stdout.starts_with("usage:"), "{command:?}: {stdout}");
    }
}

/// `openapi import`: paths and methods become routes under the prefix, `$ref`'d request schemas
/// are inlined into `validate_body` (3.0's `nullable` and boolean `exclusiveMinimum` in their
/// 3.1 form), every keyword the gateway does not check is named with its JSON pointer, security
/// becomes auth (scopes, optional), what to fill in is listed, and the file passes `check`.
#[test]
fn openapi_import_builds_routes_that_check_and_says_what_it_left_out() {
    let dir = std::env::temp_dir().join(format!("edgegate-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("shop.routes.json");
    let (code, _, stderr) = edgegate_status(&[
        "openapi",
        "import",
        "cli/tests/fixtures/openapi/shop.yaml",
        "--prefix",
        "/shop",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let routes: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        routes["upstreams"]["api"]["url"], "https://eu.shop.example.com/v2",
        "server variables at their defaults"
    );
    let ids: Vec<&str> = routes["routes"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["listProducts", "createProduct", "getProduct", "deleteProduct", "get-health"]);
    let create = &routes["routes"][1];
    assert_eq!(create["match"], serde_json::json!({"path": "/shop/products", "methods": ["POST"]}));
    assert_eq!(create["strip_prefix"], "/shop");
    assert_eq!(create["auth"], serde_json::json!({"any_of": ["bearer"], "scopes": {"all_of": ["products:write"]}}));
    let body = &create["validate_body"];
    assert_eq!(body["properties"]["dimensions"]["properties"]["unit"]["enum"], serde_json::json!(["cm", "in"]));
    assert_eq!(body["properties"]["description"]["type"], serde_json::json!(["string", "null"]));
    assert_eq!(body["properties"]["price"], serde_json::json!({"type": "number", "exclusiveMinimum": 0}));
    assert!(body["properties"]["sku"].get("pattern").is_none());
    assert_eq!(routes["routes"][4].get("auth"), None, "`security: []` is public");
    assert_eq!(routes["routes"][0]["auth"]["any_of"], serde_json::json!(["bearer", "partnerKey"]));
    for expected in [
        "warning: #/components/schemas/NewProduct/properties/sku/pattern: `pattern` is not checked",
        "warning: #/components/schemas/NewProduct/properties/tags/items/format: `format` is not checked",
        "warning: #/paths/~1files~1{name}.json: a parameter inside a path segment",
        "fill in: auth.jwt.bearer",
        "fill in: auth.api_keys.partnerKey",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    let (ok, stdout, stderr) = edgegate(&["check", "--routes-only", out.to_str().unwrap()]);
    assert!(ok && stdout.contains("ok (5 routes)"), "{stdout}{stderr}");

    // Fail closed: an operation whose only schemes cannot be checked is left out, not made public.
    let (code, stdout, stderr) = edgegate_status(&[
        "openapi",
        "import",
        "cli/tests/fixtures/openapi/ledger.json",
        "--upstream-url",
        "http://127.0.0.1:9000",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let ledger: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let methods: Vec<String> =
        ledger["routes"].as_array().unwrap().iter().map(|r| r["match"]["methods"][0].to_string()).collect();
    assert_eq!(methods, ["\"POST\"", "\"GET\""]);
    assert!(stderr.contains("the operation is left out rather than published without them"), "{stderr}");
    assert!(
        stderr.contains("the recursive reference #/components/schemas/Account is accepted as any value"),
        "{stderr}"
    );
    assert_eq!(ledger["routes"][1]["auth"], serde_json::json!({"any_of": ["queryKey"], "optional": true}));

    let (code, _, stderr) = edgegate_status(&["openapi", "import", "cli/tests/fixtures/openapi/ledger.json"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("give the upstream with --upstream-url"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `openapi export`: the gateway's surface as OpenAPI 3.1 (the independent validator runs in
/// scripts/test: tests/openapi/validate.mjs).
#[test]
fn openapi_export_describes_routes_security_bodies_and_the_gateways_own_answers() {
    let (ok, stdout, stderr) = edgegate(&["openapi", "export", "--routes", "tests/conformance/routes.json"]);
    assert!(ok, "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let files = &document["paths"]["/files/{path}"]["get"];
    assert_eq!(files["parameters"][0]["name"], "path", "{{*path}} is a described parameter");
    let admin = &document["paths"]["/auth/admin"]["get"];
    assert_eq!(admin["security"], serde_json::json!([{"idp": ["orders:read", "orders:write"]}]));
    assert_eq!(admin["responses"]["401"]["$ref"], "#/components/responses/Unauthorized");
    assert_eq!(admin["responses"]["403"]["$ref"], "#/components/responses/Forbidden");
    assert_eq!(
        document["components"]["securitySchemes"]["link"],
        serde_json::json!({"type": "apiKey", "in": "query", "name": "access_token", "description": "A JWT from https://hmac.test."})
    );
    let limited = &document["paths"]["/rl/user"]["get"]["responses"]["429"];
    assert_eq!(limited["$ref"], "#/components/responses/RateLimited");
    assert!(document["components"]["responses"]["RateLimited"]["headers"]["Retry-After"].is_object());
    let (code, _, _) =
        edgegate_status(&["openapi", "export", "--routes", "gateway-core/tests/fixtures/invalid/typo-upstream.json"]);
    assert_eq!(code, 1, "a file that does not compile has no document");
}

/// Base64url without padding (RFC 7515), for tokens made up in tests.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.extend(ALPHABET.get((n >> (18 - 6 * i) & 63) as usize).map(|b| char::from(*b)));
        }
    }
    out
}
