//! Compiles header and query edits (`request.headers`, `request.query`, `response.headers`)
//! and the templates they fill in.

use http::HeaderName;

use super::compile::Compiler;
use super::error::ConfigErrorKind as Kind;
use super::model::{HeaderEdits, QueryPolicy};
use crate::transform::body::{Placeholder, Template};
use crate::transform::edits::{self, QueryMode, QueryPlan};

pub(super) fn template(c: &mut Compiler, at: &str, text: &str, params: &[String]) -> Option<Template> {
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

pub(super) fn header(c: &mut Compiler, at: &str, name: &str) -> Option<HeaderName> {
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
