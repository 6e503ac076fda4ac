//! `edgegate openapi import`: an OpenAPI 3.0/3.1 description (JSON or YAML) as a routes file
//! that passes `check`. Paths and methods become routes, JSON request schemas `validate_body`
//! (references resolved; every keyword outside the validator's subset reported with its JSON
//! pointer and left out, never dropped silently), security schemes auth stubs to complete,
//! `servers[0]` the upstream. What needs filling in is said alongside.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// What `import` was asked.
#[derive(Debug, Default)]
pub struct ImportOptions {
    /// The upstream's name (default `api`).
    pub upstream: Option<String>,
    /// The upstream's URL when the description has no usable `servers[0]`, or to replace it.
    pub upstream_url: Option<String>,
    /// A path prefix the routes are published under (stripped before forwarding).
    pub prefix: Option<String>,
}

/// A routes file and what the reader should know about it.
#[derive(Debug)]
pub struct Imported {
    /// The routes file, pretty-printed JSON.
    pub routes: String,
    /// Keywords and constructs left out, each with its JSON pointer into the description.
    pub warnings: Vec<String>,
    /// Placeholders the user must replace before deploying.
    pub to_fill_in: Vec<String>,
}

/// JSON Schema keywords the gateway's validator reads (`gateway_core::validate`).
const SUPPORTED: &[&str] = &[
    "$schema",
    "title",
    "description",
    "examples",
    "default",
    "type",
    "const",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "items",
    "additionalProperties",
    "not",
    "required",
    "properties",
    "allOf",
    "anyOf",
    "oneOf",
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Reads `text` (JSON, else YAML) and builds the routes file.
pub fn import(text: &str, options: &ImportOptions) -> Result<Imported, String> {
    let spec: Value = match serde_json::from_str(text) {
        Ok(spec) => spec,
        Err(_) => serde_norway::from_str(text).map_err(|e| format!("neither JSON nor YAML: {e}"))?,
    };
    let version = spec.get("openapi").and_then(Value::as_str).unwrap_or_default();
    if !(version.starts_with("3.0") || version.starts_with("3.1")) {
        return Err(format!("not an OpenAPI 3.0 or 3.1 description (openapi: \"{version}\")"));
    }
    let mut out = Importer { spec: &spec, warnings: Vec::new(), to_fill_in: Vec::new() };
    let upstream_name = options.upstream.clone().unwrap_or_else(|| "api".to_owned());
    let upstream_url = match &options.upstream_url {
        Some(url) => url.clone(),
        None => out
            .server_url()
            .ok_or("the description has no absolute http(s) servers[0].url: give the upstream with --upstream-url")?,
    };
    let prefix = options.prefix.as_deref().map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty());
    if let Some(prefix) = prefix {
        if !prefix.starts_with('/') || prefix.contains(['{', '}']) {
            return Err(format!("--prefix {prefix}: a literal path such as /api"));
        }
    }

    let (jwt, api_keys) = out.schemes();
    let mut routes = Vec::new();
    let mut ids = BTreeMap::<String, usize>::new();
    let paths = spec.get("paths").and_then(Value::as_object).cloned().unwrap_or_default();
    for (path, item) in &paths {
        let pointer = format!("/paths/{}", escape(path));
        if !whole_segment_params(path) {
            out.warnings
                .push(format!("#{pointer}: a parameter inside a path segment cannot be matched; the path is left out"));
            continue;
        }
        for method in METHODS {
            let Some(operation) = item.get(*method) else { continue };
            let at = format!("{pointer}/{method}");
            let id = unique_id(&mut ids, operation.get("operationId").and_then(Value::as_str), method, path);
            let mut route = Map::new();
            route.insert("id".into(), id.into());
            let public_path = format!("{}{path}", prefix.unwrap_or(""));
            route.insert("match".into(), json!({ "path": public_path, "methods": [method.to_ascii_uppercase()] }));
            route.insert("upstream".into(), upstream_name.clone().into());
            if let Some(prefix) = prefix {
                route.insert("strip_prefix".into(), prefix.into());
            }
            let security = operation.get("security").or_else(|| spec.get("security"));
            match out.route_auth(security, &at, &jwt, &api_keys) {
                Some(auth) => {
                    route.insert("auth".into(), auth);
                }
                // Fail closed: an operation that needs a credential is never published without one.
                None if requires_credential(security) => {
                    out.warnings.push(format!(
                        "#{at}: it requires only security schemes the gateway cannot check; the operation is left out rather than published without them"
                    ));
                    continue;
                }
                None => {}
            }
            if let Some(schema) = out.request_schema(operation, &at) {
                route.insert("validate_body".into(), schema);
            }
            routes.push(Value::Object(route));
        }
    }
    if routes.is_empty() {
        return Err("the description has no operations to route".into());
    }

    let mut file = Map::new();
    file.insert("$schema".into(), "./routes.schema.json".into());
    file.insert("version".into(), 1.into());
    let mut auth = Map::new();
    if !jwt.is_empty() {
        auth.insert("jwt".into(), Value::Object(jwt.into_iter().map(|(name, (scheme, _))| (name, scheme)).collect()));
    }
    if !api_keys.is_empty() {
        auth.insert("api_keys".into(), Value::Object(api_keys.into_iter().collect()));
    }
    if !auth.is_empty() {
        file.insert("auth".into(), Value::Object(auth));
    }
    file.insert("upstreams".into(), json!({ upstream_name: { "url": upstream_url } }));
    file.insert("routes".into(), routes.into());
    let text = serde_json::to_string_pretty(&Value::Object(file)).map_err(|e| e.to_string())?;
    if let Err(errors) = gateway_core::Gateway::from_json(&text) {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!("the imported routes do not compile:\n{}", errors.join("\n")));
    }
    Ok(Imported { routes: text + "\n", warnings: out.warnings, to_fill_in: out.to_fill_in })
}

struct Importer<'a> {
    spec: &'a Value,
    warnings: Vec<String>,
    to_fill_in: Vec<String>,
}

/// A JWT scheme stub and the OpenAPI scheme it came from; API-key schemes as they are.
type Schemes = (BTreeMap<String, (Value, String)>, BTreeMap<String, Value>);

impl Importer<'_> {
    /// `servers[0].url` with its variables at their defaults, when it is absolute http(s).
    fn server_url(&mut self) -> Option<String> {
        let server = self.spec.get("servers")?.get(0)?;
        let mut url = server.get("url")?.as_str()?.to_owned();
        if let Some(variables) = server.get("variables").and_then(Value::as_object) {
            for (name, variable) in variables {
                let value = variable.get("default").and_then(Value::as_str).unwrap_or_default();
                url = url.replace(&format!("{{{name}}}"), value);
            }
        }
        let url = url.trim_end_matches('/').to_owned();
        (url.starts_with("http://") || url.starts_with("https://")).then_some(url)
    }

    fn schemes(&mut self) -> Schemes {
        let mut jwt = BTreeMap::new();
        let mut api_keys = BTreeMap::new();
        let Some(schemes) = self.spec.pointer("/components/securitySchemes").and_then(Value::as_object) else {
            return (jwt, api_keys);
        };
        for (name, scheme) in schemes {
            let scheme = self.resolve(scheme);
            let at = format!("#/components/securitySchemes/{}", escape(name));
            let id = identifier(name);
            let kind = scheme.get("type").and_then(Value::as_str).unwrap_or_default();
            let stub = |issuer: &str| json!({ "issuers": [{ "issuer": issuer, "jwks_url": format!("{issuer}/.well-known/jwks.json") }] });
            match kind {
                "http"
                    if scheme
                        .get("scheme")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case("bearer")) =>
                {
                    jwt.insert(id.clone(), (stub("https://issuer.example.com"), name.clone()));
                    self.to_fill_in.push(format!(
                        "auth.jwt.{id} ({at}): the issuer and its keys (issuers[0].issuer, jwks_url or inline keys)"
                    ));
                }
                "oauth2" | "openIdConnect" => {
                    let issuer = scheme
                        .get("openIdConnectUrl")
                        .and_then(Value::as_str)
                        .and_then(|url| url.split("/.well-known/").next())
                        .filter(|url| url.starts_with("https://"))
                        .unwrap_or("https://issuer.example.com")
                        .trim_end_matches('/')
                        .to_owned();
                    jwt.insert(id.clone(), (stub(&issuer), name.clone()));
                    self.to_fill_in.push(format!(
                        "auth.jwt.{id} ({at}, {kind}): check the issuer and its JWKS URL; tokens are verified as JWTs"
                    ));
                }
                "apiKey" => {
                    let place = scheme.get("in").and_then(Value::as_str).unwrap_or_default();
                    let key = scheme.get("name").and_then(Value::as_str).unwrap_or("X-API-Key");
                    let scheme = match place {
                        "header" => json!({ "header": key, "store": true }),
                        "query" => json!({ "query": key, "store": true }),
                        _ => {
                            self.warnings
                                .push(format!("{at}: an API key in a {place} cannot be read; the scheme is left out"));
                            continue;
                        }
                    };
                    api_keys.insert(id.clone(), scheme);
                    self.to_fill_in.push(format!(
                        "auth.api_keys.{id} ({at}): its consumers (inline `consumers`, or keys in the key-value store under apikey:<sha256>)"
                    ));
                }
                other => {
                    self.warnings.push(format!("{at}: security scheme type \"{other}\" is not supported; left out"))
                }
            }
        }
        (jwt, api_keys)
    }

    /// `security` (the operation's, else the description's) as the route's `auth`.
    fn route_auth(
        &mut self,
        security: Option<&Value>,
        at: &str,
        jwt: &BTreeMap<String, (Value, String)>,
        api_keys: &BTreeMap<String, Value>,
    ) -> Option<Value> {
        let alternatives = security?.as_array()?;
        let mut any_of = Vec::<String>::new();
        let mut optional = false;
        let mut scopes = Vec::<String>::new();
        for alternative in alternatives {
            let Some(alternative) = alternative.as_object() else { continue };
            if alternative.is_empty() {
                optional = true;
            }
            if alternative.len() > 1 {
                self.warnings.push(format!(
                    "#{at}/security: schemes required together are checked as alternatives (any one passes)"
                ));
            }
            for (name, required) in alternative {
                let id = identifier(name);
                if !jwt.contains_key(&id) && !api_keys.contains_key(&id) {
                    continue;
                }
                if !any_of.contains(&id) {
                    any_of.push(id);
                }
                for scope in required.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !scopes.iter().any(|s| s == scope) {
                        scopes.push(scope.to_owned());
                    }
                }
            }
        }
        if any_of.is_empty() {
            return None;
        }
        let mut auth = Map::new();
        auth.insert("any_of".into(), json!(any_of));
        if optional {
            auth.insert("optional".into(), true.into());
        }
        if !scopes.is_empty() {
            if alternatives.len() > 1 {
                self.warnings.push(format!("#{at}/security: the scopes of every alternative are required together"));
            }
            auth.insert("scopes".into(), json!({ "all_of": scopes }));
        }
        Some(Value::Object(auth))
    }

    /// The JSON request body's schema, references resolved, in the validator's subset.
    fn request_schema(&mut self, operation: &Value, at: &str) -> Option<Value> {
        let body = self.resolve(operation.get("requestBody")?);
        let content = body.get("content")?.as_object()?;
        let (media, media_type) = content.iter().find(|(media, _)| is_json(media))?;
        let schema = media_type.get("schema")?;
        let pointer = format!("{at}/requestBody/content/{}/schema", escape(media));
        Some(self.subset(schema, &pointer, &mut Vec::new()))
    }

    /// `schema` with references inlined, 3.0's `nullable` and boolean exclusive bounds in their
    /// 3.1 form, and every keyword the validator does not read left out, each reported.
    fn subset(&mut self, schema: &Value, pointer: &str, seen: &mut Vec<String>) -> Value {
        let Some(object) = schema.as_object() else { return schema.clone() };
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            if seen.iter().any(|r| r == reference) {
                self.warnings.push(format!("#{pointer}: the recursive reference {reference} is accepted as any value"));
                return json!({});
            }
            let Some(target) = reference.strip_prefix('#').and_then(|p| self.spec.pointer(p)) else {
                self.warnings
                    .push(format!("#{pointer}: the reference {reference} cannot be resolved; any value is accepted"));
                return json!({});
            };
            seen.push(reference.to_owned());
            let resolved = self.subset(target, &reference[1..], seen);
            seen.pop();
            return resolved;
        }
        let mut out = Map::new();
        let nullable = object.get("nullable").and_then(Value::as_bool) == Some(true);
        for (keyword, value) in object {
            let at = format!("{pointer}/{}", escape(keyword));
            match keyword.as_str() {
                "nullable" => {}
                "properties" => {
                    let properties = value.as_object().into_iter().flatten().map(|(name, schema)| {
                        (name.clone(), self.subset(schema, &format!("{at}/{}", escape(name)), seen))
                    });
                    out.insert(keyword.clone(), Value::Object(properties.collect()));
                }
                "items" | "not" => {
                    out.insert(keyword.clone(), self.subset(value, &at, seen));
                }
                "additionalProperties" if value.is_object() => {
                    out.insert(keyword.clone(), self.subset(value, &at, seen));
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let list = value.as_array().into_iter().flatten().enumerate();
                    let list: Vec<Value> =
                        list.map(|(i, schema)| self.subset(schema, &format!("{at}/{i}"), seen)).collect();
                    out.insert(keyword.clone(), list.into());
                }
                "exclusiveMinimum" | "exclusiveMaximum" if value.is_boolean() => {
                    // 3.0: a flag on minimum/maximum.
                    let bound = if keyword == "exclusiveMinimum" { "minimum" } else { "maximum" };
                    if let (Some(true), Some(limit)) = (value.as_bool(), object.get(bound)) {
                        out.insert(keyword.clone(), limit.clone());
                    }
                }
                "minimum" | "maximum"
                    if object.get(if keyword == "minimum" { "exclusiveMinimum" } else { "exclusiveMaximum" })
                        == Some(&Value::Bool(true)) => {}
                "example" => {
                    out.insert("examples".into(), json!([value]));
                }
                known if SUPPORTED.contains(&known) => {
                    out.insert(keyword.clone(), value.clone());
                }
                other => self.warnings.push(format!("#{at}: `{other}` is not checked by the gateway; left out")),
            }
        }
        if nullable {
            match out.get("type").cloned() {
                Some(Value::String(kind)) => {
                    out.insert("type".into(), json!([kind, "null"]));
                }
                Some(Value::Array(mut kinds)) => {
                    kinds.push("null".into());
                    out.insert("type".into(), kinds.into());
                }
                _ => {}
            }
        }
        Value::Object(out)
    }

    /// A `$ref`'d object (a request body, a security scheme) as its target.
    fn resolve(&self, value: &Value) -> Value {
        match value.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.spec.pointer(pointer).cloned().unwrap_or(Value::Null),
            None => value.clone(),
        }
    }
}

/// A `security` list with no empty alternative: some credential is required.
fn requires_credential(security: Option<&Value>) -> bool {
    security.and_then(Value::as_array).is_some_and(|alternatives| {
        !alternatives.is_empty() && alternatives.iter().all(|a| a.as_object().is_some_and(|a| !a.is_empty()))
    })
}

fn is_json(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or_default().trim();
    media == "application/json" || media.ends_with("+json")
}

/// Every `{param}` fills a whole segment (matchit matches no partial segments).
fn whole_segment_params(path: &str) -> bool {
    path.split('/').all(|segment| {
        !segment.contains(['{', '}'])
            || (segment.starts_with('{') && segment.ends_with('}') && segment.matches('{').count() == 1)
    })
}

/// A name as a routes-file identifier (letters, digits, `-`, `_`, `.`).
fn identifier(name: &str) -> String {
    let id: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect();
    if id.is_empty() {
        "scheme".to_owned()
    } else {
        id
    }
}

fn unique_id(ids: &mut BTreeMap<String, usize>, operation_id: Option<&str>, method: &str, path: &str) -> String {
    let base = match operation_id {
        Some(id) => identifier(id),
        None => identifier(&format!("{method}{}", path.replace(['{', '}'], "").replace('/', "-"))),
    };
    let n = ids.entry(base.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        base
    } else {
        format!("{base}-{n}")
    }
}

/// A JSON pointer token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
