//! Aggregation: one route, several upstream legs in parallel, one merged JSON answer.
//! Legs are plain data; running them is the one async part, driven by a poll loop that races
//! every leg (each with its own timeout) against the route's total deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::deadline::with_timeout;
use crate::ports::{Body, FetchError, Platform};
use crate::transform::body::{merge, Template};
use crate::transform::edits::Context;

/// Largest leg body read.
const MAX_LEG_BYTES: u64 = 4 * 1024 * 1024;

/// The header that marks a partial answer.
pub(crate) static GATEWAY_COMPLETED: HeaderName = HeaderName::from_static("gateway-completed");

/// One backend call of an aggregate route.
#[derive(Debug, Clone)]
pub(crate) struct Leg {
    pub name: Box<str>,
    pub upstream: usize,
    pub path: Template,
    pub method: Method,
    pub required: bool,
    pub timeout: Duration,
    /// `None`: merged into the root object.
    pub group: Option<Box<str>>,
    pub forward_headers: Box<[HeaderName]>,
    pub headers: Box<[(HeaderName, Template)]>,
}

#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub legs: Box<[Leg]>,
    pub deadline: Duration,
}

/// Why a leg gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegFailure {
    Timeout,
    Failed,
}

/// The merged answer, or the failure of a required leg (with its name).
pub(crate) enum Merged {
    Complete(Value, bool),
    RequiredFailed(Box<str>, LegFailure),
}

type LegFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, LegFailure>> + 'a>>;

/// Runs every leg in parallel within the deadline and merges what came back in leg order.
pub(crate) async fn run<P: Platform>(
    aggregate: &Aggregate,
    targets: &[Option<&crate::route::UpstreamTarget>],
    platform: &P,
    context: &Context<'_>,
    forwarded: &HeaderMap,
    common: &HeaderMap,
) -> Merged {
    let mut legs: Vec<Option<LegFuture<'_>>> = aggregate
        .legs
        .iter()
        .zip(targets)
        .map(|(leg, target)| Some(Box::pin(call(leg, *target, platform, context, forwarded, common)) as LegFuture<'_>))
        .collect();
    let mut results: Vec<Option<Result<Value, LegFailure>>> = vec![None; legs.len()];
    let mut deadline = std::pin::pin!(platform.sleep(aggregate.deadline));
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in legs.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(outcome) => {
                        *result = Some(outcome);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if !pending || deadline.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    // Legs still running at the deadline are dropped (their fetches are aborted).
    drop(legs);

    let mut root = Value::Object(serde_json::Map::new());
    let mut complete = true;
    for (leg, result) in aggregate.legs.iter().zip(results) {
        match result.unwrap_or(Err(LegFailure::Timeout)) {
            Ok(value) => match &leg.group {
                Some(group) => merge(&mut root, serde_json::json!({ &**group: value })),
                None => merge(&mut root, value),
            },
            Err(failure) if leg.required => return Merged::RequiredFailed(leg.name.clone(), failure),
            Err(_) => complete = false,
        }
    }
    Merged::Complete(root, complete)
}

async fn call<P: Platform>(
    leg: &Leg,
    upstream: Option<&crate::route::UpstreamTarget>,
    platform: &P,
    context: &Context<'_>,
    forwarded: &HeaderMap,
    common: &HeaderMap,
) -> Result<Value, LegFailure> {
    let upstream = upstream.ok_or(LegFailure::Failed)?;
    let (path, missing) = leg.path.render(|p| context.lookup(p));
    if missing {
        return Err(LegFailure::Failed);
    }
    let uri = upstream.uri_for_path(&path).map_err(|_| LegFailure::Failed)?;
    let mut request = Request::new(P::Body::empty());
    *request.method_mut() = leg.method.clone();
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    // Request id, forwarding headers and trace context, as every upstream call gets them;
    // each leg is its own span of the trace.
    headers.clone_from(common);
    crate::hygiene::propagate_trace(headers, platform);
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    // The leg's JSON is parsed here: uncompressed on every runtime.
    headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    for name in leg.forward_headers.iter() {
        for value in forwarded.get_all(name) {
            headers.append(name, value.clone());
        }
    }
    for (name, template) in leg.headers.iter() {
        let (value, missing) = template.render(|p| context.lookup(p));
        if let (false, Ok(value)) = (missing, HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    let fetched = with_timeout(
        async {
            let response = platform.fetch(request).await.map_err(|_: FetchError| LegFailure::Failed)?;
            if !response.status().is_success() {
                return Err(LegFailure::Failed);
            }
            let coding = crate::encoding::coding(response.headers());
            let bytes = response.into_body().collect(MAX_LEG_BYTES).await.map_err(|_| LegFailure::Failed)?;
            crate::encoding::parse_decoded(coding, &bytes, MAX_LEG_BYTES, |b| serde_json::from_slice::<Value>(b))
                .map_err(|_| LegFailure::Failed)
        },
        platform.sleep(leg.timeout),
    )
    .await;
    fetched.unwrap_or(Err(LegFailure::Timeout))
}

/// The merged answer as a response.
pub(crate) fn respond<B: Body>(value: &Value, complete: bool) -> Response<B> {
    let mut response = Response::new(B::from_bytes(Bytes::from(value.to_string())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(&GATEWAY_COMPLETED, HeaderValue::from_static(if complete { "true" } else { "false" }));
    response
}
