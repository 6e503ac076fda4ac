//! The request body: the route's size limit (a declared length checked before reading, an
//! undeclared one counted as it streams) and JSON Schema validation. The body streams
//! through untouched unless validation, retries or a failover pool need its bytes.

use http::header::CONTENT_LENGTH;
use http::HeaderValue;

use super::exchange::Exchange;
use crate::deadline::with_timeout;
use crate::ports::{explain, Body, BodyError, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::route::CompiledRoute;
use crate::Gateway;

/// A request body as it goes upstream: the client's stream untouched, or bytes the gateway
/// read (and can send again on a retry).
pub(crate) enum Sendable<B> {
    Stream(B),
    Bytes(bytes::Bytes),
}

pub(crate) async fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    route: &CompiledRoute,
    exchange: &mut Exchange<'_>,
    body: P::Body,
) -> Result<Sendable<P::Body>, Rejection> {
    let headers = &mut exchange.parts.headers;
    let limit = route.max_body_bytes;
    let declared = match headers.get(CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok())) {
        Some(None) => return Err(Rejection::new(ProblemKind::BadRequest, "Content-Length is not a number.")),
        Some(Some(length)) if length > limit => return Err(too_large(limit)),
        declared => declared.flatten(),
    };
    // A failover pool sends an undeclared body again to the next target (on Spin that is every
    // GET: wasi cannot tell an absent body from an empty stream), so it is read first.
    let failover = gateway
        .pools
        .get(route.upstream)
        .is_some_and(|pool| pool.balance == crate::resilience::Balance::Failover && pool.targets.len() > 1);
    let needs_bytes = route.validate.is_some() || route.retry.is_some() || (failover && declared.is_none());
    if body.is_known_empty() {
        return Ok(Sendable::Bytes(bytes::Bytes::new()));
    }
    if !needs_bytes {
        explain(platform, "body", || match declared {
            Some(length) => format!("{length} bytes declared, within the limit of {limit}: streams through"),
            None => format!("length not declared: streams through, counted against the limit of {limit}"),
        });
        // A declared length is held to by the runtime; an undeclared one is counted.
        let body = if declared.is_some() { body } else { body.limited(limit) };
        return Ok(Sendable::Stream(match route.idle_timeout {
            Some(idle) => body.idle_timeout(idle),
            None => body,
        }));
    }
    // A client that stalls its upload must not hold the request forever.
    let Some(collected) = with_timeout(body.collect(limit), platform.sleep(route.timeout)).await else {
        let detail = format!("The request body did not arrive within {} ms.", route.timeout.as_millis());
        return Err(Rejection::new(ProblemKind::RequestTimeout, detail));
    };
    let bytes = match collected {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => return Err(too_large(limit)),
        Err(_) => return Err(Rejection::new(ProblemKind::BadRequest, "The request body could not be read.")),
    };
    if !bytes.is_empty() {
        if let Ok(length) = HeaderValue::try_from(bytes.len().to_string()) {
            headers.insert(CONTENT_LENGTH, length);
        }
    }
    if let Some(schema) = &route.validate {
        let verdict = validate(schema, headers, &bytes, limit);
        explain(platform, "body", || match &verdict {
            Ok(()) => format!("{} bytes read: valid against the route's schema", bytes.len()),
            Err(rejection) => format!("{} bytes read: {}", bytes.len(), rejection.detail),
        });
        verdict?;
    } else {
        explain(platform, "body", || format!("{} bytes read (kept for retries or failover)", bytes.len()));
    }
    // A platform that cannot tell an absent body from an empty stream (Spin) lands here for
    // every GET; forwarded without inventing a `Content-Length: 0`.
    Ok(Sendable::Bytes(bytes))
}

pub(crate) fn too_large(limit: u64) -> Rejection {
    Rejection::new(ProblemKind::PayloadTooLarge, format!("The request body exceeds {limit} bytes."))
}

/// The decoded body is validated; the upstream gets it as the client sent it.
fn validate(
    schema: &crate::validate::Schema,
    headers: &http::HeaderMap,
    bytes: &bytes::Bytes,
    limit: u64,
) -> Result<(), Rejection> {
    let coding = crate::encoding::coding(headers);
    let decoded = match crate::encoding::decode(coding, bytes, limit) {
        Ok(decoded) => decoded,
        Err(_) if coding == crate::encoding::Coding::Unreadable => {
            return Err(Rejection::new(
                ProblemKind::UnsupportedEncoding,
                "The request body's Content-Encoding cannot be read here; send it as identity, gzip or deflate.",
            ));
        }
        Err(crate::encoding::DecodeError::TooLarge) => return Err(too_large(limit)),
        Err(crate::encoding::DecodeError::Invalid) => {
            return Err(Rejection::new(
                ProblemKind::InvalidBody,
                "The request body does not decode as its Content-Encoding says.",
            ));
        }
    };
    let instance = serde_json::from_slice::<serde_json::Value>(&decoded)
        .map_err(|_| Rejection::new(ProblemKind::InvalidBody, "The request body must be JSON."))?;
    schema
        .validate(&instance)
        .map_err(|error| Rejection::new(ProblemKind::InvalidBody, format!("{}: {}", error.path, error.reason)))
}
