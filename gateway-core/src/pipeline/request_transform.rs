//! The request as the upstream gets it: the targets to try (balancing, stickiness) each with
//! its URI (path plan, query plan), and the headers (hop-by-hop removed, forwarding and trace
//! headers set, the route's edits applied).

use http::{HeaderMap, HeaderValue, Uri};

use super::exchange::Exchange;
use super::inbound::authority_of;
use super::routing::Matched;
use crate::hygiene::{self, X_REQUEST_ID};
use crate::ports::{explain, random_u64, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::resilience::cohort_hash;
use crate::transform::edits::Context;
use crate::Gateway;

/// What goes upstream, before the body.
pub(crate) struct Outbound {
    /// (target within the pool, URI), in the order to try them.
    pub candidates: Vec<(usize, Uri)>,
    pub headers: HeaderMap,
    /// `host[:port]` as the client addressed it (forwarding headers, cache key).
    pub original_host: Option<String>,
}

/// The client's headers as later phases read them (edits, query plans, aggregation legs,
/// sticky keys, the cache key): copied only when the route has one of those.
pub(crate) fn client_headers(gateway: &Gateway, matched: &Matched<'_, '_>, headers: &HeaderMap) -> HeaderMap {
    let route = matched.route;
    let needed = route.request_edits.is_some()
        || route.response_edits.is_some()
        || route.query.is_some()
        || route.aggregate.is_some()
        || gateway.pools.get(route.upstream).is_some_and(|pool| pool.sticky.is_some())
        || route.cache.is_some();
    if needed {
        headers.clone()
    } else {
        HeaderMap::new()
    }
}

pub(crate) fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    matched: &Matched<'_, '_>,
    exchange: &Exchange<'_>,
    context: &Context<'_>,
    mut headers: HeaderMap,
) -> Result<Outbound, Rejection> {
    let route = matched.route;
    let internal = || Rejection::new(ProblemKind::Internal, "The gateway could not handle this request.");
    let pool = gateway.pools.get(route.upstream).ok_or_else(internal)?;
    let sticky = pool.sticky.as_ref().and_then(|key| sticky_value(key, context)).map(|v| cohort_hash(&v));
    let order = exchange.state.target_order(gateway, route.upstream, random_u64(platform), sticky);
    let client_query = exchange.client_query();
    let planned_query = route.query.as_ref().map(|plan| plan.apply(client_query, context));
    let query = match &planned_query {
        Some(planned) => planned.as_deref(),
        None => client_query,
    };
    let mut candidates = Vec::with_capacity(order.len());
    for k in order {
        let Some(target) = pool.targets.get(k).and_then(|t| gateway.upstreams.get(*t)) else { continue };
        let uri = target
            .uri_for(&route.path, context.path, &matched.params, query)
            .map_err(|_| Rejection::new(ProblemKind::BadRequest, "The request path cannot be forwarded."))?;
        candidates.push((k, uri));
    }
    explain(platform, "dispatch", || {
        let uris: Vec<String> = candidates.iter().map(|(_, uri)| uri.to_string()).collect();
        format!("targets in order: {}", uris.join(", "))
    });
    let original_host = authority_of(&exchange.parts.uri, &headers).map(str::to_owned);
    hygiene::strip_hop_by_hop(&mut headers);
    hygiene::set_forwarding(&mut headers, &exchange.client, original_host.as_deref(), gateway.trust_forwarded);
    headers.insert(&X_REQUEST_ID, exchange.request_id.clone());
    hygiene::propagate_trace(&mut headers, platform);
    if let Some(edits) = &route.request_edits {
        edits.apply(&mut headers, context);
    }
    if route.body.is_some() {
        // The gateway reads this answer: ask for bytes it can parse on every runtime, not a
        // compressed body that one runtime decodes and another does not.
        headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    Ok(Outbound { candidates, headers, original_host })
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
