//! Compiles `aggregate`: the legs, their upstreams, templates and deadlines.

use super::compile::Compiler;
use super::edits::{header, template};
use super::error::ConfigErrorKind as Kind;

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
