//! Compiles a route's `ip`, `request`, `response`, `validate_body` and `retry`.

use http::HeaderName;

use super::compile::Compiler;
use super::error::ConfigErrorKind as Kind;
use super::model::{BodyTransform, HeaderEdits, IpLists, QueryPolicy, Retry};
use crate::ipfilter::{Cidr, IpFilter};
use crate::resilience::RetryPolicy;
use crate::transform::body::{JsonOps, JsonPath, OnInvalidBody, Placeholder, Template};
use crate::transform::edits::{self, QueryMode, QueryPlan};
use crate::validate::Schema;

/// Default largest response body a body transform reads.
pub const DEFAULT_TRANSFORM_BYTES: u64 = 1024 * 1024;

/// A compiled JSON body transform.
#[derive(Debug, Clone)]
pub(crate) struct BodyPlan {
    pub ops: JsonOps,
    pub max_bytes: u64,
    pub on_invalid: OnInvalidBody,
}

pub(super) fn ip_filter(c: &mut Compiler, at: &str, lists: &IpLists) -> IpFilter {
    let mut parse = |key: &str, list: &[String]| -> Vec<Cidr> {
        let mut out = Vec::new();
        for (i, text) in list.iter().enumerate() {
            match Cidr::parse(text) {
                Ok(cidr) => out.push(cidr),
                Err(reason) => {
                    c.error(Kind::InvalidValue, format!("{at}.{key}[{i}]"), format!("\"{text}\": {reason}")).hint =
                        Some("write an address or a range: \"10.0.0.0/8\", \"2001:db8::/32\", \"203.0.113.7\"".into());
                }
            }
        }
        out
    };
    let allow = parse("allow", &lists.allow);
    let deny = parse("deny", &lists.deny);
    IpFilter { allow, deny }
}

fn template(c: &mut Compiler, at: &str, text: &str, params: &[String]) -> Option<Template> {
    match Template::parse(text) {
        Ok(template) => {
            for placeholder in template.placeholders() {
                if let Placeholder::Param(name) = placeholder {
                    if !params.iter().any(|p| p == name) {
                        c.error(
                            Kind::UnknownParameter,
                            at,
                            format!("\"{{params.{name}}}\" is not captured by the path"),
                        )
                        .hint = Some(format!(
                            "the path captures: {}",
                            if params.is_empty() { "nothing".to_owned() } else { params.join(", ") }
                        ));
                        return None;
                    }
                }
            }
            Some(template)
        }
        Err(reason) => {
            c.error(Kind::InvalidValue, at, reason);
            None
        }
    }
}

fn header(c: &mut Compiler, at: &str, name: &str) -> Option<HeaderName> {
    match HeaderName::try_from(name) {
        Ok(name) if name == http::header::HOST || name == http::header::CONTENT_LENGTH => {
            c.error(Kind::InvalidValue, at, format!("\"{name}\" is managed by the gateway"));
            None
        }
        Ok(name) => Some(name),
        Err(_) => {
            c.error(Kind::InvalidValue, at, format!("invalid header name \"{name}\""));
            None
        }
    }
}

pub(super) fn header_edits(c: &mut Compiler, at: &str, edits: &HeaderEdits, params: &[String]) -> edits::HeaderEdits {
    let remove =
        edits.remove.iter().enumerate().filter_map(|(i, n)| header(c, &format!("{at}.remove[{i}]"), n)).collect();
    let rename = edits
        .rename
        .iter()
        .filter_map(|(from, to)| {
            let at = format!("{at}.rename.{from}");
            Some((header(c, &at, from)?, header(c, &at, to)?))
        })
        .collect();
    let mut templated =
        |key: &str, map: &std::collections::BTreeMap<String, String>| -> Box<[(HeaderName, Template)]> {
            map.iter()
                .filter_map(|(name, text)| {
                    let at = format!("{at}.{key}.{name}");
                    Some((header(c, &at, name)?, template(c, &at, text, params)?))
                })
                .collect()
        };
    let set = templated("set", &edits.set);
    let add = templated("add", &edits.add);
    edits::HeaderEdits { remove, rename, set, add }
}

pub(super) fn query_plan(c: &mut Compiler, at: &str, policy: &QueryPolicy, params: &[String]) -> QueryPlan {
    let names = |list: &Vec<String>| list.iter().map(|n| n.as_str().into()).collect::<Box<[Box<str>]>>();
    let mode = match (&policy.allow, &policy.deny) {
        (Some(_), Some(_)) => {
            c.error(Kind::InvalidValue, format!("{at}.deny"), "\"allow\" and \"deny\" exclude each other").hint =
                Some("keep one of them".into());
            QueryMode::Pass
        }
        (Some(allow), None) => QueryMode::Allow(names(allow)),
        (None, Some(deny)) => QueryMode::Deny(names(deny)),
        (None, None) => QueryMode::Pass,
    };
    let add = policy
        .add
        .iter()
        .filter_map(|(name, text)| {
            Some((name.as_str().into(), template(c, &format!("{at}.add.{name}"), text, params)?))
        })
        .collect();
    QueryPlan { mode, add }
}

pub(super) fn body_plan(c: &mut Compiler, at: &str, body: &BodyTransform) -> BodyPlan {
    let mut path = |key: &str, text: &str| -> Option<JsonPath> {
        let parsed = JsonPath::parse(text);
        if parsed.is_none() {
            c.error(Kind::InvalidValue, format!("{at}.{key}"), format!("invalid path \"{text}\"")).hint =
                Some("write a dotted path, e.g. \"data.items.id\"".into());
        }
        parsed
    };
    let target = body.target.as_deref().and_then(|t| path("target", t));
    let allow = body.allow.as_ref().map(|list| list.iter().filter_map(|p| path("allow", p)).collect());
    let deny = body.deny.iter().filter_map(|p| path("deny", p)).collect();
    let rename = body.rename.iter().filter_map(|(from, to)| Some((path("rename", from)?, to.clone()))).collect();
    // A route that removes fields for safety fails closed: a body it cannot filter is never
    // passed on unless the route says so.
    let filters = body.allow.is_some() || !body.deny.is_empty();
    let on_invalid = match body.on_invalid.as_deref() {
        None if filters => OnInvalidBody::BadGateway,
        None | Some("pass_through") => OnInvalidBody::PassThrough,
        Some("bad_gateway") => OnInvalidBody::BadGateway,
        Some(other) => {
            c.error(Kind::InvalidValue, format!("{at}.on_invalid"), format!("unknown value \"{other}\"")).hint =
                Some("use pass_through or bad_gateway".into());
            OnInvalidBody::BadGateway
        }
    };
    let ops = JsonOps { target, allow, deny, rename, group: body.group.clone() };
    if ops.is_empty() {
        c.error(Kind::InvalidValue, at, "the body transform has no operation").hint =
            Some("give target, allow, deny, rename or group, or leave \"body\" out".into());
    }
    BodyPlan { ops, max_bytes: body.max_bytes.unwrap_or(DEFAULT_TRANSFORM_BYTES), on_invalid }
}

pub(super) fn schema(c: &mut Compiler, at: &str, schema: &serde_json::Value) -> Option<Schema> {
    match Schema::compile(schema) {
        Ok(schema) => Some(schema),
        Err((pointer, reason)) => {
            c.error(Kind::InvalidValue, format!("{at}{}", pointer.replace('/', ".")), reason).hint =
                Some("supported: type, properties, required, additionalProperties, items, enum, const, bounds, lengths, anyOf/allOf/oneOf/not".into());
            None
        }
    }
}

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

pub(super) fn aggregate(
    c: &mut Compiler,
    at: &str,
    aggregate: &super::model::Aggregate,
    params: &[String],
    upstreams: &std::collections::HashMap<&str, usize>,
    route_timeout: std::time::Duration,
) -> Option<crate::aggregate::Aggregate> {
    let before = c.errors.len();
    if aggregate.legs.is_empty() {
        c.error(Kind::InvalidValue, format!("{at}.legs"), "an aggregate needs at least one leg");
    }
    let deadline = std::time::Duration::from_millis(
        aggregate.deadline_ms.unwrap_or(u64::try_from(route_timeout.as_millis()).unwrap_or(u64::MAX)),
    );
    if deadline.is_zero() || deadline > route_timeout {
        c.error(
            Kind::InvalidValue,
            format!("{at}.deadline_ms"),
            "the deadline must be between 1 ms and the route's timeout",
        );
    }
    let mut legs = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, leg) in aggregate.legs.iter().enumerate() {
        let at = format!("{at}.legs[{i}]");
        if !names.insert(leg.name.as_str()) {
            c.error(Kind::InvalidValue, format!("{at}.name"), format!("leg name \"{}\" is used twice", leg.name));
        }
        let upstream = match upstreams.get(leg.upstream.as_str()) {
            Some(&u) => u,
            None => {
                c.error(
                    Kind::UnknownUpstream,
                    format!("{at}.upstream"),
                    format!("unknown upstream \"{}\"", leg.upstream),
                )
                .hint = super::error::did_you_mean(&leg.upstream, upstreams.keys().copied())
                    .or_else(|| Some("declare it under \"upstreams\"".into()));
                continue;
            }
        };
        if !leg.path.starts_with('/') {
            c.error(Kind::InvalidValue, format!("{at}.path"), "a leg path starts with '/'");
        }
        let Some(path) = template(c, &format!("{at}.path"), &leg.path, params) else { continue };
        let method = match http::Method::from_bytes(leg.method.as_deref().unwrap_or("GET").as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                c.error(Kind::InvalidValue, format!("{at}.method"), "invalid method");
                continue;
            }
        };
        let timeout = leg.timeout_ms.map_or(deadline, std::time::Duration::from_millis);
        if timeout.is_zero() || timeout > deadline {
            c.error(
                Kind::InvalidValue,
                format!("{at}.timeout_ms"),
                "a leg's timeout must be between 1 ms and the deadline",
            );
        }
        let forward_headers =
            leg.forward_headers.iter().filter_map(|n| header(c, &format!("{at}.forward_headers"), n)).collect();
        let headers = leg
            .headers
            .iter()
            .filter_map(|(name, text)| {
                let at = format!("{at}.headers.{name}");
                Some((header(c, &at, name)?, template(c, &at, text, params)?))
            })
            .collect();
        legs.push(crate::aggregate::Leg {
            name: leg.name.as_str().into(),
            upstream,
            path,
            method,
            required: leg.required.unwrap_or(true),
            timeout,
            group: leg.group.as_deref().map(Into::into),
            forward_headers,
            headers,
        });
    }
    if c.errors.len() > before {
        return None;
    }
    Some(crate::aggregate::Aggregate { legs: legs.into(), deadline })
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
