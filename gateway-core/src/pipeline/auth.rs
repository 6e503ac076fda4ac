//! Authentication: the route's requirement (schemes, scopes, roles) checked before the body is
//! read, so a refused caller costs no upload. See `crate::auth` for the schemes themselves.

use super::exchange::Exchange;
use crate::ports::{explain, Platform};
use crate::problem::Rejection;
use crate::route::CompiledRoute;
use crate::Gateway;

pub(crate) async fn run<P: Platform>(
    gateway: &Gateway,
    platform: &P,
    route: &CompiledRoute,
    exchange: &mut Exchange<'_>,
) -> Result<(), Rejection> {
    let Some(requirement) = route.auth.and_then(|i| gateway.auth.requirements.get(i)) else {
        explain(platform, "auth", || "none: the route is public".to_owned());
        return Ok(());
    };
    let parts = &mut exchange.parts;
    let keys = &exchange.state.keys;
    let authenticated =
        crate::auth::authenticate(gateway, keys, platform, requirement, &mut parts.headers, &parts.uri).await?;
    exchange.forwarded_query = authenticated.query;
    if !matches!(authenticated.identity, crate::auth::Identity::Anonymous) {
        exchange.credentialed = true;
    }
    exchange.identity = authenticated.identity;
    Ok(())
}
