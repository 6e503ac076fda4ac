//! Aggregation: the route's legs sent at once (each to its upstream's first target in order),
//! merged into one JSON answer; a required leg that fails fails the request. See
//! `crate::aggregate` for the legs and the merge.

use http::{HeaderMap, Response};

use super::exchange::{Exchange, UpstreamRecord};
use super::inbound::authority_of;
use crate::aggregate::{Aggregate, LegFailure, Merged};
use crate::hygiene::{self, X_REQUEST_ID};
use crate::ports::{explain, random_u64, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::route::CompiledRoute;
use crate::transform::edits::Context;
use crate::Gateway;

pub(crate) async fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    (route, aggregate): (&CompiledRoute, &Aggregate),
    exchange: &Exchange<'_>,
    context: &Context<'_>,
    headers: &HeaderMap,
) -> (Result<Response<P::Body>, Rejection>, UpstreamRecord) {
    let sent = platform.now();
    let targets: Vec<Option<&crate::route::UpstreamTarget>> = aggregate
        .legs
        .iter()
        .map(|leg| {
            let order = exchange.state.target_order(gateway, leg.upstream, random_u64(platform), None);
            let pool = gateway.pools.get(leg.upstream)?;
            order.first().and_then(|k| pool.targets.get(*k)).and_then(|t| gateway.upstreams.get(*t))
        })
        .collect();
    explain(platform, "dispatch", || format!("aggregation: {} legs sent at once", aggregate.legs.len()));
    // What every leg carries: trace context, forwarding headers, the request id.
    let mut common = HeaderMap::new();
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
    let original_host = authority_of(&exchange.parts.uri, headers);
    hygiene::set_forwarding(&mut common, &exchange.client, original_host, gateway.trust_forwarded);
    common.insert(&X_REQUEST_ID, exchange.request_id.clone());
    let merged = crate::aggregate::run(aggregate, &targets, platform, context, context.headers, &common).await;
    let mut record = UpstreamRecord { status: None, ms: Some(platform.now().saturating_sub(sent)) };
    let result = match merged {
        Merged::Complete(mut value, complete) => {
            record.status = Some(200);
            if let Some(plan) = &route.body {
                value = plan.ops.apply(value);
            }
            let mut response = crate::aggregate::respond(&value, complete);
            if let Some(edits) = &route.response_edits {
                edits.apply(response.headers_mut(), context);
            }
            Ok(response)
        }
        Merged::RequiredFailed(leg, failure) => {
            let (kind, what) = match failure {
                LegFailure::Timeout => (ProblemKind::UpstreamTimeout, "did not answer in time"),
                LegFailure::Failed => (ProblemKind::UpstreamUnreachable, "failed"),
            };
            explain(platform, "dispatch", || format!("the required leg \"{leg}\" {what}"));
            Err(Rejection::new(kind, format!("The required part \"{leg}\" {what}.")))
        }
    };
    (result, record)
}
