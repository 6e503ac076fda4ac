//! Inbound hygiene, before anything reads the request: the gateway's own identity and
//! forwarding headers removed, the request id kept or made, the path normalized once for
//! routing and the upstream alike (see `crate::path`).

use http::header::{HOST, ORIGIN};
use http::{Request, Uri};

use super::exchange::{Exchange, UpstreamRecord};
use crate::auth::Identity;
use crate::hygiene::{self, X_REQUEST_ID};
use crate::ports::{explain, Client, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::{Gateway, IsolateState};

/// The exchange for a request as it arrives; its body goes on separately.
pub(crate) fn run<'s, P: Platform>(
    gateway: &Gateway,
    state: &'s IsolateState,
    platform: &P,
    request: Request<P::Body>,
    client: &Client,
) -> (Exchange<'s>, P::Body) {
    let started = platform.now();
    // One client, one address: an IPv4-mapped IPv6 address is its IPv4 address for IP lists,
    // rate-limit keys and X-Forwarded-For alike.
    let client = Client { ip: client.ip.map(|ip| ip.to_canonical()), ..*client };
    let (mut parts, body) = request.into_parts();
    let method_override =
        hygiene::sanitize_inbound(&mut parts.headers, &gateway.identity_headers, gateway.trust_forwarded);
    let request_id = match parts.headers.get(&X_REQUEST_ID) {
        Some(id) if gateway.trust_forwarded || hygiene::is_well_formed_request_id(id.as_bytes()) => id.clone(),
        _ => hygiene::new_request_id(platform),
    };
    let request_id_text = request_id.to_str().unwrap_or_default().into();
    let origin = parts.headers.get(ORIGIN).cloned();
    let credentialed =
        parts.headers.contains_key(http::header::AUTHORIZATION) || parts.headers.contains_key(http::header::COOKIE);
    let exchange = Exchange {
        state,
        parts,
        client,
        request_id,
        request_id_text,
        origin,
        started,
        method_override,
        encoded_slash: false,
        upgrade: false,
        route: None,
        cors: gateway.default_cors,
        identity: Identity::Anonymous,
        credentialed,
        forwarded_query: None,
        rate_headers: None,
        upstream: UpstreamRecord::default(),
        problem: None,
    };
    (exchange, body)
}

/// Normalizes the path (dot segments refused, duplicate slashes merged where configured) and
/// notes an encoded slash for the route to judge.
pub(crate) fn normalize_path<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    exchange: &mut Exchange<'_>,
) -> Result<(), Rejection> {
    let normalized = crate::path::normalize(exchange.parts.uri.path(), gateway.merge_slashes)
        .map_err(|refusal| Rejection::new(ProblemKind::BadRequest, refusal.description()))?;
    exchange.encoded_slash = normalized.encoded_slash;
    if let std::borrow::Cow::Owned(path) = normalized.path {
        explain(platform, "routing", || format!("path normalized to {path}"));
        exchange.parts.uri = with_path(&exchange.parts.uri, &path)
            .ok_or_else(|| Rejection::new(ProblemKind::BadRequest, "The path cannot be normalized."))?;
    }
    Ok(())
}

/// `uri` with another path, its query kept.
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let mut path_and_query = String::with_capacity(path.len() + uri.query().map_or(0, |q| q.len() + 1));
    path_and_query.push_str(path);
    if let Some(query) = uri.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(http::uri::PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

/// `host[:port]` as the client addressed it: the URI authority, else the `Host` header.
pub(crate) fn authority_of<'a>(uri: &'a Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    match uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => headers.get(HOST)?.to_str().ok(),
    }
}

/// The host of an authority without its port; an IPv6 literal keeps its brackets, as
/// `http::uri::Authority::host` does.
pub(crate) fn host_without_port(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(rest) => {
            rest.split_once(']').map_or(authority, |(ip, _)| authority.get(..ip.len() + 2).unwrap_or(authority))
        }
        None => authority.split_once(':').map_or(authority, |(name, _)| name),
    }
}
