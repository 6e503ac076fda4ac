//! Turns a [`RoutesFile`] into an immutable [`Gateway`], reporting every error at once.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use super::auth::{compile_requirement, compile_schemes};
use super::error::{did_you_mean, ConfigError, ConfigErrorKind as Kind};
use super::model::{Cors, RouteAuthSetting, RouteCors, RouteRateLimit, RoutesFile};
use super::ratelimit::{compile_policies, resolve};
use super::{aggregate, body, edits, ip, upstreams};
use crate::cors::{CorsPolicy, OriginPattern};
use crate::route::{CompiledRoute, HostPattern, PathPlan, Piece, UpstreamTarget};
use crate::router::{Router, RouterError};
use crate::Gateway;

/// Default upstream timeout when neither the route nor `defaults` sets one.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default request-body limit when neither the route nor `defaults` sets one.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
const MAX_TIMEOUT_MS: u64 = 600_000;

/// Parses and compiles a routes file, reporting every error it can find. A structural error
/// (an unknown key, a wrong type) is reported and the offending key set aside so that the rest
/// of the file is read too, down to its semantic errors; reading stops at a syntax error or
/// where setting a key aside would leave a list element or the whole file unreadable.
pub fn from_json(text: &str) -> Result<Gateway, Vec<ConfigError>> {
    // A file that reads cleanly (always, at runtime: the build checked it) skips the path
    // tracking, which costs about as much as the parse itself; only a broken file pays for
    // the tracked reads that name where it broke.
    match serde_json::from_str::<RoutesFile>(text) {
        Ok(file) => compile(&file).map(|gateway| gateway.with_fingerprint(text)),
        Err(error) => Err(located(text, &error)),
    }
}

/// Most structural errors reported before giving up on a file.
#[cfg(not(target_arch = "wasm32"))]
const MAX_STRUCTURAL_ERRORS: usize = 20;

/// Every structural error of a file that does not read, each with its JSON path (from tracked
/// reads), then the semantic errors of what reads once they are set aside.
#[cfg(not(target_arch = "wasm32"))]
fn located(text: &str, _error: &serde_json::Error) -> Vec<ConfigError> {
    let mut value = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => value,
        Err(error) => {
            return vec![ConfigError::new(Kind::Syntax, "$", error.to_string()).hint("the file must be valid JSON")];
        }
    };
    let mut errors = Vec::new();
    for _ in 0..MAX_STRUCTURAL_ERRORS {
        match serde_path_to_error::deserialize::<_, RoutesFile>(&value) {
            Ok(file) => {
                if let Err(semantic) = compile(&file) {
                    errors.extend(semantic);
                }
                break;
            }
            Err(error) => {
                errors.push(structural_error(&error));
                if !set_aside(&mut value, error.path()) {
                    break;
                }
            }
        }
    }
    errors
}

/// Removes the object member a structural error names, so the next read gets past it. `false`
/// when the path ends in a list element or at the top (removing those would renumber or empty
/// what later errors point at).
#[cfg(not(target_arch = "wasm32"))]
fn set_aside(value: &mut serde_json::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key }, parents)) = segments.split_last() else { return false };
    let mut node = value;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Map { key }, serde_json::Value::Object(map)) => match map.get_mut(key) {
                Some(child) => child,
                None => return false,
            },
            (Segment::Seq { index }, serde_json::Value::Array(items)) => match items.get_mut(*index) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        serde_json::Value::Object(map) => map.remove(key).is_some(),
        _ => false,
    }
}

/// In the wasm builds the file was checked, with paths, when it was embedded; a second,
/// tracked deserializer would only add ~140 KB to the component, so the runtime reports the
/// parser's own message (line and column).
#[cfg(target_arch = "wasm32")]
fn located(_text: &str, error: &serde_json::Error) -> Vec<ConfigError> {
    vec![ConfigError::new(Kind::Syntax, "$", error.to_string())]
}

#[cfg(not(target_arch = "wasm32"))]
fn structural_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    let inner = error.inner();
    let path = match error.path().to_string().as_str() {
        "." => "$".to_owned(),
        path => path.to_owned(),
    };
    let message = strip_position(&inner.to_string());
    if inner.is_syntax() || inner.is_eof() {
        return ConfigError::new(Kind::Syntax, "$", inner.to_string()).hint("the file must be valid JSON");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        // serde_path_to_error already ends the path with the unknown key.
        let at = if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else {
            format!("{path}.{field}")
        };
        let error = ConfigError::new(Kind::UnknownField, at, format!("unknown field \"{field}\""));
        return match did_you_mean(field, expected.iter().copied()) {
            Some(hint) => error.hint(hint),
            None => error.hint(format!("allowed here: {}", expected.join(", "))),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return ConfigError::new(Kind::MissingField, path, format!("missing required field \"{field}\""));
    }
    ConfigError::new(Kind::InvalidValue, path, message)
}

#[cfg(not(target_arch = "wasm32"))]
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message.get(..index).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

pub(super) struct Compiler {
    pub errors: Vec<ConfigError>,
}

impl Compiler {
    pub(super) fn error(&mut self, kind: Kind, path: impl Into<String>, reason: impl Into<String>) -> &mut ConfigError {
        self.errors.push(ConfigError::new(kind, path, reason));
        let last = self.errors.len() - 1;
        #[allow(clippy::indexing_slicing)] // just pushed
        &mut self.errors[last]
    }
}

/// Compiles an already-parsed file.
pub fn compile(file: &RoutesFile) -> Result<Gateway, Vec<ConfigError>> {
    let mut c = Compiler { errors: Vec::new() };
    if file.version != 1 {
        c.error(Kind::UnsupportedVersion, "version", format!("unsupported version {}", file.version)).hint =
            Some("this gateway reads version 1".into());
    }

    let mut upstreams = Vec::new();
    let mut pools = Vec::new();
    let mut upstream_index = HashMap::new();
    for (name, upstream) in &file.upstreams {
        let path = format!("upstreams.{name}");
        if !is_identifier(name) {
            c.error(Kind::InvalidValue, &path, format!("invalid upstream name \"{name}\"")).hint =
                Some("use letters, digits, '-', '_' and '.'".into());
        }
        let urls: Vec<(String, &str, u32)> = match (&upstream.url, &upstream.targets) {
            (Some(url), None) => vec![(format!("{path}.url"), url.as_str(), 1)],
            (None, Some(targets)) if !targets.is_empty() => targets
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("{path}.targets[{i}].url"), t.url.as_str(), t.weight.unwrap_or(1)))
                .collect(),
            (Some(_), Some(_)) => {
                c.error(Kind::InvalidValue, format!("{path}.targets"), "\"url\" and \"targets\" exclude each other");
                continue;
            }
            _ => {
                c.error(Kind::MissingField, &path, "missing \"url\" (or a non-empty \"targets\" list)");
                continue;
            }
        };
        let mut members = Vec::new();
        let mut weights = Vec::new();
        for (at, url, weight) in urls {
            match parse_upstream_url(url) {
                Ok(target) => {
                    members.push(upstreams.len());
                    weights.push(weight);
                    upstreams.push(target);
                }
                Err((reason, hint)) => {
                    c.error(Kind::InvalidValue, at, reason).hint = Some(hint.into());
                }
            }
        }
        if let Some(pool) = upstreams::pool(&mut c, &path, upstream, members, weights) {
            upstream_index.insert(name.as_str(), pools.len());
            pools.push(pool);
        }
    }

    let defaults = &file.defaults;
    let default_timeout =
        check_timeout(&mut c, "defaults.timeout_ms", defaults.timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS);
    let default_idle = check_timeout(&mut c, "defaults.idle_timeout_ms", defaults.idle_timeout_ms);
    let default_body = defaults.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let access_log = match defaults.access_log.as_deref() {
        None | Some("all") => crate::log::AccessLogMode::All,
        Some("errors") => crate::log::AccessLogMode::Errors,
        Some("off") => crate::log::AccessLogMode::Off,
        Some(other) => {
            c.error(Kind::InvalidValue, "defaults.access_log", format!("unknown value \"{other}\"")).hint =
                Some("use \"all\", \"errors\" or \"off\"".into());
            crate::log::AccessLogMode::All
        }
    };
    let access_log = match (defaults.access_log_sample, access_log) {
        (None, mode) => mode,
        // The message does not print the number: float formatting would add ~20 KB to the wasm.
        (Some(share), _) if !(share > 0.0 && share <= 1.0) => {
            c.error(Kind::InvalidValue, "defaults.access_log_sample", "a share must be above 0 and at most 1").hint =
                Some("0.1: one success in ten gets a line; 1: every one".into());
            access_log
        }
        (Some(share), crate::log::AccessLogMode::All) => crate::log::AccessLogMode::sampled(share),
        (Some(_), _) => {
            c.error(Kind::InvalidValue, "defaults.access_log_sample", "samples only what access_log \"all\" logs")
                .hint = Some("remove it, or set access_log to \"all\"".into());
            access_log
        }
    };
    let mut cors_policies = Vec::new();
    let default_cors = defaults.cors.as_ref().and_then(|cors| {
        let policy = compile_cors(&mut c, "defaults.cors", cors, None)?;
        cors_policies.push(policy);
        Some(cors_policies.len() - 1)
    });

    let (mut auth, scheme_names) = compile_schemes(&mut c, &file.auth);
    let mut requirements = Vec::new();
    let default_auth = defaults.auth.as_ref().and_then(|auth_setting| {
        let requirement = compile_requirement(&mut c, "defaults.auth", auth_setting, &scheme_names, &auth)?;
        requirements.push(requirement);
        Some(requirements.len() - 1)
    });

    let (rate_policies, policy_names) = compile_policies(&mut c, &file.rate_limits);
    let default_limits: Box<[usize]> = match &defaults.rate_limit {
        Some(list) => resolve(&mut c, "defaults.rate_limit", list, &policy_names),
        None => Box::new([]),
    };

    let mut routes = Vec::new();
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut templates: Vec<(String, usize)> = Vec::new();
    for (index, route) in file.routes.iter().enumerate() {
        let at = format!("routes[{index}]");
        if !is_identifier(&route.id) {
            c.error(Kind::InvalidValue, format!("{at}.id"), format!("invalid route id \"{}\"", route.id)).hint =
                Some("use letters, digits, '-', '_' and '.'".into());
        }
        if let Some(first) = ids.insert(&route.id, index) {
            c.error(
                Kind::DuplicateRouteId,
                format!("{at}.id"),
                format!("route id \"{}\" is already used by routes[{first}]", route.id),
            )
            .hint = Some("route ids must be unique".into());
        }

        let params = match template_params(&route.matcher.path) {
            Ok(params) => {
                templates.push((route.matcher.path.clone(), index));
                params
            }
            Err(reason) => {
                c.error(Kind::InvalidPathTemplate, format!("{at}.match.path"), reason).hint =
                    Some("write e.g. \"/users/{id}\" or \"/static/{*rest}\"".into());
                Vec::new()
            }
        };

        let methods = compile_methods(&mut c, &format!("{at}.match.methods"), route.matcher.methods.as_deref());
        let host = route.matcher.host.as_deref().and_then(|host| match HostPattern::parse(host) {
            Some(pattern) => Some(pattern),
            None => {
                c.error(Kind::InvalidValue, format!("{at}.match.host"), format!("invalid host pattern \"{host}\""))
                    .hint = Some("write \"api.example.com\" or \"*.example.com\", without scheme or port".into());
                None
            }
        });
        let mut headers = Vec::new();
        for (name, value) in route.matcher.headers.iter().flatten() {
            match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                _ => {
                    c.error(
                        Kind::InvalidValue,
                        format!("{at}.match.headers.{name}"),
                        format!("invalid header matcher \"{name}: {value}\""),
                    );
                }
            }
        }
        headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));

        let upstream = match (&route.upstream, &route.aggregate) {
            (Some(name), None) => match upstream_index.get(name.as_str()) {
                Some(&u) => u,
                None => {
                    let error = c.error(
                        Kind::UnknownUpstream,
                        format!("{at}.upstream"),
                        format!("unknown upstream \"{name}\""),
                    );
                    error.hint = did_you_mean(name, file.upstreams.keys().map(String::as_str))
                        .or_else(|| Some("declare it under \"upstreams\"".into()));
                    usize::MAX
                }
            },
            (None, Some(_)) => usize::MAX,
            (Some(_), Some(_)) => {
                c.error(
                    Kind::InvalidValue,
                    format!("{at}.aggregate"),
                    "\"upstream\" and \"aggregate\" exclude each other",
                )
                .hint = Some("an aggregate names an upstream per leg".into());
                usize::MAX
            }
            (None, None) => {
                c.error(Kind::MissingField, at.clone(), "missing required field \"upstream\"").hint =
                    Some("name an upstream, or give \"aggregate\" legs".into());
                usize::MAX
            }
        };

        let path_plan = match (&route.strip_prefix, &route.rewrite) {
            (Some(_), Some(_)) => {
                c.error(
                    Kind::InvalidValue,
                    format!("{at}.rewrite"),
                    "\"strip_prefix\" and \"rewrite\" exclude each other",
                )
                .hint = Some("keep one of them".into());
                PathPlan::AsIs
            }
            (Some(prefix), None) => {
                if is_strip_prefix_of(prefix, &route.matcher.path) {
                    PathPlan::StripPrefix(prefix.as_str().into())
                } else {
                    c.error(
                        Kind::InvalidValue,
                        format!("{at}.strip_prefix"),
                        format!("\"{prefix}\" is not a literal prefix of the path \"{}\"", route.matcher.path),
                    )
                    .hint =
                        Some("it must start with '/', end before a '/' of the path and contain no parameter".into());
                    PathPlan::AsIs
                }
            }
            (None, Some(rewrite)) => match parse_rewrite(rewrite, &params) {
                Ok(pieces) => PathPlan::Rewrite(pieces),
                Err((kind, reason, hint)) => {
                    c.error(kind, format!("{at}.rewrite"), reason).hint = Some(hint);
                    PathPlan::AsIs
                }
            },
            (None, None) => PathPlan::AsIs,
        };

        let timeout_ms =
            check_timeout(&mut c, &format!("{at}.timeout_ms"), route.timeout_ms).unwrap_or(default_timeout);
        let idle_timeout = match route.idle_timeout_ms {
            Some(_) => check_timeout(&mut c, &format!("{at}.idle_timeout_ms"), route.idle_timeout_ms),
            None => default_idle,
        }
        .map(Duration::from_millis);
        let socket_lifetime = route.websocket.as_ref().and_then(|socket| {
            if (1..=MAX_SOCKET_LIFETIME_MS).contains(&socket.max_lifetime_ms) {
                Some(Duration::from_millis(socket.max_lifetime_ms))
            } else {
                let at = format!("{at}.websocket.max_lifetime_ms");
                c.error(Kind::InvalidValue, at, format!("lifetime {} ms is out of range", socket.max_lifetime_ms))
                    .hint = Some(format!("use 1 to {MAX_SOCKET_LIFETIME_MS}"));
                None
            }
        });
        let cors = match &route.cors {
            None => default_cors,
            Some(RouteCors::Enabled(false)) => None,
            Some(RouteCors::Enabled(true)) => {
                c.error(Kind::InvalidValue, format!("{at}.cors"), "`true` is not a CORS policy").hint =
                    Some("write a policy object, or false to turn CORS off".into());
                None
            }
            Some(RouteCors::Policy(cors)) => {
                compile_cors(&mut c, &format!("{at}.cors"), cors, methods.as_deref()).map(|policy| {
                    cors_policies.push(policy);
                    cors_policies.len() - 1
                })
            }
        };

        let route_auth = match &route.auth {
            None => default_auth,
            Some(RouteAuthSetting::Enabled(false)) => None,
            Some(RouteAuthSetting::Enabled(true)) => {
                c.error(Kind::InvalidValue, format!("{at}.auth"), "`true` is not an auth requirement").hint =
                    Some("write {\"any_of\": [\"<scheme>\"]}, or false for a public route".into());
                None
            }
            Some(RouteAuthSetting::Require(requirement)) => {
                compile_requirement(&mut c, &format!("{at}.auth"), requirement, &scheme_names, &auth).map(|r| {
                    requirements.push(r);
                    requirements.len() - 1
                })
            }
        };

        let rate_limits = match &route.rate_limit {
            None => default_limits.clone(),
            Some(RouteRateLimit::Enabled(false)) => Box::new([]),
            Some(RouteRateLimit::Enabled(true)) => {
                c.error(Kind::InvalidValue, format!("{at}.rate_limit"), "`true` is not a list of policies").hint =
                    Some("name policies from \"rate_limits\", or write false".into());
                Box::new([])
            }
            Some(RouteRateLimit::Policies(list)) => resolve(&mut c, &format!("{at}.rate_limit"), list, &policy_names),
        };

        let ip = route.ip.as_ref().map(|lists| ip::ip_filter(&mut c, &format!("{at}.ip"), lists));
        let request_edits = route
            .request
            .as_ref()
            .and_then(|r| r.headers.as_ref())
            .map(|edits| edits::header_edits(&mut c, &format!("{at}.request.headers"), edits, &params));
        let query = route
            .request
            .as_ref()
            .and_then(|r| r.query.as_ref())
            .map(|policy| edits::query_plan(&mut c, &format!("{at}.request.query"), policy, &params));
        let response_edits = route
            .response
            .as_ref()
            .and_then(|r| r.headers.as_ref())
            .map(|edits| edits::header_edits(&mut c, &format!("{at}.response.headers"), edits, &params));
        let body = route
            .response
            .as_ref()
            .and_then(|r| r.body.as_ref())
            .map(|body| body::body_plan(&mut c, &format!("{at}.response.body"), body));
        let validate = route
            .validate_body
            .as_ref()
            .and_then(|schema| body::schema(&mut c, &format!("{at}.validate_body"), schema));
        let retry = route.retry.as_ref().and_then(|retry| upstreams::retry(&mut c, &format!("{at}.retry"), retry));
        let timeout = Duration::from_millis(timeout_ms);
        let aggregate = route.aggregate.as_ref().and_then(|aggregate| {
            aggregate::aggregate(&mut c, &format!("{at}.aggregate"), aggregate, &params, &upstream_index, timeout)
        });

        let cache = route.cache.as_ref().map(|cache| crate::route::CachePolicy {
            ttl_s: cache.ttl_s,
            vary: cache
                .vary
                .iter()
                .enumerate()
                .filter_map(|(i, name)| match HeaderName::try_from(name.as_str()) {
                    Ok(name) => Some(name),
                    Err(_) => {
                        c.error(
                            Kind::InvalidValue,
                            format!("{at}.cache.vary[{i}]"),
                            format!("invalid header name \"{name}\""),
                        );
                        None
                    }
                })
                .collect(),
            credentialed: cache.cache_credentialed.unwrap_or(false),
            set_cookie: cache.cache_set_cookie.unwrap_or(false),
        });
        if cache.is_some() && route.aggregate.is_some() {
            c.error(Kind::InvalidValue, format!("{at}.cache"), "aggregate answers are not cached");
        }

        routes.push(CompiledRoute {
            id: route.id.as_str().into(),
            methods,
            host,
            headers: headers.into(),
            upstream,
            path: path_plan,
            timeout,
            idle_timeout,
            socket_lifetime,
            max_body_bytes: route.max_body_bytes.unwrap_or(default_body),
            cors,
            auth: route_auth,
            rate_limits,
            ip,
            request_edits,
            query,
            response_edits,
            body,
            validate,
            retry,
            aggregate,
            cache,
            method_override: route.method_override.unwrap_or(false),
            allow_encoded_slashes: route.allow_encoded_slashes.or(defaults.allow_encoded_slashes).unwrap_or(false),
        });
    }
    auth.requirements = requirements.into();

    let (router, router_errors) = Router::build(&routes, &templates);
    c.errors.extend(router_errors.into_iter().map(|error| routing_error(error, &routes)));
    let openapi_path = file.openapi.as_ref().and_then(|openapi| {
        let literal = openapi.path.starts_with('/') && !openapi.path.contains(['{', '}', '?', '#', '%']);
        if !literal {
            c.error(Kind::InvalidValue, "openapi.path", format!("\"{}\" is not a literal path", openapi.path)).hint =
                Some("write a path such as /openapi.json".into());
        }
        literal.then_some(openapi.path.as_str())
    });
    if c.errors.is_empty() {
        // The document itself is made at build time (the adapters' build scripts) and handed
        // over with `Gateway::with_openapi_document`: building it here would cost every Spin
        // component its JSON tree in the pre-initialized memory.
        let openapi = openapi_path.map(|path| (Box::<str>::from(path), bytes::Bytes::new()));
        Ok(Gateway {
            identity_headers: auth.forwarded_header_names(),
            router,
            routes: routes.into(),
            upstreams: upstreams.into(),
            pools: pools.into(),
            cors: cors_policies.into(),
            default_cors,
            auth,
            rate_policies: rate_policies.into(),
            trust_forwarded: defaults.trust_forwarded_headers.unwrap_or(false),
            merge_slashes: defaults.merge_slashes.unwrap_or(true),
            access_log,
            openapi,
            fingerprint: None,
        })
    } else {
        Err(c.errors)
    }
}

/// A day: the longest a WebSocket may be held open by `websocket.max_lifetime_ms`.
const MAX_SOCKET_LIFETIME_MS: u64 = 86_400_000;

fn check_timeout(c: &mut Compiler, at: &str, value: Option<u64>) -> Option<u64> {
    let value = value?;
    if (1..=MAX_TIMEOUT_MS).contains(&value) {
        Some(value)
    } else {
        c.error(Kind::InvalidValue, at, format!("timeout {value} ms is out of range")).hint =
            Some(format!("use 1 to {MAX_TIMEOUT_MS}"));
        None
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn compile_methods(c: &mut Compiler, at: &str, methods: Option<&[String]>) -> Option<Box<[Method]>> {
    let methods = methods?;
    if methods.is_empty() {
        c.error(Kind::InvalidValue, at, "an empty method list matches nothing").hint =
            Some("leave \"methods\" out to accept every method".into());
        return None;
    }
    let mut compiled: Vec<Method> = Vec::new();
    for (i, name) in methods.iter().enumerate() {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'-');
        match Method::from_bytes(name.as_bytes()) {
            Ok(method) if valid => {
                if compiled.contains(&method) {
                    c.error(Kind::InvalidValue, format!("{at}[{i}]"), format!("method \"{name}\" is listed twice"));
                } else {
                    compiled.push(method);
                }
            }
            _ => {
                c.error(Kind::InvalidValue, format!("{at}[{i}]"), format!("invalid method \"{name}\"")).hint =
                    Some("methods are upper case, e.g. \"GET\"".into());
            }
        }
    }
    Some(compiled.into())
}

/// Parameter names a path template captures, or why it is not a template.
fn template_params(path: &str) -> Result<Vec<String>, String> {
    if !path.starts_with('/') {
        return Err(format!("path \"{path}\" must start with '/'"));
    }
    if path.contains(['?', '#']) {
        return Err(format!("path \"{path}\" must not contain a query or fragment"));
    }
    let mut params = Vec::new();
    let mut segments = path.split('/').peekable();
    while let Some(segment) = segments.next() {
        if let Some(open) = segment.find('{') {
            let inner = segment.get(open + 1..).and_then(|s| s.strip_suffix('}'));
            let Some(inner) = inner else {
                return Err(format!("parameter in \"{segment}\" must end the segment with '}}'"));
            };
            let (catch_all, name) = match inner.strip_prefix('*') {
                Some(name) => (true, name),
                None => (false, inner),
            };
            if catch_all && (open != 0 || segments.peek().is_some()) {
                return Err(format!("catch-all \"{segment}\" must be the whole last segment"));
            }
            if !is_identifier(name) || name.contains(['{', '}']) {
                return Err(format!("invalid parameter name \"{name}\""));
            }
            if params.iter().any(|p| p == name) {
                return Err(format!("parameter \"{name}\" appears twice"));
            }
            params.push(name.to_owned());
        } else if segment.contains('}') {
            return Err(format!("unmatched '}}' in \"{segment}\""));
        }
    }
    Ok(params)
}

fn is_strip_prefix_of(prefix: &str, path: &str) -> bool {
    prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && !prefix.contains(['{', '}'])
        && path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn parse_rewrite(template: &str, params: &[String]) -> Result<Box<[Piece]>, (Kind, String, String)> {
    let invalid = |reason: String| (Kind::InvalidValue, reason, "write e.g. \"/v2/users/{id}\"".to_owned());
    if !template.starts_with('/') {
        return Err(invalid(format!("rewrite \"{template}\" must start with '/'")));
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (literal, after) = rest.split_at(open);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal.into()));
        }
        let Some(close) = after.find('}') else {
            return Err(invalid(format!("unclosed '{{' in \"{template}\"")));
        };
        let name = after.get(1..close).unwrap_or_default();
        let name = name.strip_prefix('*').unwrap_or(name);
        if !params.iter().any(|p| p == name) {
            let hint = did_you_mean(name, params.iter().map(String::as_str)).unwrap_or_else(|| {
                format!("the path captures: {}", if params.is_empty() { "nothing".into() } else { params.join(", ") })
            });
            return Err((
                Kind::UnknownParameter,
                format!("rewrite uses \"{{{name}}}\", which the path does not capture"),
                hint,
            ));
        }
        pieces.push(Piece::Param(name.into()));
        rest = after.get(close + 1..).unwrap_or_default();
    }
    if rest.contains('}') {
        return Err(invalid(format!("unmatched '}}' in \"{template}\"")));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.into()));
    }
    Ok(pieces.into())
}

fn parse_upstream_url(url: &str) -> Result<UpstreamTarget, (String, &'static str)> {
    let hint = "write e.g. \"https://users.internal.example.com/api\"";
    let uri: http::Uri = url.parse().map_err(|_| (format!("invalid URL \"{url}\""), hint))?;
    let scheme = match uri.scheme_str() {
        Some("http") | Some("https") => uri.scheme().cloned(),
        _ => None,
    };
    let (Some(scheme), Some(authority)) = (scheme, uri.authority().cloned()) else {
        return Err((format!("URL \"{url}\" needs an http:// or https:// scheme and a host"), hint));
    };
    if authority.as_str().contains('@') {
        return Err((
            format!("URL \"{url}\" must not carry credentials"),
            "send credentials as headers, never in routes.json",
        ));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err((format!("URL \"{url}\" must not have a query or fragment"), hint));
    }
    let base_path = uri.path().trim_end_matches('/');
    Ok(UpstreamTarget { scheme, authority, base_path: base_path.into() })
}

fn compile_cors(c: &mut Compiler, at: &str, cors: &Cors, route_methods: Option<&[Method]>) -> Option<CorsPolicy> {
    let errors_before = c.errors.len();
    let mut origins = Vec::new();
    for (i, origin) in cors.allow_origins.iter().enumerate() {
        match OriginPattern::parse(origin) {
            Some(pattern) => origins.push(pattern),
            None => {
                c.error(
                    Kind::InvalidValue,
                    format!("{at}.allow_origins[{i}]"),
                    format!("invalid origin \"{origin}\""),
                )
                .hint = Some("write \"https://app.example.com\", \"https://*.example.com\" or \"*\"".into());
            }
        }
    }
    let credentials = cors.allow_credentials.unwrap_or(false);
    if credentials && origins.iter().any(|o| matches!(o, OriginPattern::Any)) {
        c.error(
            Kind::InvalidValue,
            format!("{at}.allow_credentials"),
            "credentials cannot be allowed for origin \"*\"",
        )
        .hint = Some("list the origins explicitly".into());
    }
    let methods = match &cors.allow_methods {
        Some(list) => compile_methods(c, &format!("{at}.allow_methods"), Some(list)).unwrap_or_default(),
        None => route_methods
            .map(<[Method]>::to_vec)
            .map(Into::into)
            .unwrap_or_else(|| [Method::GET, Method::HEAD, Method::POST].into()),
    };
    let mut header_list = |key: &str, names: &Option<Vec<String>>| -> Vec<HeaderName> {
        let mut out = Vec::new();
        for (i, name) in names.iter().flatten().enumerate() {
            match HeaderName::try_from(name.as_str()) {
                Ok(name) => out.push(name),
                Err(_) => {
                    c.error(Kind::InvalidValue, format!("{at}.{key}[{i}]"), format!("invalid header name \"{name}\""));
                }
            }
        }
        out
    };
    let allow_headers = header_list("allow_headers", &cors.allow_headers);
    let expose_headers = header_list("expose_headers", &cors.expose_headers);
    if let Some(age) = cors.max_age_s.filter(|age| *age > 86_400) {
        c.error(Kind::InvalidValue, format!("{at}.max_age_s"), format!("max age {age} s is out of range")).hint =
            Some("use 0 to 86400".into());
    }
    if c.errors.len() > errors_before {
        return None;
    }
    let policy = CorsPolicy::new(origins, &methods, &allow_headers, &expose_headers, credentials, cors.max_age_s);
    Some(policy.keeping_upstream_headers(cors.keep_upstream_headers.unwrap_or(false)))
}

/// A route the router cannot take as written, located in the file.
fn routing_error(error: RouterError, routes: &[CompiledRoute]) -> ConfigError {
    match error {
        RouterError::Conflict { route, template, with, other } => {
            let with = match other {
                Some(i) => format!("routes[{i}] (\"{with}\")"),
                None => format!("\"{with}\""),
            };
            ConfigError::new(
                Kind::ConflictingRoutes,
                format!("routes[{route}].match.path"),
                format!("path \"{template}\" conflicts with {with}"),
            )
            .hint("give parameters in the same position the same name, or make the paths differ by a literal segment")
        }
        RouterError::InvalidTemplate { route, template, reason } => ConfigError::new(
            Kind::InvalidPathTemplate,
            format!("routes[{route}].match.path"),
            format!("path \"{template}\": {reason}"),
        )
        .hint("write e.g. \"/users/{id}\" or \"/static/{*rest}\""),
        RouterError::Shadowed { route, first } => {
            let first_id = routes.get(first).map_or("", |r| &r.id);
            ConfigError::new(
                Kind::ConflictingRoutes,
                format!("routes[{route}].match"),
                format!("matches the same requests as routes[{first}] (\"{first_id}\"), so one of them is never taken"),
            )
            .hint("make the methods disjoint, or add a host or header condition")
        }
    }
}
