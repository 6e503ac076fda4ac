//! Rate limits: every policy of the route counts the (authenticated) caller before the body is
//! read; the `RateLimit` headers go on whatever answer follows. See `crate::ratelimit`.

use super::exchange::Exchange;
use crate::ports::Platform;
use crate::problem::Rejection;
use crate::route::CompiledRoute;
use crate::Gateway;

pub(crate) async fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    route: &CompiledRoute,
    exchange: &mut Exchange<'_>,
) -> Result<(), Rejection> {
    if route.rate_limits.is_empty() {
        return Ok(());
    }
    let policies: Vec<&crate::ratelimit::RatePolicy> =
        route.rate_limits.iter().filter_map(|&i| gateway.rate_policies.get(i)).collect();
    let admitted = crate::ratelimit::enforce(
        &policies,
        platform,
        &exchange.state.refusals,
        &route.id,
        &exchange.client,
        &exchange.parts.headers,
        &exchange.identity,
    )
    .await?;
    exchange.rate_headers = admitted.headers;
    Ok(())
}
