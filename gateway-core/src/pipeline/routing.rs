//! Routing: the gateway's own OpenAPI document, CORS preflights (matched as the request they
//! announce), then the route itself, and the path and header rules that depend on it.

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ALLOW, CONTENT_LENGTH, ORIGIN};
use http::{HeaderValue, Method, Response};

use super::exchange::{Exchange, Stop};
use super::inbound::{authority_of, host_without_port};
use crate::hygiene;
use crate::ports::{explain, Body, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::route::CompiledRoute;
use crate::router::RouteMatch;
use crate::Gateway;

/// The route a request takes, and the path parameters it bound.
pub(crate) struct Matched<'g, 'p> {
    pub route: &'g CompiledRoute,
    pub params: matchit::Params<'g, 'p>,
}

/// `openapi.path`: the document built at compile time, for GET and HEAD.
pub(crate) fn serve_openapi<B: Body>(gateway: &Gateway, exchange: &Exchange<'_>, path: &str) -> Result<(), Stop<B>> {
    let Some((_, document)) = gateway.openapi.as_ref().filter(|(at, document)| **at == *path && !document.is_empty())
    else {
        return Ok(());
    };
    let method = &exchange.parts.method;
    if *method != Method::GET && *method != Method::HEAD {
        return Ok(());
    }
    let body = if *method == Method::GET { B::from_bytes(document.clone()) } else { B::empty() };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.oai.openapi+json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(document.len()));
    Err(Stop::Answered(Box::new(response)))
}

/// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) for a route
/// with a CORS policy is answered here: 204 with the grants, or 403 saying what was refused.
pub(crate) fn preflight<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    exchange: &mut Exchange<'_>,
    path: &str,
) -> Result<(), Stop<P::Body>> {
    let parts = &exchange.parts;
    let (&Method::OPTIONS, Some(origin), Some(requested)) =
        (&parts.method, parts.headers.get(ORIGIN), parts.headers.get(ACCESS_CONTROL_REQUEST_METHOD))
    else {
        return Ok(());
    };
    let Ok(requested) = Method::from_bytes(requested.as_bytes()) else { return Ok(()) };
    let host = authority_of(&parts.uri, &parts.headers).map(host_without_port);
    let RouteMatch::Found { route, .. } = gateway.router.find(&gateway.routes, &requested, host, &parts.headers, path)
    else {
        return Ok(());
    };
    let Some(policy) = gateway.routes.get(route).and_then(|r| r.cors).and_then(|i| gateway.cors.get(i)) else {
        return Ok(());
    };
    // Already decorated below; the origin is echoed only when allowed.
    exchange.cors = None;
    exchange.route = Some(route);
    let verdict = policy.preflight(origin, &requested, &parts.headers);
    explain(platform, "cors", || match &verdict {
        Ok(_) => {
            format!("preflight for {requested}: allowed for origin {}", String::from_utf8_lossy(origin.as_bytes()))
        }
        Err(refusal) => format!("preflight for {requested}: refused ({refusal:?} not allowed)"),
    });
    match verdict {
        Ok(headers) => {
            let mut response = Response::new(P::Body::empty());
            *response.status_mut() = http::StatusCode::NO_CONTENT;
            response.headers_mut().extend(headers);
            Err(Stop::Answered(Box::new(response)))
        }
        Err(refusal) => {
            let detail = match refusal {
                crate::cors::PreflightRefusal::Origin => "This origin is not allowed.",
                crate::cors::PreflightRefusal::Method => "This method is not allowed for cross-origin requests.",
                crate::cors::PreflightRefusal::Headers => {
                    "A requested header is not allowed for cross-origin requests."
                }
            };
            let mut vary = http::HeaderMap::new();
            crate::cors::CorsPolicy::preflight_vary(&mut vary);
            let mut rejection = Rejection::new(ProblemKind::CorsRejected, detail);
            rejection.headers.extend(vary.iter().map(|(name, value)| (name.clone(), value.clone())));
            Err(Stop::Rejected(rejection))
        }
    }
}

/// Finds the route: 404 when none matches, 405 (with `Allow`) when only the method differs.
/// Then the route's own path and header rules: encoded slashes, method-override headers.
pub(crate) fn run<'g, 'p, P: Platform>(
    gateway: &'g Gateway,
    platform: &P,
    exchange: &mut Exchange<'_>,
    path: &'p str,
) -> Result<Matched<'g, 'p>, Rejection> {
    let parts = &exchange.parts;
    let host = authority_of(&parts.uri, &parts.headers).map(host_without_port);
    let (index, params) = match gateway.router.find(&gateway.routes, &parts.method, host, &parts.headers, path) {
        RouteMatch::Found { route, params } => (route, params),
        RouteMatch::MethodNotAllowed { allow } => {
            let list = allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            let rejection = Rejection::new(ProblemKind::MethodNotAllowed, "This path does not accept this method.");
            return Err(match HeaderValue::try_from(list) {
                Ok(list) => rejection.with_header(ALLOW, list),
                Err(_) => rejection,
            });
        }
        RouteMatch::NotFound => {
            return Err(Rejection::new(ProblemKind::RouteNotFound, "No route matches this request."));
        }
    };
    let Some(route) =
        gateway.routes.get(index).filter(|r| r.aggregate.is_some() || gateway.pools.get(r.upstream).is_some())
    else {
        exchange.cors = None;
        return Err(Rejection::new(ProblemKind::Internal, "The gateway could not handle this request."));
    };
    exchange.route = Some(index);
    exchange.cors = route.cors;
    explain(platform, "routing", || {
        let bound: Vec<String> = params.iter().map(|(name, value)| format!("{name}={value}")).collect();
        if bound.is_empty() {
            format!("route \"{}\"", route.id)
        } else {
            format!("route \"{}\" with {}", route.id, bound.join(", "))
        }
    });
    if exchange.encoded_slash && !route.allow_encoded_slashes {
        return Err(Rejection::new(ProblemKind::BadRequest, crate::path::PathRefusal::EncodedSlash.description()));
    }
    if exchange.method_override && !route.method_override {
        for name in hygiene::METHOD_OVERRIDE_HEADERS {
            exchange.parts.headers.remove(name);
        }
    }
    Ok(Matched { route, params })
}
