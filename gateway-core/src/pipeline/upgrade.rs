//! WebSocket upgrades: passed on only where the runtime can (`Fetch::WEBSOCKETS`), and only
//! from an origin the route's CORS policy allows (browsers do not preflight a WebSocket).

use http::header::ORIGIN;
use http::Method;

use super::exchange::Exchange;
use crate::hygiene;
use crate::ports::{explain, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::route::CompiledRoute;
use crate::Gateway;

pub(crate) fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    route: &CompiledRoute,
    exchange: &mut Exchange<'_>,
) -> Result<(), Rejection> {
    let headers = &exchange.parts.headers;
    exchange.upgrade = exchange.parts.method == Method::GET && hygiene::is_websocket_upgrade(headers);
    // A runtime may drop `Upgrade` before the gateway sees the request (Spin's host does, as a
    // hop-by-hop header); the handshake's own key still says what the client asked for.
    let handshake = exchange.upgrade || headers.contains_key(http::header::SEC_WEBSOCKET_KEY);
    if !handshake {
        return Ok(());
    }
    if !<P as crate::ports::Fetch>::WEBSOCKETS {
        return Err(Rejection::new(
            ProblemKind::WebSocketUnsupported,
            "This runtime cannot pass a WebSocket upgrade on (wasi-http has no upgrade); serve this route from Workers.",
        ));
    }
    let policy = route.cors.and_then(|i| gateway.cors.get(i));
    if let (Some(policy), Some(origin)) = (policy, headers.get(ORIGIN)) {
        if !policy.allows_origin(origin) {
            explain(platform, "cors", || "WebSocket upgrade: origin not allowed".to_owned());
            return Err(Rejection::new(ProblemKind::CorsRejected, "This origin may not open a WebSocket here."));
        }
    }
    explain(platform, "dispatch", || "a WebSocket upgrade: passed on, the socket relayed".to_owned());
    Ok(())
}
