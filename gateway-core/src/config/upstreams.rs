//! Compiles how a route reaches its upstream: the pool (targets, balancing, stickiness,
//! breaker) and the `retry` policy.

use http::HeaderName;

use super::compile::Compiler;
use super::error::ConfigErrorKind as Kind;
use super::model::Retry;
use crate::resilience::RetryPolicy;

pub(super) fn retry(c: &mut Compiler, at: &str, retry: &Retry) -> Option<RetryPolicy> {
    let before = c.errors.len();
    if !(2..=10).contains(&retry.attempts) {
        c.error(Kind::InvalidValue, format!("{at}.attempts"), format!("{} attempts is out of range", retry.attempts))
            .hint = Some("use 2 to 10 (the first attempt included)".into());
    }
    let statuses = retry.statuses.clone().unwrap_or_else(|| vec![502, 503, 504]);
    if let Some(bad) = statuses.iter().find(|s| !(500..=599).contains(*s) && **s != 429) {
        c.error(Kind::InvalidValue, format!("{at}.statuses"), format!("status {bad} is not retryable")).hint =
            Some("retry 5xx statuses or 429".into());
    }
    let base = retry.backoff_ms.unwrap_or(50);
    let max = retry.max_backoff_ms.unwrap_or(1000).max(base);
    if c.errors.len() > before {
        return None;
    }
    Some(RetryPolicy {
        attempts: retry.attempts,
        base_backoff_ms: base,
        max_backoff_ms: max,
        retry_non_idempotent: retry.non_idempotent.unwrap_or(false),
        statuses,
    })
}

pub(super) fn pool(
    c: &mut Compiler,
    at: &str,
    upstream: &super::model::Upstream,
    targets: Vec<usize>,
    weights: Vec<u32>,
) -> Option<crate::route::Pool> {
    use crate::resilience::{Balance, BreakerPolicy};
    use crate::route::StickyKey;
    let before = c.errors.len();
    let balance = match upstream.balance.as_deref().unwrap_or("weighted") {
        "weighted" => Balance::Weighted,
        "round_robin" => Balance::RoundRobin,
        "failover" => Balance::Failover,
        other => {
            c.error(Kind::InvalidValue, format!("{at}.balance"), format!("unknown balance \"{other}\"")).hint =
                Some("use weighted, round_robin or failover".into());
            Balance::Weighted
        }
    };
    if balance == Balance::Weighted && !weights.is_empty() && weights.iter().all(|w| *w == 0) {
        c.error(Kind::InvalidValue, format!("{at}.targets"), "every weight is 0");
    }
    let sticky = upstream.sticky.as_deref().and_then(|key| {
        let parsed = match key.split_once(':') {
            Some(("claim", path)) => crate::auth::policy::ClaimPath::parse(path).map(StickyKey::Claim),
            Some(("header", name)) => HeaderName::try_from(name).ok().map(StickyKey::Header),
            Some(("cookie", name)) if !name.is_empty() => Some(StickyKey::Cookie(name.into())),
            _ => None,
        };
        if parsed.is_none() {
            c.error(Kind::InvalidValue, format!("{at}.sticky"), format!("invalid sticky key \"{key}\"")).hint =
                Some("use claim:<path>, header:<name> or cookie:<name>".into());
        }
        if balance != Balance::Weighted {
            c.error(Kind::InvalidValue, format!("{at}.sticky"), "sticky cohorts need balance weighted");
        }
        parsed
    });
    let breaker = upstream.breaker.as_ref().map(|b| BreakerPolicy {
        failure_percent: b.failure_percent.unwrap_or(50).clamp(1, 100),
        min_requests: b.min_requests.unwrap_or(10).max(1),
        window_ms: b.window_s.unwrap_or(30).max(1).saturating_mul(1000),
        cooldown_ms: b.cooldown_s.unwrap_or(15).max(1).saturating_mul(1000),
    });
    if c.errors.len() > before || targets.is_empty() {
        return None;
    }
    Some(crate::route::Pool { targets: targets.into(), weights: weights.into(), balance, sticky, breaker })
}
