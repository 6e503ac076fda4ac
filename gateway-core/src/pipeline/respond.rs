//! The answer's last touches, whoever produced it: hop-by-hop headers removed (unless it is
//! an upgrade), `X-Request-Id`, `Server-Timing`, the rate-limit headers, the CORS decoration;
//! then the one access-log line.

use http::{HeaderValue, Response};

use super::exchange::Exchange;
use crate::hygiene::{self, SERVER_TIMING, X_REQUEST_ID};
use crate::log::{push_number, AccessRecord};
use crate::ports::{explain, Platform};
use crate::Gateway;

pub(crate) fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    exchange: Exchange<'_>,
    mut response: Response<P::Body>,
) -> Response<P::Body> {
    let duration_ms = platform.now().saturating_sub(exchange.started);
    let upstream = exchange.upstream;
    let headers = response.headers_mut();
    if let Some(extra) = exchange.rate_headers {
        headers.extend(extra);
    }
    if upstream.status != Some(101) {
        hygiene::strip_hop_by_hop(headers);
    }
    headers.insert(&X_REQUEST_ID, exchange.request_id);
    let mut timing = String::with_capacity(40);
    timing.push_str("edgegate;dur=");
    push_number(&mut timing, duration_ms.saturating_sub(upstream.ms.unwrap_or(0)), 1);
    if let Some(upstream_ms) = upstream.ms {
        timing.push_str(", upstream;dur=");
        push_number(&mut timing, upstream_ms, 1);
    }
    if let Ok(timing) = HeaderValue::try_from(timing) {
        headers.append(&SERVER_TIMING, timing);
    }
    if let Some(policy) = exchange.cors.and_then(|i| gateway.cors.get(i)) {
        policy.decorate(exchange.origin.as_ref(), headers);
        explain(platform, "cors", || match &exchange.origin {
            None => "no Origin: not a cross-origin request".to_owned(),
            Some(origin) if policy.allows_origin(origin) => {
                format!("origin {} allowed: the answer carries its grants", String::from_utf8_lossy(origin.as_bytes()))
            }
            Some(origin) => format!(
                "origin {} not allowed: the answer carries no grant, the browser withholds it",
                String::from_utf8_lossy(origin.as_bytes())
            ),
        });
    }

    if !gateway.access_log.logs(response.status().as_u16(), || crate::ports::random_u64(platform)) {
        return response;
    }
    let record = AccessRecord {
        time: exchange.started,
        request_id: &exchange.request_id_text,
        route: exchange.route.and_then(|i| gateway.routes.get(i)).map(|r| &*r.id),
        method: exchange.parts.method.as_str(),
        path: exchange.parts.uri.path(),
        status: response.status().as_u16(),
        upstream_status: upstream.status,
        duration_ms,
        upstream_ms: upstream.ms,
        principal: exchange.identity.principal(),
        problem: exchange.problem.map(|kind| kind.name()),
        source: exchange.problem.map(|kind| kind.source().name()),
    };
    platform.log(&record.to_json());
    response
}
