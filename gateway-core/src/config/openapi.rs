//! The gateway's public surface as an OpenAPI 3.1 document: what a client may call (paths,
//! methods, path parameters), what it must present (`auth` as security requirements), what it
//! must send (`validate_body` as the request schema), and the answers the gateway itself gives
//! (problem+json with their statuses, `RateLimit` and `Retry-After` on 429). A pure function of
//! a routes file that compiles; `edgegate openapi export` prints it and `openapi.path` serves it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::model::{ApiKeyScheme, JwtScheme, Route, RouteAuth, RouteAuthSetting, RouteRateLimit, RoutesFile};

/// Methods a route without `match.methods` is documented with.
const EVERY_METHOD: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The OpenAPI 3.1 document of `file` (which has compiled: names it refers to exist).
pub fn export(file: &RoutesFile) -> Value {
    let schemes = security_schemes(file);
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for route in &file.routes {
        let (path, params) = openapi_path(&route.matcher.path);
        let item = paths.entry(path).or_default();
        let methods: Vec<String> = match &route.matcher.methods {
            Some(methods) => methods.iter().map(|m| m.to_ascii_lowercase()).collect(),
            None => EVERY_METHOD.iter().map(|m| m.to_ascii_lowercase()).collect(),
        };
        let several = methods.len() > 1;
        for method in methods {
            // Two routes on one path and method (e.g. by host): the first is documented.
            if item.contains_key(&method) {
                continue;
            }
            let operation_id = if several { format!("{}.{method}", route.id) } else { route.id.clone() };
            item.insert(method.clone(), operation(file, route, &schemes, &params, &method, operation_id));
        }
    }
    let mut components = Map::new();
    components.insert("schemas".into(), json!({ "Problem": problem_schema() }));
    components.insert("responses".into(), gateway_responses());
    components.insert("headers".into(), rate_limit_headers());
    if !schemes.is_empty() {
        let definitions = schemes.iter().map(|(name, scheme)| (name.clone(), scheme.definition.clone()));
        components.insert("securitySchemes".into(), Value::Object(definitions.collect()));
    }
    let info = file.openapi.as_ref();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": info.and_then(|o| o.title.clone()).unwrap_or_else(|| "edgegate".to_owned()),
            "version": info.and_then(|o| o.version.clone()).unwrap_or_else(|| file.version.to_string()),
            "description": "The public surface of an edgegate gateway: its routes, what they require, and the answers the gateway gives itself (application/problem+json).",
        },
        "paths": paths,
        "components": components,
    })
}

/// A security scheme as OpenAPI names it, and where it comes from.
struct Scheme {
    definition: Value,
    /// The gateway scheme it documents (an API-key scheme read from a header and a query
    /// parameter is two OpenAPI schemes).
    of: String,
    jwt: bool,
}

fn security_schemes(file: &RoutesFile) -> Vec<(String, Scheme)> {
    let mut out = Vec::new();
    for (name, scheme) in &file.auth.jwt {
        out.push((name.clone(), Scheme { definition: jwt_definition(scheme), of: name.clone(), jwt: true }));
    }
    for (name, scheme) in &file.auth.api_keys {
        let header = api_key_definition(scheme, "header", scheme.header.as_deref().unwrap_or("X-API-Key"));
        out.push((name.clone(), Scheme { definition: header, of: name.clone(), jwt: false }));
        if let Some(query) = &scheme.query {
            let definition = api_key_definition(scheme, "query", query);
            out.push((format!("{name}-query"), Scheme { definition, of: name.clone(), jwt: false }));
        }
    }
    out
}

fn jwt_definition(scheme: &JwtScheme) -> Value {
    let issuers: Vec<&str> = scheme.issuers.iter().map(|i| i.issuer.as_str()).collect();
    let description = format!("A JWT from {}.", issuers.join(", "));
    let token = scheme.token.as_ref();
    let located =
        |place: &str, name: &String| json!({ "type": "apiKey", "in": place, "name": name, "description": description });
    match (
        token.and_then(|t| t.header.as_ref()),
        token.and_then(|t| t.cookie.as_ref()),
        token.and_then(|t| t.query.as_ref()),
    ) {
        (Some(header), _, _) => located("header", header),
        (_, Some(cookie), _) => located("cookie", cookie),
        (_, _, Some(query)) => located("query", query),
        _ => json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": description }),
    }
}

fn api_key_definition(_scheme: &ApiKeyScheme, place: &str, name: &str) -> Value {
    json!({ "type": "apiKey", "in": place, "name": name, "description": "An API key identifying a consumer." })
}

/// `{*rest}` (the rest of the path) has no OpenAPI form: it becomes `{rest}`, described.
fn openapi_path(template: &str) -> (String, Vec<(String, bool)>) {
    let mut path = String::with_capacity(template.len());
    let mut params = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
        path.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        let (name, catch_all) = match name.strip_prefix('*') {
            Some(name) => (name, true),
            None => (name, false),
        };
        path.push('{');
        path.push_str(name);
        path.push('}');
        params.push((name.to_owned(), catch_all));
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    (path, params)
}

fn operation(
    file: &RoutesFile,
    route: &Route,
    schemes: &[(String, Scheme)],
    params: &[(String, bool)],
    method: &str,
    operation_id: String,
) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), operation_id.into());
    if let Some(upstream) = &route.upstream {
        op.insert("description".into(), format!("Forwarded to the upstream \"{upstream}\".").into());
    } else if route.aggregate.is_some() {
        op.insert("description".into(), "Several upstreams, answered as one merged JSON document.".into());
    }
    if !params.is_empty() {
        let parameters: Vec<Value> = params
            .iter()
            .map(|(name, catch_all)| {
                let description = if *catch_all { "The rest of the path (it may contain `/`)." } else { "" };
                json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" }, "description": description })
            })
            .collect();
        op.insert("parameters".into(), parameters.into());
    }
    let auth = route_auth(file, route);
    if let Some(auth) = auth {
        op.insert("security".into(), security(auth, schemes).into());
    } else if !schemes.is_empty() {
        op.insert("security".into(), json!([]));
    }
    if let Some(schema) = &route.validate_body {
        op.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": schema } } }),
        );
    }
    let mut responses = Map::new();
    responses.insert("default".into(), json!({ "description": "The upstream's answer, passed through." }));
    let mut add = |status: &str, name: &str| {
        responses.insert(status.into(), json!({ "$ref": format!("#/components/responses/{name}") }));
    };
    add("400", "BadRequest");
    if auth.is_some() {
        add("401", "Unauthorized");
    }
    if auth.is_some_and(|a| a.scopes.is_some() || a.roles.is_some()) || route.ip.is_some() {
        add("403", "Forbidden");
    }
    if matches!(method, "post" | "put" | "patch") {
        add("413", "PayloadTooLarge");
    }
    if route_rate_limited(file, route) {
        add("429", "RateLimited");
    }
    add("502", "BadGateway");
    add("503", "ServiceUnavailable");
    add("504", "GatewayTimeout");
    op.insert("responses".into(), responses.into());
    Value::Object(op)
}

fn route_auth<'a>(file: &'a RoutesFile, route: &'a Route) -> Option<&'a RouteAuth> {
    match &route.auth {
        Some(RouteAuthSetting::Require(auth)) => Some(auth),
        Some(RouteAuthSetting::Enabled(_)) => None,
        None => file.defaults.auth.as_ref(),
    }
}

fn route_rate_limited(file: &RoutesFile, route: &Route) -> bool {
    match &route.rate_limit {
        Some(RouteRateLimit::Policies(policies)) => !policies.is_empty(),
        Some(RouteRateLimit::Enabled(_)) => false,
        None => file.defaults.rate_limit.as_ref().is_some_and(|p| !p.is_empty()),
    }
}

/// Alternatives, any one of which lets a request through (`auth.any_of`, each scope
/// alternative of `scopes.any_of`, and nothing at all when the credential is optional).
fn security(auth: &RouteAuth, schemes: &[(String, Scheme)]) -> Vec<Value> {
    let mut alternatives = Vec::new();
    let scope_sets: Vec<Vec<String>> = match &auth.scopes {
        Some(req) => match (&req.all_of, &req.any_of) {
            (Some(all), None) => vec![all.clone()],
            (None, Some(any)) => any.iter().map(|s| vec![s.clone()]).collect(),
            (Some(all), Some(any)) => any.iter().map(|s| [all.clone(), vec![s.clone()]].concat()).collect(),
            (None, None) => vec![Vec::new()],
        },
        None => vec![Vec::new()],
    };
    for name in &auth.any_of {
        for (openapi_name, scheme) in schemes.iter().filter(|(_, s)| &s.of == name) {
            for scopes in &scope_sets {
                let scopes = if scheme.jwt { scopes.clone() } else { Vec::new() };
                alternatives.push(json!({ openapi_name.clone(): scopes }));
            }
        }
    }
    if auth.optional == Some(true) {
        alternatives.push(json!({}));
    }
    alternatives
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An answer the gateway gives itself (RFC 9457). `type` is stable: urn:edgegate:problem:<kind>.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string", "examples": ["urn:edgegate:problem:rate-limited"] },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "instance": { "type": "string", "description": "The request id (X-Request-Id)." }
        }
    })
}

fn gateway_responses() -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
        })
    };
    let with_headers = |mut response: Value, headers: Value| {
        if let Some(response) = response.as_object_mut() {
            response.insert("headers".into(), headers);
        }
        response
    };
    let rate_limited = with_headers(
        problem("A rate limit or quota is spent (rate-limited)."),
        json!({
            "Retry-After": { "$ref": "#/components/headers/Retry-After" },
            "RateLimit": { "$ref": "#/components/headers/RateLimit" },
            "RateLimit-Policy": { "$ref": "#/components/headers/RateLimit-Policy" }
        }),
    );
    let unauthorized = with_headers(
        problem("No valid credential (unauthorized)."),
        json!({ "WWW-Authenticate": { "schema": { "type": "string" }, "description": "The scheme to authenticate with." } }),
    );
    json!({
        "BadRequest": problem("The request is malformed or its body fails the route's schema (bad-request, invalid-body)."),
        "Unauthorized": unauthorized,
        "Forbidden": problem("The credential lacks a scope or role, or the address is not allowed (forbidden, ip-denied)."),
        "PayloadTooLarge": problem("The request body exceeds the route's limit (payload-too-large)."),
        "RateLimited": rate_limited,
        "BadGateway": problem("The upstream could not be reached or its answer could not be transformed (upstream-unreachable, bad-upstream-body)."),
        "ServiceUnavailable": problem("Keys, the limiter or every upstream target are unavailable (auth-unavailable, rate-limit-unavailable, upstream-circuit-open)."),
        "GatewayTimeout": problem("No answer from the upstream within the route's timeout (upstream-timeout).")
    })
}

fn rate_limit_headers() -> Value {
    json!({
        "Retry-After": { "schema": { "type": "integer" }, "description": "Seconds until a request may succeed." },
        "RateLimit": { "schema": { "type": "string" }, "description": "The remaining quota (IETF RateLimit header fields)." },
        "RateLimit-Policy": { "schema": { "type": "string" }, "description": "The policy counted against." }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn catch_all_parameters_have_an_openapi_form() {
        assert_eq!(
            openapi_path("/a/{id}/files/{*rest}"),
            ("/a/{id}/files/{rest}".to_owned(), vec![("id".to_owned(), false), ("rest".to_owned(), true)])
        );
        assert_eq!(openapi_path("/plain"), ("/plain".to_owned(), vec![]));
    }
}
