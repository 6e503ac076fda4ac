//! Compiles `rate_limits` and the routes' `rate_limit` lists.

use std::collections::BTreeMap;

use http::HeaderName;

use super::compile::Compiler;
use super::error::{did_you_mean, ConfigErrorKind as Kind};
use super::model::RateLimitPolicy;
use crate::auth::policy::ClaimPath;
use crate::ratelimit::decide::{Rule, Window};
use crate::ratelimit::{policy_header, Backend, KeyPart, OnMissingKey, Persistence, RatePolicy};

/// Policy names to their index.
pub(super) type PolicyNames = BTreeMap<String, usize>;

const MAX_RATE: u64 = 1_000_000;
const MAX_PERIOD_S: u64 = 31_536_000;

pub(super) fn compile_policies(
    c: &mut Compiler,
    policies: &BTreeMap<String, RateLimitPolicy>,
) -> (Vec<RatePolicy>, PolicyNames) {
    let mut compiled = Vec::new();
    let mut names = PolicyNames::new();
    for (name, policy) in policies {
        let at = format!("rate_limits.{name}");
        let errors_before = c.errors.len();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            c.error(Kind::InvalidValue, &at, format!("invalid policy name \"{name}\"")).hint =
                Some("use letters, digits, '-', '_' and '.'".into());
        }
        let mut key = Vec::new();
        for (i, part) in policy.key.iter().enumerate() {
            let part_at = format!("{at}.key[{i}]");
            let parsed = match part.split_once(':') {
                None if part == "ip" => Some(KeyPart::Ip),
                None if part == "consumer" => Some(KeyPart::Consumer),
                None if part == "route" => Some(KeyPart::Route),
                Some(("claim", path)) => ClaimPath::parse(path).map(KeyPart::Claim),
                Some(("header", header)) => HeaderName::try_from(header).ok().map(KeyPart::Header),
                _ => None,
            };
            match parsed {
                Some(parsed) if key.contains(&parsed) => {
                    c.error(Kind::InvalidValue, part_at, format!("key part \"{part}\" is listed twice"));
                }
                Some(parsed) => key.push(parsed),
                None => {
                    c.error(Kind::InvalidValue, part_at, format!("invalid key part \"{part}\"")).hint = Some(
                        did_you_mean(part, ["ip", "consumer", "route"])
                            .unwrap_or_else(|| "use ip, consumer, route, claim:<path> or header:<name>".into()),
                    );
                }
            }
        }
        let mut rules = Vec::new();
        for (i, limit) in policy.limits.iter().enumerate() {
            let limit_at = format!("{at}.limits[{i}]");
            if !(1..=MAX_RATE).contains(&limit.requests) {
                c.error(
                    Kind::InvalidValue,
                    format!("{limit_at}.requests"),
                    format!("{} is out of range", limit.requests),
                )
                .hint = Some(format!("use 1 to {MAX_RATE}"));
            }
            if !(1..=MAX_PERIOD_S).contains(&limit.per_s) {
                c.error(
                    Kind::InvalidValue,
                    format!("{limit_at}.per_s"),
                    format!("{} s is out of range", limit.per_s),
                )
                .hint = Some(format!("use 1 to {MAX_PERIOD_S}"));
            }
            let burst = limit.burst.unwrap_or(limit.requests);
            if !(1..=MAX_RATE).contains(&burst) {
                c.error(Kind::InvalidValue, format!("{limit_at}.burst"), format!("{burst} is out of range")).hint =
                    Some(format!("use 1 to {MAX_RATE}"));
            }
            rules.push(Rule::Gcra { rate: limit.requests, period_ms: limit.per_s.saturating_mul(1000), burst });
        }
        for (i, quota) in policy.quotas.iter().enumerate() {
            let quota_at = format!("{at}.quotas[{i}]");
            if quota.requests == 0 {
                c.error(Kind::InvalidValue, format!("{quota_at}.requests"), "a quota of 0 admits nothing");
            }
            let window = match quota.per.as_str() {
                "minute" => Some(Window::Minute),
                "hour" => Some(Window::Hour),
                "day" => Some(Window::Day),
                "month" => Some(Window::Month),
                other => {
                    c.error(Kind::InvalidValue, format!("{quota_at}.per"), format!("unknown window \"{other}\""))
                        .hint = Some(
                        did_you_mean(other, ["minute", "hour", "day", "month"])
                            .unwrap_or_else(|| "use minute, hour, day or month".into()),
                    );
                    None
                }
            };
            if let Some(window) = window {
                rules.push(Rule::Quota { limit: quota.requests, window });
            }
        }
        if policy.limits.is_empty() && policy.quotas.is_empty() {
            c.error(Kind::MissingField, &at, "the policy has no limits and no quotas").hint =
                Some("add e.g. \"limits\": [{\"requests\": 10, \"per_s\": 1}]".into());
        }
        let on_missing = match policy.on_missing_key.as_deref().unwrap_or("shared") {
            "shared" => OnMissingKey::Shared,
            "skip" => OnMissingKey::Skip,
            "reject" => OnMissingKey::Reject,
            other => {
                c.error(Kind::InvalidValue, format!("{at}.on_missing_key"), format!("unknown value \"{other}\""))
                    .hint = Some("use shared, skip or reject".into());
                OnMissingKey::Shared
            }
        };
        let fail_open = match policy.on_error.as_deref().unwrap_or("closed") {
            "closed" => false,
            "open" => true,
            other => {
                c.error(Kind::InvalidValue, format!("{at}.on_error"), format!("unknown value \"{other}\"")).hint =
                    Some("use closed or open".into());
                false
            }
        };
        let persistence = match policy.persistence.as_deref().unwrap_or("every_request") {
            "every_request" => Persistence::EveryRequest,
            "write_behind" => Persistence::WriteBehind,
            other => {
                c.error(Kind::InvalidValue, format!("{at}.persistence"), format!("unknown value \"{other}\"")).hint =
                    Some("use every_request or write_behind".into());
                Persistence::EveryRequest
            }
        };
        let backend = match (policy.backend.as_deref().unwrap_or("exact"), &policy.binding) {
            ("exact", None) => Backend::Exact,
            ("exact", Some(_)) => {
                c.error(
                    Kind::InvalidValue,
                    format!("{at}.binding"),
                    "\"binding\" belongs to backend cloudflare_ratelimit",
                )
                .hint = Some("remove it, or set \"backend\": \"cloudflare_ratelimit\"".into());
                Backend::Exact
            }
            ("cloudflare_ratelimit", binding) => {
                let period = match (policy.limits.as_slice(), policy.quotas.is_empty()) {
                    ([limit], true)
                        if matches!(limit.per_s, 10 | 60) && limit.burst.is_none_or(|b| b == limit.requests) =>
                    {
                        Some(limit.per_s)
                    }
                    _ => None,
                };
                if period.is_none() {
                    c.error(
                        Kind::InvalidValue,
                        format!("{at}.backend"),
                        "Cloudflare's ratelimits binding counts one limit per 10 or 60 s",
                    )
                    .hint = Some(
                        "give exactly one limit with per_s 10 or 60, no burst and no quotas, or use the exact backend"
                            .into(),
                    );
                }
                if policy.persistence.is_some() {
                    c.error(
                        Kind::InvalidValue,
                        format!("{at}.persistence"),
                        "persistence applies to the exact backend only",
                    );
                }
                let valid_binding = binding
                    .as_deref()
                    .is_some_and(|b| !b.is_empty() && b.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'_'));
                if !valid_binding {
                    c.error(
                        Kind::MissingField,
                        format!("{at}.binding"),
                        "the ratelimits binding name is missing or invalid",
                    )
                    .hint = Some("name the [[ratelimits]] binding of wrangler.toml, e.g. \"API_LIMITER\"".into());
                }
                Backend::CloudflareBinding {
                    binding: binding.clone().unwrap_or_default(),
                    period_s: period.unwrap_or(60),
                }
            }
            (other, _) => {
                c.error(Kind::InvalidValue, format!("{at}.backend"), format!("unknown backend \"{other}\"")).hint =
                    Some("use exact or cloudflare_ratelimit".into());
                Backend::Exact
            }
        };
        if c.errors.len() > errors_before {
            continue;
        }
        names.insert(name.clone(), compiled.len());
        compiled.push(RatePolicy {
            name: name.as_str().into(),
            policy_header: policy_header(name, &rules).into(),
            key: key.into(),
            rules: rules.into(),
            on_missing,
            fail_open,
            headers: policy.headers.unwrap_or(true),
            persistence,
            backend,
        });
    }
    (compiled, names)
}

/// Resolves a list of policy names.
pub(super) fn resolve(c: &mut Compiler, at: &str, list: &[String], names: &PolicyNames) -> Box<[usize]> {
    let mut out = Vec::new();
    for (i, name) in list.iter().enumerate() {
        match names.get(name) {
            Some(index) if out.contains(index) => {
                c.error(Kind::InvalidValue, format!("{at}[{i}]"), format!("policy \"{name}\" is listed twice"));
            }
            Some(&index) => out.push(index),
            None => {
                c.error(Kind::UnknownPolicy, format!("{at}[{i}]"), format!("unknown rate-limit policy \"{name}\""))
                    .hint = did_you_mean(name, names.keys().map(String::as_str))
                    .or_else(|| Some("declare it under \"rate_limits\"".into()));
            }
        }
    }
    out.into()
}
