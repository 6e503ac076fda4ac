//! The one async orchestration. Phases, in order: match route → CORS preflight → request
//! checks (path, body size) → forward → response hygiene → observability headers → log.
//! Every rejection is a response; nothing here fails or panics.

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ALLOW, CONTENT_LENGTH, HOST, ORIGIN};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response};

use crate::deadline::with_timeout;
use crate::hygiene::{self, SERVER_TIMING, X_REQUEST_ID};
use crate::log::{push_number, AccessRecord};
use crate::ports::{Body, BodyError, Client, FetchError, Platform};
use crate::problem::{problem, ProblemKind};
use crate::resilience::{cohort_hash, AttemptOutcome};
use crate::router::RouteMatch;
use crate::transform::body::OnInvalidBody;
use crate::transform::edits::Context;
use crate::Gateway;

/// What the log and the observability headers need to know about the request's journey.
struct Outcome<B> {
    response: Response<B>,
    route: Option<usize>,
    upstream_status: Option<u16>,
    upstream_ms: Option<u64>,
    /// The CORS policy that decorates the response, if any.
    cors: Option<usize>,
    /// Who called, once authenticated.
    principal: Option<String>,
}

impl<B> Outcome<B> {
    fn local(response: Response<B>, route: Option<usize>, cors: Option<usize>) -> Self {
        Self { response, route, upstream_status: None, upstream_ms: None, cors, principal: None }
    }
}

/// Handles one request end to end. Never fails: every rejection is a problem response.
pub async fn handle<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    request: Request<P::Body>,
    client: &Client,
) -> Response<P::Body> {
    let started = platform.now();
    // One client, one address: an IPv4-mapped IPv6 address is its IPv4 address for IP lists,
    // rate-limit keys and X-Forwarded-For alike.
    let client = &Client { ip: client.ip.map(|ip| ip.to_canonical()), ..*client };
    let (mut parts, body) = request.into_parts();
    // Before anything reads them: identity and forwarding headers are the gateway's to set.
    let method_override =
        hygiene::sanitize_inbound(&mut parts.headers, &gateway.identity_headers, gateway.trust_forwarded);

    let request_id = match parts.headers.get(&X_REQUEST_ID) {
        Some(id) if gateway.trust_forwarded || hygiene::is_well_formed_request_id(id.as_bytes()) => id.clone(),
        _ => hygiene::new_request_id(platform),
    };
    let request_id_str = request_id.to_str().unwrap_or_default().to_owned();
    let origin = parts.headers.get(ORIGIN).cloned();

    let outcome =
        route_and_forward(gateway, platform, &mut parts, body, client, &request_id, &request_id_str, method_override)
            .await;

    let Outcome { mut response, route, upstream_status, upstream_ms, cors, principal } = outcome;
    let finished = platform.now();
    let duration_ms = finished.saturating_sub(started);
    let headers = response.headers_mut();
    if response_is_not_upgrade(upstream_status) {
        hygiene::strip_hop_by_hop(headers);
    }
    headers.insert(&X_REQUEST_ID, request_id);
    let mut timing = String::with_capacity(40);
    timing.push_str("edgegate;dur=");
    push_number(&mut timing, duration_ms.saturating_sub(upstream_ms.unwrap_or(0)), 1);
    if let Some(upstream) = upstream_ms {
        timing.push_str(", upstream;dur=");
        push_number(&mut timing, upstream, 1);
    }
    if let Ok(timing) = HeaderValue::try_from(timing) {
        headers.append(&SERVER_TIMING, timing);
    }
    if let Some(policy) = cors.and_then(|i| gateway.cors.get(i)) {
        policy.decorate(origin.as_ref(), headers);
    }

    if !gateway.access_log.logs(response.status().as_u16()) {
        return response;
    }
    let route_id = route.and_then(|i| gateway.routes.get(i)).map(|r| &*r.id);
    let record = AccessRecord {
        time: started,
        request_id: &request_id_str,
        route: route_id,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        status: response.status().as_u16(),
        upstream_status,
        duration_ms,
        upstream_ms,
        principal: principal.as_deref(),
    };
    platform.log(&record.to_json());
    response
}

fn response_is_not_upgrade(upstream_status: Option<u16>) -> bool {
    upstream_status != Some(101)
}

/// `uri` with another path, its query kept.
fn with_path(uri: &http::Uri, path: &str) -> Option<http::Uri> {
    let mut path_and_query = String::with_capacity(path.len() + uri.query().map_or(0, |q| q.len() + 1));
    path_and_query.push_str(path);
    if let Some(query) = uri.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(http::uri::PathAndQuery::try_from(path_and_query).ok()?);
    http::Uri::from_parts(parts).ok()
}

/// `host[:port]` as the client addressed it: the URI authority, else the `Host` header.
fn original_authority(parts: &Parts) -> Option<&str> {
    authority_of(&parts.uri, &parts.headers)
}

fn authority_of<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    match uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => headers.get(HOST)?.to_str().ok(),
    }
}

/// The host of an authority without its port; an IPv6 literal keeps its brackets, as
/// `http::uri::Authority::host` does.
fn host_without_port(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(rest) => {
            rest.split_once(']').map_or(authority, |(ip, _)| authority.get(..ip.len() + 2).unwrap_or(authority))
        }
        None => authority.split_once(':').map_or(authority, |(name, _)| name),
    }
}

#[allow(clippy::too_many_arguments)]
async fn route_and_forward<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    parts: &mut Parts,
    body: P::Body,
    client: &Client,
    request_id: &HeaderValue,
    request_id_str: &str,
    method_override: bool,
) -> Outcome<P::Body> {
    // One reading of the path for routing and the upstream alike (see `path`).
    let encoded_slash = match crate::path::normalize(parts.uri.path(), gateway.merge_slashes) {
        Ok(normalized) => {
            let encoded_slash = normalized.encoded_slash;
            if let std::borrow::Cow::Owned(path) = normalized.path {
                match with_path(&parts.uri, &path) {
                    Some(uri) => parts.uri = uri,
                    None => {
                        let response =
                            problem(ProblemKind::BadRequest, "The path cannot be normalized.", request_id_str);
                        return Outcome::local(response, None, gateway.default_cors);
                    }
                }
            }
            encoded_slash
        }
        Err(refusal) => {
            let response = problem(ProblemKind::BadRequest, refusal.description(), request_id_str);
            return Outcome::local(response, None, gateway.default_cors);
        }
    };
    let path = parts.uri.path();
    let host = original_authority(parts).map(host_without_port);
    if let Some((_, document)) = gateway.openapi.as_ref().filter(|(at, document)| **at == *path && !document.is_empty())
    {
        if parts.method == Method::GET || parts.method == Method::HEAD {
            let body =
                if parts.method == Method::GET { P::Body::from_bytes(document.clone()) } else { P::Body::empty() };
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.oai.openapi+json"));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(document.len()));
            return Outcome::local(response, None, gateway.default_cors);
        }
    }

    // A CORS preflight is matched as the request it announces.
    let preflight = match (&parts.method, parts.headers.get(ORIGIN), parts.headers.get(ACCESS_CONTROL_REQUEST_METHOD)) {
        (&Method::OPTIONS, Some(origin), Some(requested)) => {
            Method::from_bytes(requested.as_bytes()).ok().map(|requested| (requested, origin))
        }
        _ => None,
    };
    if let Some((requested, origin)) = &preflight {
        if let RouteMatch::Found { route, .. } =
            gateway.router.find(&gateway.routes, requested, host, &parts.headers, path)
        {
            if let Some(policy) = gateway.routes.get(route).and_then(|r| r.cors).and_then(|i| gateway.cors.get(i)) {
                return match policy.preflight(origin, requested, &parts.headers) {
                    Ok(headers) => {
                        let mut response = Response::new(P::Body::empty());
                        *response.status_mut() = http::StatusCode::NO_CONTENT;
                        response.headers_mut().extend(headers);
                        // Already decorated; the origin is echoed only when allowed.
                        Outcome::local(response, Some(route), None)
                    }
                    Err(refusal) => {
                        let detail = match refusal {
                            crate::cors::PreflightRefusal::Origin => "This origin is not allowed.",
                            crate::cors::PreflightRefusal::Method => {
                                "This method is not allowed for cross-origin requests."
                            }
                            crate::cors::PreflightRefusal::Headers => {
                                "A requested header is not allowed for cross-origin requests."
                            }
                        };
                        let mut response = problem(ProblemKind::CorsRejected, detail, request_id_str);
                        crate::cors::CorsPolicy::preflight_vary(response.headers_mut());
                        Outcome::local(response, Some(route), None)
                    }
                };
            }
        }
    }

    let (route_index, params) = match gateway.router.find(&gateway.routes, &parts.method, host, &parts.headers, path) {
        RouteMatch::Found { route, params } => (route, params),
        RouteMatch::MethodNotAllowed { allow } => {
            let mut response =
                problem(ProblemKind::MethodNotAllowed, "This path does not accept this method.", request_id_str);
            let list = allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            if let Ok(list) = HeaderValue::try_from(list) {
                response.headers_mut().insert(ALLOW, list);
            }
            return Outcome::local(response, None, gateway.default_cors);
        }
        RouteMatch::NotFound => {
            return Outcome::local(
                problem(ProblemKind::RouteNotFound, "No route matches this request.", request_id_str),
                None,
                gateway.default_cors,
            );
        }
    };
    let route = gateway.routes.get(route_index);
    let Some(route) = route.filter(|r| r.aggregate.is_some() || gateway.pools.get(r.upstream).is_some()) else {
        return Outcome::local(
            problem(ProblemKind::Internal, "The gateway could not handle this request.", request_id_str),
            None,
            None,
        );
    };
    if encoded_slash && !route.allow_encoded_slashes {
        let detail = crate::path::PathRefusal::EncodedSlash.description();
        return Outcome::local(problem(ProblemKind::BadRequest, detail, request_id_str), Some(route_index), route.cors);
    }
    if method_override && !route.method_override {
        for name in hygiene::METHOD_OVERRIDE_HEADERS {
            parts.headers.remove(name);
        }
    }
    if let Some(filter) = &route.ip {
        if !filter.permits(client.ip) {
            let response =
                problem(ProblemKind::IpDenied, "Requests from this address are not allowed here.", request_id_str);
            return Outcome::local(response, Some(route_index), route.cors);
        }
    }

    // Whether the request carried credentials, before authentication strips them (caching).
    let credentialed =
        parts.headers.contains_key(http::header::AUTHORIZATION) || parts.headers.contains_key(http::header::COOKIE);

    // Authentication comes before the body is read: a refused caller costs no upload.
    let mut forwarded_query = None;
    let mut principal = None;
    let mut identity = crate::auth::Identity::Anonymous;
    if let Some(requirement) = route.auth.and_then(|i| gateway.auth.requirements.get(i)) {
        match crate::auth::authenticate(gateway, platform, requirement, &mut parts.headers, &parts.uri, request_id_str)
            .await
        {
            Ok(authenticated) => {
                forwarded_query = authenticated.query;
                principal = authenticated.identity.principal().map(str::to_owned);
                identity = authenticated.identity;
            }
            Err(response) => return Outcome::local(response, Some(route_index), route.cors),
        }
    }

    // Rate limits count authenticated callers, before the body is read.
    let mut rate_headers = None;
    if !route.rate_limits.is_empty() {
        let policies: Vec<&crate::ratelimit::RatePolicy> =
            route.rate_limits.iter().filter_map(|&i| gateway.rate_policies.get(i)).collect();
        match crate::ratelimit::enforce(
            &policies,
            platform,
            &route.id,
            client,
            &parts.headers,
            &identity,
            request_id_str,
        )
        .await
        {
            Ok(admitted) => rate_headers = admitted.headers,
            Err(response) => {
                return Outcome { principal, ..Outcome::local(response, Some(route_index), route.cors) };
            }
        }
    }
    let headers = std::mem::take(&mut parts.headers);
    let mut outcome = forward(
        gateway,
        platform,
        &parts.method,
        &parts.uri,
        headers,
        body,
        client,
        request_id,
        request_id_str,
        route_index,
        &params,
        path,
        forwarded_query,
        &identity,
        credentialed || !matches!(identity, crate::auth::Identity::Anonymous),
    )
    .await;
    outcome.principal = principal;
    if let Some(extra) = rate_headers {
        outcome.response.headers_mut().extend(extra);
    }
    outcome
}

/// The rest of a request that passed its checks: body limit and validation, request
/// transforms, the upstream call (with retries), response transforms.
#[allow(clippy::too_many_arguments)]
async fn forward<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    method: &Method,
    client_uri: &http::Uri,
    mut headers: http::HeaderMap,
    body: P::Body,
    client: &Client,
    request_id: &HeaderValue,
    request_id_str: &str,
    route_index: usize,
    params: &matchit::Params<'_, '_>,
    path: &str,
    forwarded_query: Option<String>,
    identity: &crate::auth::Identity,
    credentialed: bool,
) -> Outcome<P::Body> {
    let Some(route) = gateway.routes.get(route_index) else {
        return Outcome::local(
            problem(ProblemKind::Internal, "The gateway could not handle this request.", request_id_str),
            None,
            None,
        );
    };
    let local = |kind: ProblemKind, detail: &str| {
        Outcome::local(problem(kind, detail, request_id_str), Some(route_index), route.cors)
    };
    let too_large =
        || local(ProblemKind::PayloadTooLarge, &format!("The request body exceeds {} bytes.", route.max_body_bytes));

    let upgrade = *method == Method::GET && hygiene::is_websocket_upgrade(&headers);
    // A runtime may drop `Upgrade` before the gateway sees the request (Spin's host does, as a
    // hop-by-hop header); the handshake's own key still says what the client asked for.
    let handshake = upgrade || headers.contains_key(http::header::SEC_WEBSOCKET_KEY);
    if handshake && !<P as crate::ports::Fetch>::WEBSOCKETS {
        return local(
            ProblemKind::WebSocketUnsupported,
            "This runtime cannot pass a WebSocket upgrade on (wasi-http has no upgrade); serve this route from Workers.",
        );
    }
    if upgrade {
        // Browsers do not preflight a WebSocket, so the route's CORS origins are held to here.
        let policy = route.cors.and_then(|i| gateway.cors.get(i));
        if let (Some(policy), Some(origin)) = (policy, headers.get(ORIGIN)) {
            if !policy.allows_origin(origin) {
                return local(ProblemKind::CorsRejected, "This origin may not open a WebSocket here.");
            }
        }
    }

    // Body limit: a declared length is checked before reading; an undeclared one is counted
    // as it streams upstream. Validation and retries need the bytes; otherwise the body
    // streams through, never buffered.
    let declared = match headers.get(CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok())) {
        Some(None) => return local(ProblemKind::BadRequest, "Content-Length is not a number."),
        Some(Some(length)) if length > route.max_body_bytes => return too_large(),
        declared => declared.flatten(),
    };
    // A failover pool sends an undeclared body again to the next target (on Spin that is every
    // GET: wasi cannot tell an absent body from an empty stream), so it is read first.
    let failover = gateway
        .pools
        .get(route.upstream)
        .is_some_and(|pool| pool.balance == crate::resilience::Balance::Failover && pool.targets.len() > 1);
    let needs_bytes = route.validate.is_some() || route.retry.is_some() || (failover && declared.is_none());
    let body: Sendable<P::Body> = if body.is_known_empty() {
        Sendable::Bytes(bytes::Bytes::new())
    } else if !needs_bytes {
        // A declared length is held to by the runtime; an undeclared one is counted.
        let body = if declared.is_some() { body } else { body.limited(route.max_body_bytes) };
        Sendable::Stream(match route.idle_timeout {
            Some(idle) => body.idle_timeout(idle),
            None => body,
        })
    } else {
        // A client that stalls its upload must not hold the request forever.
        let Some(collected) = with_timeout(body.collect(route.max_body_bytes), platform.sleep(route.timeout)).await
        else {
            let detail = format!("The request body did not arrive within {} ms.", route.timeout.as_millis());
            return local(ProblemKind::RequestTimeout, &detail);
        };
        match collected {
            Ok(bytes) => {
                if !bytes.is_empty() {
                    if let Ok(length) = HeaderValue::try_from(bytes.len().to_string()) {
                        headers.insert(CONTENT_LENGTH, length);
                    }
                }
                // A platform that cannot tell an absent body from an empty stream (Spin) lands
                // here for every GET; forward it without inventing a `Content-Length: 0`.
                Sendable::Bytes(bytes)
            }
            Err(BodyError::TooLarge) => return too_large(),
            Err(_) => return local(ProblemKind::BadRequest, "The request body could not be read."),
        }
    };
    if let (Some(schema), Sendable::Bytes(bytes)) = (&route.validate, &body) {
        // The decoded body is validated; the upstream gets it as the client sent it.
        let coding = crate::encoding::coding(&headers);
        let decoded = match crate::encoding::decode(coding, bytes, route.max_body_bytes) {
            Ok(decoded) => decoded,
            Err(_) if coding == crate::encoding::Coding::Unreadable => {
                return local(
                    ProblemKind::UnsupportedEncoding,
                    "The request body's Content-Encoding cannot be read here; send it as identity, gzip or deflate.",
                );
            }
            Err(crate::encoding::DecodeError::TooLarge) => return too_large(),
            Err(crate::encoding::DecodeError::Invalid) => {
                return local(
                    ProblemKind::InvalidBody,
                    "The request body does not decode as its Content-Encoding says.",
                );
            }
        };
        let instance = match serde_json::from_slice::<serde_json::Value>(&decoded) {
            Ok(instance) => instance,
            Err(_) => return local(ProblemKind::InvalidBody, "The request body must be JSON."),
        };
        if let Err(error) = schema.validate(&instance) {
            return local(ProblemKind::InvalidBody, &format!("{}: {}", error.path, error.reason));
        }
    }

    let param_pairs: Vec<(&str, &str)> = params.iter().collect();
    let client_headers = if route.request_edits.is_some()
        || route.response_edits.is_some()
        || route.query.is_some()
        || route.aggregate.is_some()
        || gateway.pools.get(route.upstream).is_some_and(|pool| pool.sticky.is_some())
        || route.cache.is_some()
    {
        headers.clone()
    } else {
        http::HeaderMap::new()
    };
    let context = Context {
        params: &param_pairs,
        identity,
        client_ip: client.ip,
        request_id: request_id_str,
        method: method.as_str(),
        path,
        headers: &client_headers,
    };
    let client_query = match &forwarded_query {
        Some(query) => Some(query.as_str()).filter(|q| !q.is_empty()),
        None => client_uri.query(),
    };
    if let Some(aggregate) = &route.aggregate {
        let sent = platform.now();
        let targets: Vec<Option<&crate::route::UpstreamTarget>> = aggregate
            .legs
            .iter()
            .map(|leg| {
                let order = gateway.target_order(leg.upstream, random_u64(platform), None);
                let pool = gateway.pools.get(leg.upstream)?;
                order.first().and_then(|k| pool.targets.get(*k)).and_then(|t| gateway.upstreams.get(*t))
            })
            .collect();
        let mut common = http::HeaderMap::new();
        for name in [&hygiene::TRACEPARENT, &hygiene::TRACESTATE] {
            if let Some(value) = headers.get(name) {
                common.insert(name, value.clone());
            }
        }
        if gateway.trust_forwarded {
            for (name, value) in headers.iter().filter(|(name, _)| name.as_str().starts_with("x-forwarded-")) {
                common.append(name, value.clone());
            }
        }
        let original_host = authority_of(client_uri, &headers);
        hygiene::set_forwarding(&mut common, client, original_host, gateway.trust_forwarded);
        common.insert(&X_REQUEST_ID, request_id.clone());
        let merged = crate::aggregate::run(aggregate, &targets, platform, &context, &client_headers, &common).await;
        let upstream_ms = Some(platform.now().saturating_sub(sent));
        return match merged {
            crate::aggregate::Merged::Complete(mut value, complete) => {
                if let Some(plan) = &route.body {
                    value = plan.ops.apply(value);
                }
                let mut response = crate::aggregate::respond(&value, complete);
                if let Some(edits) = &route.response_edits {
                    edits.apply(response.headers_mut(), &context);
                }
                Outcome {
                    upstream_ms,
                    upstream_status: Some(200),
                    ..Outcome::local(response, Some(route_index), route.cors)
                }
            }
            crate::aggregate::Merged::RequiredFailed(leg, failure) => {
                let (kind, what) = match failure {
                    crate::aggregate::LegFailure::Timeout => (ProblemKind::UpstreamTimeout, "did not answer in time"),
                    crate::aggregate::LegFailure::Failed => (ProblemKind::UpstreamUnreachable, "failed"),
                };
                Outcome { upstream_ms, ..local(kind, &format!("The required part \"{leg}\" {what}.")) }
            }
        };
    }
    let Some(pool) = gateway.pools.get(route.upstream) else {
        return local(ProblemKind::Internal, "The gateway could not handle this request.");
    };
    let sticky = pool.sticky.as_ref().and_then(|key| sticky_value(key, &context)).map(|v| cohort_hash(&v));
    let order = gateway.target_order(route.upstream, random_u64(platform), sticky);
    let planned_query = route.query.as_ref().map(|plan| plan.apply(client_query, &context));
    let query = match &planned_query {
        Some(planned) => planned.as_deref(),
        None => client_query,
    };
    let mut candidates = Vec::with_capacity(order.len());
    for k in order {
        let Some(target) = pool.targets.get(k).and_then(|t| gateway.upstreams.get(*t)) else { continue };
        match target.uri_for(&route.path, path, params, query) {
            Ok(uri) => candidates.push((k, uri)),
            Err(_) => return local(ProblemKind::BadRequest, "The request path cannot be forwarded."),
        }
    }
    let original_host = authority_of(client_uri, &headers).map(str::to_owned);
    hygiene::strip_hop_by_hop(&mut headers);
    hygiene::set_forwarding(&mut headers, client, original_host.as_deref(), gateway.trust_forwarded);
    headers.insert(&X_REQUEST_ID, request_id.clone());
    hygiene::propagate_trace(&mut headers, platform);
    if let Some(edits) = &route.request_edits {
        edits.apply(&mut headers, &context);
    }
    if route.body.is_some() {
        // The gateway reads this answer: ask for bytes it can parse on every runtime, not a
        // compressed body that one runtime decodes and another does not.
        headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }

    let sent = platform.now();
    let cache = match &route.cache {
        None => CacheState::Off,
        Some(policy) if *method != Method::GET || upgrade || (credentialed && !policy.credentialed) => {
            CacheState::Bypass
        }
        Some(_) if !platform.cache_available() => CacheState::Unavailable,
        Some(policy) => {
            let key = cache_key(policy, original_host.as_deref(), path, client_query, &client_headers);
            let hit = platform.cache_match(&key).await;
            // RFC 9111 §4.1: a stored answer is reused only for a request that has the same
            // values of the headers it varies on; any other request is a miss.
            // Compared on what the upstream is sent (after request edits), which is what it varied on.
            if let Some(mut hit) = hit.filter(|hit| vary_matches(hit.headers(), &headers)) {
                hit.headers_mut().remove(&VARY_KEY);
                if let Some(edits) = &route.response_edits {
                    edits.apply(hit.headers_mut(), &context);
                }
                hit.headers_mut().insert(&CACHE_STATUS, HeaderValue::from_static("edgegate; hit"));
                return Outcome::local(hit, Some(route_index), route.cors);
            }
            CacheState::Miss(key)
        }
    };
    let in_flight = std::cell::Cell::new(None);
    // A streamed upload can be what stalls: a timeout then says nothing about the upstream.
    let streamed_upload = matches!(body, Sendable::Stream(_));
    let sent_headers = matches!(cache, CacheState::Miss(_)).then(|| headers.clone());
    let attempts = send_with_retries(gateway, platform, route, pool, method, &candidates, headers, body, &in_flight);
    let result = with_timeout(attempts, platform.sleep(route.timeout)).await;
    if result.is_none() && !streamed_upload {
        // The attempt the timeout cut short is a failure of its target.
        if let Some(target) = in_flight.get() {
            gateway.record(route.upstream, target, platform.now(), false);
        }
    }
    let upstream_ms = Some(platform.now().saturating_sub(sent));
    match result {
        Some(Ok(mut response)) => {
            let upstream_status = Some(response.status().as_u16());
            if let Some(edits) = &route.response_edits {
                edits.apply(response.headers_mut(), &context);
            }
            if let Some(plan) = route.body.as_ref().filter(|_| response.status().is_success()) {
                response = match transform_body(response, plan).await {
                    Ok(response) => response,
                    Err(()) => {
                        return Outcome {
                            upstream_ms,
                            upstream_status,
                            ..local(ProblemKind::BadUpstreamBody, "The upstream's answer could not be transformed.")
                        };
                    }
                };
            }
            let status = match (cache, &route.cache) {
                (CacheState::Off, _) | (_, None) => None,
                (CacheState::Bypass, _) => Some("edgegate; fwd=bypass"),
                (CacheState::Unavailable, _) => Some("edgegate; fwd=uri-miss; detail=no-edge-cache"),
                (CacheState::Miss(key), Some(policy)) => match storable_ttl(policy, &response) {
                    Some(ttl) => {
                        let fingerprint =
                            sent_headers.as_ref().and_then(|sent| vary_fingerprint(response.headers(), sent));
                        if let Some(fingerprint) = fingerprint {
                            response.headers_mut().insert(&VARY_KEY, fingerprint);
                        }
                        let (mut sent, stored) = platform.cache_put(&key, response, ttl).await;
                        sent.headers_mut().remove(&VARY_KEY);
                        response = sent;
                        Some(if stored { "edgegate; fwd=uri-miss; stored" } else { "edgegate; fwd=uri-miss" })
                    }
                    None => Some("edgegate; fwd=uri-miss"),
                },
            };
            if let Some(status) = status {
                response.headers_mut().insert(&CACHE_STATUS, HeaderValue::from_static(status));
            }
            if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                let limits =
                    crate::ports::SocketLimits { idle: route.idle_timeout, max_lifetime: route.socket_lifetime };
                response.extensions_mut().insert(limits);
            } else if let Some(idle) = route.idle_timeout {
                response = response.map(|body| body.idle_timeout(idle));
            }
            Outcome {
                upstream_status,
                response,
                route: Some(route_index),
                upstream_ms,
                cors: route.cors,
                principal: None,
            }
        }
        Some(Err(SendError::Fetch(FetchError::InvalidRequest(_)))) => {
            local(ProblemKind::BadRequest, "The request cannot be forwarded.")
        }
        Some(Err(SendError::Fetch(FetchError::BodyTooLarge))) => Outcome { upstream_ms, ..too_large() },
        Some(Err(SendError::Fetch(FetchError::BodyStalled))) => {
            let idle = route.idle_timeout.unwrap_or_default().as_millis();
            Outcome {
                upstream_ms,
                ..local(
                    ProblemKind::RequestTimeout,
                    &format!("The request body stalled: nothing arrived for {idle} ms."),
                )
            }
        }
        Some(Err(SendError::CircuitOpen)) => local(
            ProblemKind::UpstreamCircuitOpen,
            "The upstream is failing; the gateway stopped sending to it for a while.",
        ),
        Some(Err(_)) => {
            Outcome { upstream_ms, ..local(ProblemKind::UpstreamUnreachable, "The upstream could not be reached.") }
        }
        None => Outcome {
            upstream_ms,
            ..local(
                ProblemKind::UpstreamTimeout,
                &format!("The upstream did not answer within {} ms.", route.timeout.as_millis()),
            )
        },
    }
}

/// A request body as it goes upstream: the client's stream untouched, or bytes the gateway
/// read (and can send again on a retry).
enum Sendable<B> {
    Stream(B),
    Bytes(bytes::Bytes),
}

/// `Cache-Status` (RFC 9211).
static CACHE_STATUS: http::HeaderName = http::HeaderName::from_static("cache-status");

/// Where a cacheable request stands.
enum CacheState {
    Off,
    /// Not a GET, or it carried credentials.
    Bypass,
    /// The platform has no edge cache (Spin).
    Unavailable,
    /// Looked up, not found: store the answer under this key if it may be stored.
    Miss(String),
}

/// The cache key: the URL the client asked for, plus the values of the `vary` headers.
fn cache_key(
    policy: &crate::route::CachePolicy,
    host: Option<&str>,
    path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> String {
    let mut key = format!("https://{}{path}", host.unwrap_or("edgegate.invalid"));
    let mut separator = '?';
    if let Some(query) = query {
        key.push('?');
        key.push_str(query);
        separator = '&';
    }
    for name in policy.vary.iter() {
        key.push(separator);
        separator = '&';
        key.push_str("edgegate-vary-");
        key.push_str(name.as_str());
        key.push('=');
        for value in headers.get_all(name) {
            crate::hygiene::push_escaped(&mut key, value.as_bytes());
        }
    }
    key
}

/// Where a stored answer records the request's values of the headers it varies on.
static VARY_KEY: http::HeaderName = http::HeaderName::from_static("edgegate-vary-key");

/// The upstream's `Vary` members, lower case; `None` for `Vary: *`.
fn vary_members(response: &http::HeaderMap) -> Option<Vec<String>> {
    let mut members = Vec::new();
    for value in response.get_all(http::header::VARY) {
        for member in value.to_str().unwrap_or("*").split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if member == "*" {
                return None;
            }
            members.push(member.to_ascii_lowercase());
        }
    }
    members.sort_unstable();
    members.dedup();
    Some(members)
}

/// The values a request has for the headers a response varies on, as one header value
/// (`name=value&...`, percent-encoded); `None` when there is nothing to record.
fn vary_fingerprint(response: &http::HeaderMap, request: &http::HeaderMap) -> Option<HeaderValue> {
    let members = vary_members(response)?;
    if members.is_empty() {
        return None;
    }
    let mut text = String::new();
    for member in &members {
        if !text.is_empty() {
            text.push('&');
        }
        text.push_str(member);
        text.push('=');
        for (i, value) in request.get_all(member.as_str()).iter().enumerate() {
            if i > 0 {
                text.push_str("%2C");
            }
            crate::hygiene::push_escaped(&mut text, value.as_bytes());
        }
    }
    HeaderValue::try_from(text).ok()
}

/// Whether a stored answer may serve this request: it varies on nothing, or the request has
/// the values it was stored for. An answer that varies on `*` never matches.
fn vary_matches(stored: &http::HeaderMap, request: &http::HeaderMap) -> bool {
    if vary_members(stored).is_none() {
        return false;
    }
    let now = vary_fingerprint(stored, request);
    match (stored.get(&VARY_KEY), now) {
        (None, None) => true,
        (Some(recorded), Some(now)) => recorded == now,
        _ => false,
    }
}

/// How long an answer may be stored: only a 200 without `no-store`/`private` (and without
/// `Set-Cookie`, unless allowed) nor `Vary: *`, for the route's TTL or the upstream's
/// `s-maxage`/`max-age`.
fn storable_ttl<B>(policy: &crate::route::CachePolicy, response: &Response<B>) -> Option<u64> {
    if response.status() != http::StatusCode::OK {
        return None;
    }
    let headers = response.headers();
    vary_members(headers)?;
    // An event stream does not end: storing it would hold the client's copy to its end.
    if is_event_stream(headers) {
        return None;
    }
    if !policy.set_cookie && headers.contains_key(http::header::SET_COOKIE) {
        return None;
    }
    let cache_control = headers.get(http::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut max_age = None;
    let mut shared_max_age = None;
    for directive in cache_control.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "private" {
            return None;
        }
        if let Some(value) = directive.strip_prefix("s-maxage=") {
            shared_max_age = value.parse::<u64>().ok();
        } else if let Some(value) = directive.strip_prefix("max-age=") {
            max_age = value.parse::<u64>().ok();
        }
    }
    policy.ttl_s.or(shared_max_age).or(max_age).filter(|ttl| *ttl > 0)
}

/// Why no upstream response came back.
enum SendError {
    Fetch(FetchError),
    /// Every target's breaker is open.
    CircuitOpen,
}

/// A uniformly random u64 from the platform's entropy.
fn random_u64<P: Platform>(platform: &P) -> u64 {
    let mut bytes = [0u8; 8];
    platform.fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// The value a sticky key names in this request, if present.
fn sticky_value(key: &crate::route::StickyKey, context: &Context<'_>) -> Option<String> {
    match key {
        crate::route::StickyKey::Claim(path) => match context.identity {
            crate::auth::Identity::Token { claims } => {
                path.lookup(claims).and_then(crate::auth::policy::claim_header_text)
            }
            _ => None,
        },
        crate::route::StickyKey::Header(name) => context.headers.get(name)?.to_str().ok().map(str::to_owned),
        crate::route::StickyKey::Cookie(name) => context
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == &**name)
            .map(|(_, v)| v.to_owned()),
    }
}

/// Sends to the targets in order: the first whose breaker admits, then, after a failure, the
/// next (retries by the route's policy with backoff, or failover without), all inside the
/// route timeout the caller races against. Every outcome is reported to the target's breaker.
#[allow(clippy::too_many_arguments)]
async fn send_with_retries<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    route: &crate::route::CompiledRoute,
    pool: &crate::route::Pool,
    method: &Method,
    candidates: &[(usize, http::Uri)],
    headers: http::HeaderMap,
    body: Sendable<P::Body>,
    in_flight: &std::cell::Cell<Option<usize>>,
) -> Result<Response<P::Body>, SendError> {
    let build = |uri: &http::Uri, body: P::Body| {
        let mut outbound = Request::new(body);
        *outbound.method_mut() = method.clone();
        *outbound.uri_mut() = uri.clone();
        *outbound.headers_mut() = headers.clone();
        outbound
    };
    let failover = pool.balance == crate::resilience::Balance::Failover;
    let (mut stream, bytes) = match body {
        Sendable::Stream(stream) => (Some(stream), None),
        Sendable::Bytes(bytes) => (None, Some(bytes)),
    };
    let attempts = match (&route.retry, &bytes) {
        (Some(policy), Some(_)) => policy.attempts,
        (None, Some(_)) if failover => u32::try_from(candidates.len()).unwrap_or(1),
        _ => 1,
    };
    let started = platform.now();
    let deadline_ms = u64::try_from(route.timeout.as_millis()).unwrap_or(u64::MAX);
    let mut cursor = 0;
    let mut attempt = 1;
    loop {
        // The next target (from the cursor on, wrapping) whose breaker admits a request now.
        let now = platform.now();
        let pick = (0..candidates.len())
            .map(|i| (cursor + i) % candidates.len().max(1))
            .find(|&i| candidates.get(i).is_some_and(|(k, _)| gateway.admit(route.upstream, *k, now)));
        let Some(index) = pick else { return Err(SendError::CircuitOpen) };
        let Some((target, uri)) = candidates.get(index) else { return Err(SendError::CircuitOpen) };
        cursor = index + 1;
        let body = match (&bytes, stream.take()) {
            (Some(bytes), _) => body_of::<P::Body>(bytes.clone()),
            (None, Some(stream)) => stream,
            (None, None) => P::Body::empty(),
        };
        in_flight.set(Some(*target));
        let result = platform.fetch(build(uri, body)).await;
        in_flight.set(None);
        let outcome = match &result {
            Ok(response) => AttemptOutcome::Status(response.status().as_u16()),
            // The client's doing, not the upstream's: no breaker bookkeeping, no retry.
            Err(FetchError::InvalidRequest(_) | FetchError::BodyTooLarge | FetchError::BodyStalled) => {
                return result.map_err(SendError::Fetch)
            }
            Err(_) => AttemptOutcome::ConnectError,
        };
        gateway.record(route.upstream, *target, platform.now(), outcome.breaker_success());
        if attempt >= attempts {
            return result.map_err(SendError::Fetch);
        }
        let elapsed = platform.now().saturating_sub(started);
        let delay = match &route.retry {
            Some(policy) => policy.next_delay(method, attempt, &outcome, elapsed, deadline_ms, random_u64(platform)),
            // Failover: the next target at once, on what a retry would also retry.
            None => matches!(outcome, AttemptOutcome::ConnectError | AttemptOutcome::Status(502..=504)).then_some(0),
        };
        match delay {
            Some(0) => {}
            Some(delay) => platform.sleep(std::time::Duration::from_millis(delay)).await,
            None => return result.map_err(SendError::Fetch),
        }
        attempt += 1;
    }
}

/// Bytes as a body; no bytes as no body (so no `Content-Length: 0` is invented).
fn body_of<B: crate::ports::Body>(bytes: bytes::Bytes) -> B {
    if bytes.is_empty() {
        B::empty()
    } else {
        B::from_bytes(bytes)
    }
}

/// Whether the response is a server-sent event stream (`text/event-stream`).
fn is_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// Applies a JSON body plan to a successful response. `Err` when the body must be refused
/// (`on_invalid: bad_gateway`, or an undeclared length past the limit, which cannot be passed
/// on once read).
async fn transform_body<B: crate::ports::Body>(
    response: Response<B>,
    plan: &crate::config::BodyPlan,
) -> Result<Response<B>, ()> {
    let declared = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let pass = plan.on_invalid == OnInvalidBody::PassThrough;
    // Server-sent events are no JSON document and do not end: never waited for. They pass
    // untouched where the route lets unreadable bodies pass, else are refused at once.
    if is_event_stream(response.headers()) {
        return if pass { Ok(response) } else { Err(()) };
    }
    if declared.is_some_and(|length| length > plan.max_bytes) {
        return if pass { Ok(response) } else { Err(()) };
    }
    let (mut parts, body) = response.into_parts();
    let bytes = body.collect(plan.max_bytes).await.map_err(|_| ())?;
    let coding = crate::encoding::coding(&parts.headers);
    let readable = crate::encoding::parse_decoded(coding, &bytes, plan.max_bytes, |bytes| {
        crate::transform::body::transform_bytes(&plan.ops, bytes)
    });
    let transformed = match readable {
        Ok(transformed) => {
            // The JSON was readable, so it was not (or no longer) encoded.
            parts.headers.remove(http::header::CONTENT_ENCODING);
            bytes::Bytes::from(transformed)
        }
        Err(_) if pass => bytes,
        Err(_) => return Err(()),
    };
    if let Ok(length) = HeaderValue::try_from(transformed.len().to_string()) {
        parts.headers.insert(CONTENT_LENGTH, length);
    }
    Ok(Response::from_parts(parts, B::from_bytes(transformed)))
}
