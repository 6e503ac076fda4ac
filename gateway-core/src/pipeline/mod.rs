//! The request's path through the gateway, top to bottom. Each phase lives in the file named
//! after it, reads and writes the [`Exchange`](exchange::Exchange), and either hands the
//! request on or stops it with the answer ([`Stop`]): a rejection becomes problem+json, a
//! preflight, cache hit or the OpenAPI document is answered as is. Whatever the answer, it
//! gets its finishing headers and one access-log line (`respond`). Nothing here fails or panics.
//!
//! inbound → routing (OpenAPI document, preflight, route) → IP filter → auth → rate limit →
//! upgrade → body → aggregation, or: request transform → cache lookup → dispatch → response
//! transform → cache store → stream limits → respond.

mod aggregation;
mod auth;
mod body;
mod cache;
mod dispatch;
mod exchange;
mod inbound;
mod ip_filter;
mod rate_limit;
mod request_transform;
mod respond;
mod response_transform;
mod routing;
mod upgrade;

use http::{Request, Response};

use crate::ports::{Client, Platform};
use crate::transform::edits::Context;
use crate::{Gateway, IsolateState};
use exchange::{Exchange, Stop};

/// Handles one request end to end. Never fails: every rejection is a problem response.
/// `state` is what this isolate learned so far (keep one per gateway, for as long as the
/// isolate lives).
pub async fn handle<P: Platform>(
    gateway: &Gateway,
    state: &IsolateState,
    platform: &P,
    request: Request<P::Body>,
    client: &Client,
) -> Response<P::Body> {
    let (mut exchange, body) = inbound::run(gateway, state, platform, request, client);
    let response = match pass(gateway, platform, &mut exchange, body).await {
        Ok(response) => response,
        Err(Stop::Answered(response)) => *response,
        Err(Stop::Rejected(rejection)) => {
            exchange.problem = Some(rejection.kind);
            rejection.into_response(&exchange.request_id_text)
        }
    };
    respond::run(gateway, platform, exchange, response)
}

/// Every phase between the request's arrival and its answer.
async fn pass<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    exchange: &mut Exchange<'_>,
    body: P::Body,
) -> Result<Response<P::Body>, Stop<P::Body>> {
    inbound::normalize_path(gateway, platform, exchange)?;
    // Routing reads the normalized path; the parameters it binds borrow it.
    let uri = exchange.parts.uri.clone();
    let path = uri.path();
    routing::serve_openapi(gateway, exchange, path)?;
    routing::preflight(gateway, platform, exchange, path)?;
    let matched = routing::run(gateway, platform, exchange, path)?;
    let route = matched.route;
    ip_filter::run(platform, route, exchange)?;
    auth::run(gateway, platform, route, exchange).await?;
    rate_limit::run(gateway, platform, route, exchange).await?;
    upgrade::run(gateway, platform, route, exchange)?;
    let body = body::run(gateway, platform, route, exchange, body).await?;

    let headers = std::mem::take(&mut exchange.parts.headers);
    let client_headers = request_transform::client_headers(gateway, &matched, &headers);
    let params: Vec<(&str, &str)> = matched.params.iter().collect();
    let context = Context {
        params: &params,
        identity: &exchange.identity,
        client_ip: exchange.client.ip,
        request_id: &exchange.request_id_text,
        method: exchange.parts.method.as_str(),
        path,
        headers: &client_headers,
    };
    if let Some(aggregate) = &route.aggregate {
        let legs = (route, aggregate);
        let (answer, record) = aggregation::run(gateway, platform, legs, exchange, &context, &headers).await;
        exchange.upstream = record;
        return Ok(answer?);
    }
    let outbound = request_transform::run(gateway, platform, &matched, exchange, &context, headers)?;
    let cached = cache::lookup(platform, route, exchange, &context, &outbound).await?;
    let (answer, record) = dispatch::run(gateway, platform, route, exchange, outbound, body).await;
    exchange.upstream = record;
    let response = answer?;
    let response = response_transform::run(platform, route, &context, response).await?;
    let response = cache::store(platform, route, cached, response).await;
    Ok(response_transform::limit_streams(route, response))
}
