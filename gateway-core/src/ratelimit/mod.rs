//! Rate limiting: policies compiled from routes.json, the counting key built from the
//! request and its identity, the answers (429 with `Retry-After`, the IETF `RateLimit-Policy`
//! and `RateLimit` headers), and [`decide`], the pure decision the platform's limiter runs
//! atomically (a Durable Object on Workers, key-value compare-and-swap on Spin).

pub mod counter;
pub mod decide;
pub mod refusals;

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::auth::policy::{claim_header_text, ClaimPath};
use crate::auth::Identity;
use crate::ports::{explain, Client, Platform, UnixMillis};
use crate::problem::{ProblemKind, Rejection};
use decide::{Decision, Rule, Window};

/// The IETF httpapi `RateLimit-Policy` header.
pub(crate) static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// The IETF httpapi `RateLimit` header.
pub(crate) static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// A compiled policy.
#[derive(Debug)]
pub(crate) struct RatePolicy {
    pub name: Box<str>,
    pub key: Box<[KeyPart]>,
    pub rules: Box<[Rule]>,
    pub on_missing: OnMissingKey,
    pub fail_open: bool,
    pub headers: bool,
    pub persistence: Persistence,
    pub backend: Backend,
    /// This policy's items of `RateLimit-Policy`, made once.
    pub policy_header: Box<str>,
}

/// One part of a counting key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyPart {
    Ip,
    Consumer,
    Claim(ClaimPath),
    Header(HeaderName),
    Route,
}

/// What to do with a request whose key cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnMissingKey {
    Shared,
    Skip,
    Reject,
}

/// How a Durable Object persists a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Written with every decision: exact across an eviction.
    EveryRequest,
    /// Written at most once a second: an eviction can forget up to a second of counts.
    WriteBehind,
}

/// Where a policy counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Exact: a Durable Object per key on Workers, key-value compare-and-swap on Spin.
    Exact,
    /// Cloudflare's `ratelimits` binding: approximate, per location; it answers allowed or not,
    /// so no `RateLimit` header can be given, and a refusal says to retry after the period.
    CloudflareBinding {
        /// The binding name.
        binding: String,
        /// The binding's period in seconds (10 or 60).
        period_s: u64,
    },
}

/// What a platform's limiter is asked to decide, atomically, for one key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitRequest {
    /// The policy's name: a limiter that holds the same routes file (the Durable Object, in
    /// the same wasm) can look the rules up instead of receiving them.
    pub policy: String,
    /// The rules of the policy, in order (their state is stored in that order).
    pub rules: Vec<Rule>,
    /// Units this request consumes.
    pub cost: u64,
    /// The gateway's clock; a limiter with a clock of its own (a Durable Object) may use that.
    pub now: UnixMillis,
    /// How the counter is persisted, where the limiter has a choice.
    pub persistence: Persistence,
    /// Where to count.
    pub backend: Backend,
}

/// The window length a quota names in `RateLimit-Policy` (a month is nominally 30 days).
fn window_seconds(window: Window) -> u64 {
    match window {
        Window::Minute => 60,
        Window::Hour => 3_600,
        Window::Day => 86_400,
        Window::Month => 2_592_000,
    }
}

fn item_name(policy: &str, index: usize, rules: usize) -> String {
    if rules == 1 {
        format!("\"{policy}\"")
    } else {
        format!("\"{policy}/{index}\"")
    }
}

/// `"name";q=10;w=1, ...`: the policy's rules as `RateLimit-Policy` items.
pub(crate) fn policy_header(policy: &str, rules: &[Rule]) -> String {
    let items: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let (quota, window) = match rule {
                Rule::Gcra { rate, period_ms, .. } => (*rate, period_ms / 1000),
                Rule::Quota { limit, window } => (*limit, window_seconds(*window)),
            };
            format!("{};q={quota};w={window}", item_name(policy, i, rules.len()))
        })
        .collect();
    items.join(", ")
}

/// `"name";r=9;t=1, ...`: what is left under each rule, and seconds until it resets.
fn status_header(policy: &RatePolicy, decision: &Decision) -> String {
    let items: Vec<String> = decision
        .rules
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let reset_s = status.reset_ms.div_ceil(1000);
            format!("{};r={};t={reset_s}", item_name(&policy.name, i, decision.rules.len()), status.remaining)
        })
        .collect();
    items.join(", ")
}

/// The key every request without its key parts shares (`on_missing_key: shared`). A `?` is
/// escaped in every part, so no part can spell it.
const MISSING_PART: &str = "|?missing";

/// Appends one key part. Everything but unreserved ASCII is percent-escaped, so distinct
/// parts can never build the same key, nor the shared key of requests without one.
fn push_part(key: &mut String, part: &[u8]) {
    key.push('|');
    crate::hygiene::push_escaped(key, part);
}

/// `rl:<policy>|part|part`, or `None` when a part is missing.
pub(crate) fn counting_key(
    policy: &RatePolicy,
    route_id: &str,
    client: &Client,
    headers: &HeaderMap,
    identity: &Identity,
) -> Option<String> {
    let mut key = String::with_capacity(64);
    key.push_str("rl:");
    key.push_str(&policy.name);
    for part in policy.key.iter() {
        match part {
            KeyPart::Ip => push_part(&mut key, client.ip?.to_string().as_bytes()),
            KeyPart::Consumer => match identity {
                Identity::Consumer(consumer) => push_part(&mut key, consumer.id.as_bytes()),
                _ => return None,
            },
            KeyPart::Claim(path) => match identity {
                Identity::Token { claims } => push_part(&mut key, claim_header_text(path.lookup(claims)?)?.as_bytes()),
                _ => return None,
            },
            // The raw bytes: a value that is not visible ASCII still counts apart.
            KeyPart::Header(name) => push_part(&mut key, headers.get(name)?.as_bytes()),
            KeyPart::Route => push_part(&mut key, route_id.as_bytes()),
        }
    }
    Some(key)
}

/// The outcome of the rate-limit phase for a request that may proceed: the headers to add
/// to whatever response it gets.
#[derive(Debug, Default)]
pub(crate) struct Admitted {
    pub headers: Option<HeaderMap>,
}

/// Checks every policy of the route in order; `Err` is the answer to send instead.
pub(crate) async fn enforce<P: Platform>(
    policies: &[&RatePolicy],
    platform: &P,
    refusals: &refusals::Refusals,
    route_id: &str,
    client: &Client,
    headers: &HeaderMap,
    identity: &Identity,
) -> Result<Admitted, Rejection> {
    let mut policy_items: Vec<&str> = Vec::new();
    let mut status_items: Vec<String> = Vec::new();
    for policy in policies {
        let key = match counting_key(policy, route_id, client, headers, identity) {
            Some(key) => key,
            None => match policy.on_missing {
                OnMissingKey::Skip => {
                    explain(platform, "rate-limit", || {
                        format!("policy \"{}\": the request lacks its key; not counted (on_missing: skip)", policy.name)
                    });
                    continue;
                }
                OnMissingKey::Reject => {
                    return Err(Rejection::new(
                        ProblemKind::RateLimitKeyMissing,
                        "This request lacks what its rate limit is counted by.",
                    ));
                }
                OnMissingKey::Shared => format!("rl:{}{MISSING_PART}", policy.name),
            },
        };
        let request = LimitRequest {
            policy: policy.name.to_string(),
            rules: policy.rules.to_vec(),
            cost: 1,
            now: platform.now(),
            persistence: policy.persistence,
            backend: policy.backend.clone(),
        };
        // Only the exact limiter's refusals are remembered: the binding's own answer is local
        // and cheap, so it is asked every time.
        let exact = policy.backend == Backend::Exact;
        let decision = match exact.then(|| refusals.recall(&key, request.now)).flatten() {
            Some(decision) => {
                explain(platform, "rate-limit", || {
                    format!(
                        "policy \"{}\": key {key} was refused moments ago; still refused, the limiter not asked",
                        policy.name
                    )
                });
                decision
            }
            None => {
                let Some(decision) = decide_or_fail(platform, policy, &key, &request).await? else { continue };
                if exact {
                    refusals.learn(&key, request.now, &decision);
                }
                decision
            }
        };
        if policy.headers {
            policy_items.push(&policy.policy_header);
            if !decision.rules.is_empty() {
                status_items.push(status_header(policy, &decision));
            }
        }
        explain(platform, "rate-limit", || {
            let remaining: Vec<String> = decision.rules.iter().map(|rule| rule.remaining.to_string()).collect();
            let verdict = if decision.allowed { "allowed" } else { "denied" };
            format!(
                "policy \"{}\": counted under key {key}: {verdict} (remaining per rule: {})",
                policy.name,
                remaining.join(", ")
            )
        });
        if !decision.allowed {
            let retry_after = decision.retry_after_ms.div_ceil(1000).max(1);
            let mut rejection = Rejection::new(ProblemKind::RateLimited, "Too many requests; retry later.")
                .with_header(RETRY_AFTER, HeaderValue::from(retry_after));
            if let Some(extra) = rate_headers(&policy_items, &status_items) {
                rejection.headers.extend(extra.iter().map(|(name, value)| (name.clone(), value.clone())));
            }
            return Err(rejection);
        }
    }
    Ok(Admitted { headers: rate_headers(&policy_items, &status_items) })
}

/// The limiter's decision; `Ok(None)` when it cannot be reached and the policy fails open.
async fn decide_or_fail<P: Platform>(
    platform: &P,
    policy: &RatePolicy,
    key: &str,
    request: &LimitRequest,
) -> Result<Option<Decision>, Rejection> {
    let error = match platform.limit(key, request).await {
        Ok(decision) => return Ok(Some(decision)),
        Err(error) => error,
    };
    platform.log(
        &serde_json::json!({
            "level": "warn",
            "message": "rate limiter unavailable",
            "policy": &*policy.name,
            "fail_open": policy.fail_open,
            "error": format!("{error:?}"),
        })
        .to_string(),
    );
    if policy.fail_open {
        return Ok(None);
    }
    Err(Rejection::new(ProblemKind::RateLimitUnavailable, "The rate limiter cannot be reached right now."))
}

fn rate_headers(policy_items: &[&str], status_items: &[String]) -> Option<HeaderMap> {
    if policy_items.is_empty() {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(2);
    if let Ok(value) = HeaderValue::try_from(policy_items.join(", ")) {
        headers.insert(RATELIMIT_POLICY.clone(), value);
    }
    if !status_items.is_empty() {
        if let Ok(value) = HeaderValue::try_from(status_items.join(", ")) {
            headers.insert(RATELIMIT.clone(), value);
        }
    }
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_headers() {
        let rules =
            [Rule::Gcra { rate: 10, period_ms: 1000, burst: 20 }, Rule::Quota { limit: 1000, window: Window::Day }];
        assert_eq!(policy_header("api", &rules), r#""api/0";q=10;w=1, "api/1";q=1000;w=86400"#);
        assert_eq!(policy_header("api", &rules[..1]), r#""api";q=10;w=1"#);
    }

    #[test]
    fn key_parts_cannot_collide() {
        let key = |parts: &[&[u8]]| {
            let mut key = String::new();
            for part in parts {
                push_part(&mut key, part);
            }
            key
        };
        let distinct: [&[&[u8]]; 8] = [
            &[b"x|y"],
            &[b"x", b"y"],
            &[b"x%7Cy"],
            &[b"?missing"],
            &[b"x%y"],
            &[b"caf\xc3\xa9"],
            &[b"caf%C3%A9"],
            &[b""],
        ];
        for (i, a) in distinct.iter().enumerate() {
            assert!(!key(a).contains(MISSING_PART), "{:?} spells the missing marker", key(a));
            for b in distinct.iter().skip(i + 1) {
                assert_ne!(key(a), key(b));
            }
        }
    }
}
