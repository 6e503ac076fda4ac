//! Compiles what a route does with bodies: the response `body` plan and `validate_body`.

use super::compile::Compiler;
use super::error::ConfigErrorKind as Kind;
use super::model::BodyTransform;
use crate::transform::body::{BodyPlan, JsonOps, JsonPath, OnInvalidBody};
use crate::validate::Schema;

/// Default largest response body a body transform reads.
pub const DEFAULT_TRANSFORM_BYTES: u64 = 1024 * 1024;

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
