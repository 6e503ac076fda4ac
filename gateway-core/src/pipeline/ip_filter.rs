//! The route's IP allow/deny list, on the address the runtime reports (never a header).

use super::exchange::Exchange;
use crate::ports::{explain, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::route::CompiledRoute;

pub(crate) fn run<P: Platform>(platform: &P, route: &CompiledRoute, exchange: &Exchange<'_>) -> Result<(), Rejection> {
    let Some(filter) = &route.ip else { return Ok(()) };
    let ip = exchange.client.ip;
    let permitted = filter.permits(ip);
    explain(platform, "ip", || {
        let who = ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
        format!("{who}: {}", if permitted { "permitted by the route's list" } else { "denied by the route's list" })
    });
    if permitted {
        Ok(())
    } else {
        Err(Rejection::new(ProblemKind::IpDenied, "Requests from this address are not allowed here."))
    }
}
