//! The upstream's answer as the client gets it: the route's header edits, its JSON body plan
//! (on a success), and the stream limits (idle timeout; a WebSocket's lifetime).

use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Response};

use crate::ports::{explain, Body, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::route::CompiledRoute;
use crate::transform::body::OnInvalidBody;
use crate::transform::edits::Context;

pub(crate) async fn run<P: Platform>(
    platform: &P,
    route: &CompiledRoute,
    context: &Context<'_>,
    mut response: Response<P::Body>,
) -> Result<Response<P::Body>, Rejection> {
    if let Some(edits) = &route.response_edits {
        edits.apply(response.headers_mut(), context);
    }
    let Some(plan) = route.body.as_ref().filter(|_| response.status().is_success()) else { return Ok(response) };
    let transformed = transform_body(response, plan).await;
    explain(platform, "response", || match &transformed {
        Ok(_) => "the body plan applied (or the body passed as the route allows)".to_owned(),
        Err(()) => "the upstream's body could not be transformed: 502".to_owned(),
    });
    transformed
        .map_err(|()| Rejection::new(ProblemKind::BadUpstreamBody, "The upstream's answer could not be transformed."))
}

/// The stream limits of the route on the answer's body: the idle timeout, or for a WebSocket
/// (101) the socket's limits, which the adapter enforces on the relay.
pub(crate) fn limit_streams<B: Body>(route: &CompiledRoute, mut response: Response<B>) -> Response<B> {
    if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        let limits = crate::ports::SocketLimits { idle: route.idle_timeout, max_lifetime: route.socket_lifetime };
        response.extensions_mut().insert(limits);
        response
    } else if let Some(idle) = route.idle_timeout {
        response.map(|body| body.idle_timeout(idle))
    } else {
        response
    }
}

/// Whether the response is a server-sent event stream (`text/event-stream`).
pub(crate) fn is_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// Applies a JSON body plan to a successful response. `Err` when the body must be refused
/// (`on_invalid: bad_gateway`, or an undeclared length past the limit, which cannot be passed
/// on once read).
async fn transform_body<B: Body>(
    response: Response<B>,
    plan: &crate::transform::body::BodyPlan,
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
