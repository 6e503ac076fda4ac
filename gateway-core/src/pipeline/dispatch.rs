//! Dispatch: the upstream call. Targets are tried in order (the first whose breaker admits;
//! after a failure the next, by the route's retry policy with backoff, or failover without),
//! every outcome reported to the target's breaker, all inside the route's timeout.

use std::cell::Cell;

use http::{Method, Request, Response};

use super::body::Sendable;
use super::exchange::{Exchange, UpstreamRecord};
use super::request_transform::Outbound;
use crate::deadline::with_timeout;
use crate::ports::{explain, random_u64, Body, Fetch, FetchError, Platform, UnixMillis};
use crate::problem::{ProblemKind, Rejection};
use crate::resilience::{AttemptOutcome, Balance};
use crate::route::CompiledRoute;
use crate::{Gateway, IsolateState};

/// Sends the request; the upstream's answer, whatever its status, or why there is none.
pub(crate) async fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    route: &CompiledRoute,
    exchange: &Exchange<'_>,
    outbound: Outbound,
    body: Sendable<P::Body>,
) -> (Result<Response<P::Body>, Rejection>, UpstreamRecord) {
    let mut record = UpstreamRecord::default();
    let result = attempt(gateway, platform, route, exchange, outbound, body, &mut record).await;
    (result, record)
}

async fn attempt<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    route: &CompiledRoute,
    exchange: &Exchange<'_>,
    outbound: Outbound,
    body: Sendable<P::Body>,
    record: &mut UpstreamRecord,
) -> Result<Response<P::Body>, Rejection> {
    let state = exchange.state;
    // A streamed upload can be what stalls: a timeout then says nothing about the upstream.
    let streamed_upload = matches!(body, Sendable::Stream(_));
    let progress = Progress { started: platform.now(), in_flight: Cell::new(None), ended: Cell::new(None) };
    let sent = progress.started;
    let attempts =
        send_with_retries((gateway, state), platform, route, &exchange.parts.method, outbound, body, &progress);
    // Where the platform bounds each call itself, the attempts need no timer raced beside them:
    // each call gets the time left, and backoff never sleeps past the deadline.
    let result = if <P as Fetch>::BOUNDS_FETCH {
        match attempts.await {
            Err(SendError::TimedOut) => None,
            done => Some(done),
        }
    } else {
        with_timeout(attempts, platform.sleep(route.timeout)).await
    };
    if result.is_none() && !streamed_upload {
        // The attempt the timeout cut short is a failure of its target.
        if let Some(target) = progress.in_flight.get() {
            state.record(gateway, route.upstream, target, platform.now(), false);
        }
    }
    record.ms = Some(progress.ended.get().unwrap_or_else(|| platform.now()).saturating_sub(sent));
    let error = match result {
        Some(Ok(response)) => {
            record.status = Some(response.status().as_u16());
            return Ok(response);
        }
        Some(Err(error)) => error,
        None => SendError::TimedOut,
    };
    let rejection = match error {
        SendError::Fetch(FetchError::InvalidRequest(_)) => {
            record.ms = None;
            Rejection::new(ProblemKind::BadRequest, "The request cannot be forwarded.")
        }
        SendError::Fetch(FetchError::BodyTooLarge) => super::body::too_large(route.max_body_bytes),
        SendError::Fetch(FetchError::BodyStalled) => {
            let idle = route.idle_timeout.unwrap_or_default().as_millis();
            Rejection::new(
                ProblemKind::RequestTimeout,
                format!("The request body stalled: nothing arrived for {idle} ms."),
            )
        }
        SendError::CircuitOpen => {
            record.ms = None;
            Rejection::new(
                ProblemKind::UpstreamCircuitOpen,
                "The upstream is failing; the gateway stopped sending to it for a while.",
            )
        }
        SendError::TimedOut => Rejection::new(
            ProblemKind::UpstreamTimeout,
            format!("The upstream did not answer within {} ms.", route.timeout.as_millis()),
        ),
        SendError::Fetch(_) => Rejection::new(ProblemKind::UpstreamUnreachable, "The upstream could not be reached."),
    };
    explain(platform, "dispatch", || format!("no answer: {}", rejection.detail));
    Err(rejection)
}

/// What the attempts share with their caller, which reads it when they end or are cut short.
struct Progress {
    /// The clock as the caller read it just before the first attempt (nothing awaited since).
    started: UnixMillis,
    /// The target of the attempt under way, if any.
    in_flight: Cell<Option<usize>>,
    /// The clock when the last attempt ended (`None` while one is under way): nothing is
    /// awaited between that reading and the caller's use of it, so one crossing fewer.
    ended: Cell<Option<UnixMillis>>,
}

/// Why no upstream response came back.
#[derive(Debug)]
enum SendError {
    Fetch(FetchError),
    /// Every target's breaker is open.
    CircuitOpen,
    /// The route's deadline passed before a response head arrived (where the platform bounds
    /// each call: [`Fetch::BOUNDS_FETCH`]).
    TimedOut,
}

/// Sends to the targets in order: the first whose breaker admits, then, after a failure, the
/// next (retries by the route's policy with backoff, or failover without), all inside the
/// route timeout the caller races against. Every outcome is reported to the target's breaker.
async fn send_with_retries<P: Platform>(
    (gateway, state): (&Gateway, &IsolateState),
    platform: &P,
    route: &CompiledRoute,
    method: &Method,
    outbound: Outbound,
    body: Sendable<P::Body>,
    progress: &Progress,
) -> Result<Response<P::Body>, SendError> {
    let &Progress { started, ref in_flight, ref ended } = progress;
    let Outbound { candidates, mut headers, .. } = outbound;
    // The last attempt takes the headers; only one that may be followed sends a copy.
    let mut build = |uri: &http::Uri, body: P::Body, last: bool| {
        let mut outbound = Request::new(body);
        *outbound.method_mut() = method.clone();
        *outbound.uri_mut() = uri.clone();
        *outbound.headers_mut() = if last { std::mem::take(&mut headers) } else { headers.clone() };
        outbound
    };
    let failover = gateway.pools.get(route.upstream).is_some_and(|pool| pool.balance == Balance::Failover);
    let (mut stream, bytes) = match body {
        Sendable::Stream(stream) => (Some(stream), None),
        Sendable::Bytes(bytes) => (None, Some(bytes)),
    };
    let attempts = match (&route.retry, &bytes) {
        (Some(policy), Some(_)) => policy.attempts,
        (None, Some(_)) if failover => u32::try_from(candidates.len()).unwrap_or(1),
        _ => 1,
    };
    let deadline_ms = u64::try_from(route.timeout.as_millis()).unwrap_or(u64::MAX);
    let mut cursor = 0;
    let mut attempt = 1;
    loop {
        ended.set(None);
        // The next target (from the cursor on, wrapping) whose breaker admits a request now.
        let now = if attempt == 1 { started } else { platform.now() };
        let pick = (0..candidates.len())
            .map(|i| (cursor + i) % candidates.len().max(1))
            .find(|&i| candidates.get(i).is_some_and(|(k, _)| state.admit(gateway, route.upstream, *k, now)));
        let Some(index) = pick else { return Err(SendError::CircuitOpen) };
        let Some((target, uri)) = candidates.get(index) else { return Err(SendError::CircuitOpen) };
        cursor = index + 1;
        let body = match (&bytes, stream.take()) {
            (Some(bytes), _) => body_of::<P::Body>(bytes.clone()),
            (None, Some(stream)) => stream,
            (None, None) => P::Body::empty(),
        };
        in_flight.set(Some(*target));
        let request = build(uri, body, attempt >= attempts);
        let result = if <P as Fetch>::BOUNDS_FETCH {
            // `now` is this attempt's start: nothing was awaited since it was read.
            let left = deadline_ms.saturating_sub(now.saturating_sub(started));
            platform.fetch_within(request, std::time::Duration::from_millis(left.max(1))).await
        } else {
            platform.fetch(request).await
        };
        if matches!(result, Err(FetchError::TimedOut)) {
            // Still the attempt in flight when the deadline passed: the caller reports it.
            return Err(SendError::TimedOut);
        }
        in_flight.set(None);
        let outcome = match &result {
            Ok(response) => AttemptOutcome::Status(response.status().as_u16()),
            // The client's doing, not the upstream's: no breaker bookkeeping, no retry.
            Err(FetchError::InvalidRequest(_) | FetchError::BodyTooLarge | FetchError::BodyStalled) => {
                return result.map_err(SendError::Fetch)
            }
            Err(_) => AttemptOutcome::ConnectError,
        };
        // One reading for the breaker and the retry budget (a clock read crosses into the
        // platform; nothing is awaited between the two uses).
        let finished = platform.now();
        ended.set(Some(finished));
        state.record(gateway, route.upstream, *target, finished, outcome.breaker_success());
        if attempt >= attempts {
            return result.map_err(SendError::Fetch);
        }
        let elapsed = finished.saturating_sub(started);
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
fn body_of<B: Body>(bytes: bytes::Bytes) -> B {
    if bytes.is_empty() {
        B::empty()
    } else {
        B::from_bytes(bytes)
    }
}
