//! JSON body operations (target, allow, deny, rename, group), the deep [`merge`] used by
//! aggregation, and the `{source.path}` [`Template`]s of header, query and path transforms.
//!
//! Everything here is pure: no I/O, no clock, and no panic on any input. Traversal is bounded:
//! a value nested deeper than 256 containers is out of reach of every path (see [`JsonOps`]).

use std::fmt;

use http::HeaderName;
use serde_json::{Map, Value};

/// How many containers (objects or arrays) deep a path may reach. Bodies parsed by
/// [`transform_bytes`] never get there (serde_json refuses nesting beyond 128); the bound keeps
/// [`JsonOps::apply`] from exhausting the stack on a value built in memory.
const MAX_DEPTH: usize = 256;

/// A compiled JSON body transform: the operations, the largest body read, what to do with
/// one that cannot be read.
#[derive(Debug, Clone)]
pub(crate) struct BodyPlan {
    pub ops: JsonOps,
    pub max_bytes: u64,
    pub on_invalid: OnInvalidBody,
}

/// A dotted path: `user.address.city`; a segment applies to every element when the value at that
/// point is an array (`items.price` = the `price` of every object in `items`, also inside arrays
/// of arrays). Segments are non-empty; no escaping, so a key containing `.` cannot be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Box<[Box<str>]>);

impl JsonPath {
    /// Parses `a.b.c`; `None` for an empty text or an empty segment (`a..b`, `.a`, `a.`).
    pub fn parse(text: &str) -> Option<Self> {
        let segments: Box<[Box<str>]> = text.split('.').map(Box::from).collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return None;
        }
        Some(Self(segments))
    }

    /// The keys, from the outermost.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|segment| &**segment)
    }
}

/// The dotted text the path was parsed from.
impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, segment) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(".")?;
            }
            f.write_str(segment)?;
        }
        Ok(())
    }
}

/// Operations on a JSON body, applied in this fixed order: target, allow, deny, rename, group.
/// Each step sees the result of the previous one, so the paths of `allow`, `deny` and `rename`
/// are relative to the value `target` selected, and `allow`/`deny` name keys before `rename`.
///
/// A top-level array is handled by the path rule itself: every path applies to each element.
/// A scalar body (string, number, boolean, `null`) has no keys: `target` and `allow` turn it into
/// `null`, `deny` and `rename` leave it as it is, `group` wraps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonOps {
    /// Return only the value at this path (e.g. `data`). Through an array the result is the array
    /// of what each element holds at the rest of the path, elements without it omitted
    /// (`items.id` on `{"items": [{"id": 1}, {}]}` gives `[1]`). When the path is absent the
    /// result is `{}` for an object body (a top-level array gives the array of what its elements
    /// hold, possibly `[]`) and `null` for a scalar body. A `null` found at the path is returned.
    pub target: Option<JsonPath>,
    /// Keep only these paths (and the objects/arrays leading to them); everything else removed.
    /// A path ending at an object or array keeps that whole subtree. An object or array on the
    /// way is kept even when the rest of the path is absent in it (`user.name` on `{"user": {}}`
    /// keeps `{"user": {}}`); a scalar where the path goes on is removed, from an object as from
    /// an array. `Some(vec![])` keeps nothing: `{}` for an object.
    pub allow: Option<Vec<JsonPath>>,
    /// Remove these paths; through arrays from every element. A path that does not exist, or runs
    /// into a scalar, changes nothing. A path naming an array removes the whole array.
    pub deny: Vec<JsonPath>,
    /// Rename: the value at `from` moves to the sibling key `to` (a plain key name used verbatim,
    /// not a path), e.g. (`user.mail`, `email`); through arrays in every element. An existing `to`
    /// is overwritten; an absent `from` changes nothing (an existing `to` stays). Renames run in
    /// list order, each seeing the previous ones.
    pub rename: Vec<(JsonPath, String)>,
    /// Wrap the whole result under this key: `{"<group>": result}` (once, also for an array).
    pub group: Option<String>,
}

impl JsonOps {
    /// No operation at all: the body need not be read.
    pub fn is_empty(&self) -> bool {
        self.target.is_none()
            && self.allow.is_none()
            && self.deny.is_empty()
            && self.rename.is_empty()
            && self.group.is_none()
    }

    /// Applies the operations. Works on objects and on arrays of objects at the top (each element
    /// transformed); see the type's documentation for scalars and absent paths.
    pub fn apply(&self, mut value: Value) -> Value {
        if let Some(path) = &self.target {
            let was_object = value.is_object();
            value = match select(value, &path.0, 0) {
                Some(found) => found,
                None if was_object => Value::Object(Map::new()),
                None => Value::Null,
            };
        }
        if let Some(allow) = &self.allow {
            let paths: Vec<&[Box<str>]> = allow.iter().map(|path| &*path.0).collect();
            if !retain_paths(&mut value, &paths, 0) {
                value = Value::Null;
            }
        }
        for path in &self.deny {
            remove_path(&mut value, &path.0);
        }
        for (from, to) in &self.rename {
            rename_path(&mut value, &from.0, to);
        }
        if let Some(key) = &self.group {
            let mut wrapper = Map::new();
            wrapper.insert(key.clone(), value);
            value = Value::Object(wrapper);
        }
        value
    }
}

/// The value at `path`; through an array, the array of what its elements hold.
fn select(value: Value, path: &[Box<str>], depth: usize) -> Option<Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    if depth >= MAX_DEPTH {
        return None;
    }
    match value {
        Value::Object(mut map) => select(map.remove(&**first)?, rest, depth + 1),
        Value::Array(items) => {
            Some(Value::Array(items.into_iter().filter_map(|item| select(item, path, depth + 1)).collect()))
        }
        _ => None,
    }
}

/// Keeps in `value` only what `paths` reach; `false` when `value` itself must go. No path in
/// `paths` is empty unless one ended here, which keeps the whole value.
fn retain_paths(value: &mut Value, paths: &[&[Box<str>]], depth: usize) -> bool {
    if paths.iter().any(|path| path.is_empty()) {
        return true;
    }
    if depth >= MAX_DEPTH {
        return false;
    }
    match value {
        Value::Object(map) => {
            map.retain(|key, child| {
                let tails: Vec<&[Box<str>]> = paths
                    .iter()
                    .filter_map(|path| match path.split_first() {
                        Some((first, rest)) if **first == **key => Some(rest),
                        _ => None,
                    })
                    .collect();
                !tails.is_empty() && retain_paths(child, &tails, depth + 1)
            });
            true
        }
        Value::Array(items) => {
            items.retain_mut(|item| retain_paths(item, paths, depth + 1));
            true
        }
        _ => false,
    }
}

/// Calls `at_leaf` with the object that holds the last segment of `path` and that segment,
/// in every element of the arrays on the way: the one walk behind `deny` and `rename`.
fn for_each_holder(
    value: &mut Value,
    path: &[Box<str>],
    depth: usize,
    at_leaf: &mut impl FnMut(&mut Map<String, Value>, &str),
) {
    if depth >= MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => match path {
            [] => {}
            [last] => at_leaf(map, last),
            [first, rest @ ..] => {
                if let Some(child) = map.get_mut(&**first) {
                    for_each_holder(child, rest, depth + 1, at_leaf);
                }
            }
        },
        Value::Array(items) => {
            for item in items {
                for_each_holder(item, path, depth + 1, at_leaf);
            }
        }
        _ => {}
    }
}

/// Removes the value at `path`; the other keys keep their order.
fn remove_path(value: &mut Value, path: &[Box<str>]) {
    for_each_holder(value, path, 0, &mut |map, key| {
        map.shift_remove(key);
    });
}

/// Moves the value at `path` to the sibling key `to` (last among its siblings).
fn rename_path(value: &mut Value, path: &[Box<str>], to: &str) {
    for_each_holder(value, path, 0, &mut |map, key| {
        if key != to {
            if let Some(moved) = map.shift_remove(key) {
                map.insert(to.to_owned(), moved);
            }
        }
    });
}

/// What to do when a body that must be transformed is not JSON or is larger than the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnInvalidBody {
    /// Send the upstream's body unchanged (the default).
    #[default]
    PassThrough,
    /// Answer 502 instead.
    BadGateway,
}

/// Why a body was not transformed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyIssue {
    /// Not a single JSON value (syntax, trailing data, invalid UTF-8, nesting beyond 128, empty).
    NotJson,
    /// Larger than the transform's limit; reported by the caller that buffers the body
    /// ([`transform_bytes`] itself has no limit).
    TooLarge,
}

impl fmt::Display for BodyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotJson => "the body is not JSON",
            Self::TooLarge => "the body is larger than the transform limit",
        })
    }
}

impl std::error::Error for BodyIssue {}

/// Reads `bytes` as JSON, applies `ops`, serializes (compact). `Err(BodyIssue::NotJson)` for
/// non-JSON input; the caller decides (pass through or 502). With no operation
/// ([`JsonOps::is_empty`]) the bytes come back unchanged once checked to be JSON. Any JSON value
/// is accepted, scalars included (see [`JsonOps`] for what the operations make of them).
pub fn transform_bytes(ops: &JsonOps, bytes: &[u8]) -> Result<Vec<u8>, BodyIssue> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| BodyIssue::NotJson)?;
    if ops.is_empty() {
        return Ok(bytes.to_vec());
    }
    serde_json::to_vec(&ops.apply(value)).map_err(|_| BodyIssue::NotJson)
}

/// Merges `other` into `base`: objects merge key by key recursively; any other value in `other`
/// replaces the one in `base` (arrays are replaced, not concatenated; a `null` in `other` replaces
/// too, it does not delete as in JSON Merge Patch). Keys only in `base` stay. Iterative: any depth.
pub fn merge(base: &mut Value, other: Value) {
    let mut pending: Vec<(&mut Value, Value)> = vec![(base, other)];
    while let Some((base, other)) = pending.pop() {
        match (base, other) {
            (Value::Object(base_map), Value::Object(other_map)) => {
                let mut deeper = Map::new();
                for (key, value) in other_map {
                    if value.is_object() && base_map.get(&key).is_some_and(Value::is_object) {
                        deeper.insert(key, value);
                    } else {
                        base_map.insert(key, value);
                    }
                }
                if deeper.is_empty() {
                    continue;
                }
                for (key, child) in base_map {
                    if let Some(value) = deeper.remove(key) {
                        pending.push((child, value));
                    }
                }
            }
            (base, other) => *base = other,
        }
    }
}

/// A string with `{source.path}` placeholders: `{params.id}`, `{claims.sub}`,
/// `{claims.realm_access.roles}`, `{consumer.id}` / `{consumer.name}` / `{consumer.tags}`,
/// `{request.ip}`, `{request.id}`, `{request.method}`, `{request.path}`, `{header.x-foo}`.
/// `{{` and `}}` are literal braces. Placeholders are exact: no spaces inside the braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Box<[Piece]>);

/// A part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Box<str>),
    Value(Placeholder),
}

/// What a template placeholder refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `{params.<name>}`: a path parameter the route captures (the name is non-empty).
    Param(String),
    /// `{claims.<dotted path>}`: a claim of the verified token (segments non-empty).
    Claim(String),
    /// `{consumer.id}`, `{consumer.name}` or `{consumer.tags}`: the API-key consumer.
    Consumer(ConsumerField),
    /// `{request.ip}`: the client's address.
    RequestIp,
    /// `{request.id}`: the request id.
    RequestId,
    /// `{request.method}`: the request method.
    RequestMethod,
    /// `{request.path}`: the request path.
    RequestPath,
    /// `{header.<name>}`: a request header (the name lowercased).
    Header(HeaderName),
}

/// The field of an API-key consumer a template uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerField {
    /// `{consumer.id}`.
    Id,
    /// `{consumer.name}`.
    Name,
    /// `{consumer.tags}`.
    Tags,
}

/// The placeholder as written in a template, braces included: `{params.id}`, `{header.x-foo}`.
impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Param(name) => write!(f, "{{params.{name}}}"),
            Self::Claim(path) => write!(f, "{{claims.{path}}}"),
            Self::Consumer(ConsumerField::Id) => f.write_str("{consumer.id}"),
            Self::Consumer(ConsumerField::Name) => f.write_str("{consumer.name}"),
            Self::Consumer(ConsumerField::Tags) => f.write_str("{consumer.tags}"),
            Self::RequestIp => f.write_str("{request.ip}"),
            Self::RequestId => f.write_str("{request.id}"),
            Self::RequestMethod => f.write_str("{request.method}"),
            Self::RequestPath => f.write_str("{request.path}"),
            Self::Header(name) => write!(f, "{{header.{name}}}"),
        }
    }
}

impl Placeholder {
    /// Parses the text between the braces.
    fn parse(name: &str) -> Result<Self, String> {
        let unknown = || {
            format!(
                "unknown placeholder \"{{{name}}}\": use params., claims., consumer.id/name/tags, \
                 request.ip/id/method/path or header.<name>"
            )
        };
        let Some((source, field)) = name.split_once('.') else {
            return Err(unknown());
        };
        match source {
            "params" if field.is_empty() => Err(format!("placeholder \"{{{name}}}\" needs a parameter name")),
            "params" => Ok(Self::Param(field.to_owned())),
            "claims" if field.split('.').any(str::is_empty) => {
                Err(format!("placeholder \"{{{name}}}\" needs a claim path without empty segments"))
            }
            "claims" => Ok(Self::Claim(field.to_owned())),
            "consumer" => match field {
                "id" => Ok(Self::Consumer(ConsumerField::Id)),
                "name" => Ok(Self::Consumer(ConsumerField::Name)),
                "tags" => Ok(Self::Consumer(ConsumerField::Tags)),
                _ => Err(unknown()),
            },
            "request" => match field {
                "ip" => Ok(Self::RequestIp),
                "id" => Ok(Self::RequestId),
                "method" => Ok(Self::RequestMethod),
                "path" => Ok(Self::RequestPath),
                _ => Err(unknown()),
            },
            "header" => HeaderName::from_bytes(field.as_bytes())
                .map(Self::Header)
                .map_err(|_| format!("placeholder \"{{{name}}}\": \"{field}\" is not a valid header name")),
            _ => Err(unknown()),
        }
    }
}

impl Template {
    /// Parses; Err(reason) names the bad placeholder (e.g. `unknown placeholder "{foo.bar}": use
    /// params., claims., consumer.id/name/tags, request.ip/id/method/path or header.<name>`), an
    /// unclosed `{` or a lone `}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.next_if_eq(&'{').is_some() => literal.push('{'),
                '}' if chars.next_if_eq(&'}').is_some() => literal.push('}'),
                '}' => return Err("unmatched \"}\": write \"}}\" for a literal brace".to_owned()),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "unclosed placeholder \"{{{name}\": end it with \"}}\" \
                             or write \"{{{{\" for a literal brace"
                        ));
                    }
                    let placeholder = Placeholder::parse(&name)?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal).into()));
                    }
                    pieces.push(Piece::Value(placeholder));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal.into()));
        }
        Ok(Self(pieces.into()))
    }

    /// The placeholders used, in order, repeats included (for config validation, e.g. params the
    /// path does not capture).
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.0.iter().filter_map(|piece| match piece {
            Piece::Value(placeholder) => Some(placeholder),
            Piece::Text(_) => None,
        })
    }

    /// Renders with a lookup; `None` from the lookup renders as "" and the whole render reports
    /// `missing = true` (the second value). Looked-up values are inserted verbatim.
    pub fn render(&self, lookup: impl Fn(&Placeholder) -> Option<String>) -> (String, bool) {
        let mut out = String::new();
        let mut missing = false;
        for piece in self.0.iter() {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value(placeholder) => match lookup(placeholder) {
                    Some(value) => out.push_str(&value),
                    None => missing = true,
                },
            }
        }
        (out, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> JsonPath {
        JsonPath::parse(text).unwrap()
    }

    /// A compact way to write [`JsonOps`] in tables.
    #[derive(Default)]
    struct Spec {
        target: Option<&'static str>,
        allow: Option<&'static [&'static str]>,
        deny: &'static [&'static str],
        rename: &'static [(&'static str, &'static str)],
        group: Option<&'static str>,
    }

    impl Spec {
        fn ops(&self) -> JsonOps {
            JsonOps {
                target: self.target.map(path),
                allow: self.allow.map(|paths| paths.iter().copied().map(path).collect()),
                deny: self.deny.iter().copied().map(path).collect(),
                rename: self.rename.iter().map(|(from, to)| (path(from), (*to).to_owned())).collect(),
                group: self.group.map(str::to_owned),
            }
        }
    }

    #[test]
    fn json_paths() {
        assert_eq!(path("user.address.city").segments().collect::<Vec<_>>(), ["user", "address", "city"]);
        assert_eq!(path("user.address.city").to_string(), "user.address.city");
        assert_eq!(path("id").to_string(), "id");
        for bad in ["", ".", "a..b", ".a", "a."] {
            assert_eq!(JsonPath::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn operations() {
        let cases: Vec<(&str, Spec, Value, Value)> = vec![
            // target
            (
                "target nested",
                Spec { target: Some("data.user"), ..Spec::default() },
                json!({"data": {"user": {"id": 1}}, "meta": {"page": 1}}),
                json!({"id": 1}),
            ),
            (
                "target absent in an object",
                Spec { target: Some("data"), ..Spec::default() },
                json!({"error": "x"}),
                json!({}),
            ),
            (
                "target null is kept",
                Spec { target: Some("data"), ..Spec::default() },
                json!({"data": null}),
                json!(null),
            ),
            (
                "target through an array omits elements without it",
                Spec { target: Some("data.id"), ..Spec::default() },
                json!({"data": [{"id": 1, "x": 1}, {"x": 2}, 7, {"id": 3}]}),
                json!([1, 3]),
            ),
            (
                "target on a top-level array",
                Spec { target: Some("data"), ..Spec::default() },
                json!([{"data": {"a": 1}}, {"other": 1}]),
                json!([{"a": 1}]),
            ),
            (
                "target absent in every element",
                Spec { target: Some("x"), ..Spec::default() },
                json!([{"a": 1}]),
                json!([]),
            ),
            (
                "target through nested arrays keeps their shape",
                Spec { target: Some("a"), ..Spec::default() },
                json!([[{"a": 1}, {"b": 2}], [{"a": 3}]]),
                json!([[1], [3]]),
            ),
            ("target through a scalar", Spec { target: Some("a.b"), ..Spec::default() }, json!({"a": 5}), json!({})),
            // allow
            (
                "allow nested",
                Spec { allow: Some(&["user.id", "user.name"]), ..Spec::default() },
                json!({"user": {"id": 1, "name": "a", "secret": "s"}, "token": "t"}),
                json!({"user": {"id": 1, "name": "a"}}),
            ),
            (
                "allow through arrays",
                Spec { allow: Some(&["items.price", "total"]), ..Spec::default() },
                json!({"items": [{"price": 1, "cost": 0}, {"name": "b"}, 5], "total": 3, "debug": true}),
                json!({"items": [{"price": 1}, {}], "total": 3}),
            ),
            (
                "allow keeps a whole subtree",
                Spec { allow: Some(&["user", "user.a.b"]), ..Spec::default() },
                json!({"user": {"a": {"b": 1, "c": 2}, "d": [1, 2]}, "x": 1}),
                json!({"user": {"a": {"b": 1, "c": 2}, "d": [1, 2]}}),
            ),
            (
                "allow keeps a whole array",
                Spec { allow: Some(&["tags"]), ..Spec::default() },
                json!({"tags": ["a", {"b": 1}], "x": 1}),
                json!({"tags": ["a", {"b": 1}]}),
            ),
            (
                "allow on a top-level array of objects",
                Spec { allow: Some(&["id"]), ..Spec::default() },
                json!([{"id": 1, "password": "x"}, {"id": 2}]),
                json!([{"id": 1}, {"id": 2}]),
            ),
            (
                "allow through a scalar removes it",
                Spec { allow: Some(&["a.b", "c"]), ..Spec::default() },
                json!({"a": 5, "c": 1}),
                json!({"c": 1}),
            ),
            (
                "allow of a missing path keeps the containers on the way",
                Spec { allow: Some(&["user.name"]), ..Spec::default() },
                json!({"user": {"id": 1}, "x": 2}),
                json!({"user": {}}),
            ),
            (
                "allow of nothing present",
                Spec { allow: Some(&["nope"]), ..Spec::default() },
                json!({"a": 1}),
                json!({}),
            ),
            ("allow of an empty list", Spec { allow: Some(&[]), ..Spec::default() }, json!({"a": 1}), json!({})),
            // deny
            (
                "deny nested",
                Spec { deny: &["user.password"], ..Spec::default() },
                json!({"user": {"id": 1, "password": "x"}}),
                json!({"user": {"id": 1}}),
            ),
            (
                "deny through arrays",
                Spec { deny: &["items.cost"], ..Spec::default() },
                json!({"items": [{"price": 1, "cost": 0}, {"cost": 2}, 3, [{"cost": 4, "n": 1}]]}),
                json!({"items": [{"price": 1}, {}, 3, [{"n": 1}]]}),
            ),
            (
                "deny of a whole array",
                Spec { deny: &["items"], ..Spec::default() },
                json!({"items": [{"a": 1}, 2], "count": 2}),
                json!({"count": 2}),
            ),
            (
                "deny on a top-level array",
                Spec { deny: &["password"], ..Spec::default() },
                json!([{"id": 1, "password": "x"}, {"id": 2}]),
                json!([{"id": 1}, {"id": 2}]),
            ),
            (
                "deny of absent paths is a no-op",
                Spec { deny: &["b", "a.b", "c.d.e", "list.x"], ..Spec::default() },
                json!({"a": 1, "c": {"x": 1}, "list": [1, "two"]}),
                json!({"a": 1, "c": {"x": 1}, "list": [1, "two"]}),
            ),
            // rename
            (
                "rename nested",
                Spec { rename: &[("user.mail", "email")], ..Spec::default() },
                json!({"user": {"id": 1, "mail": "m@x"}}),
                json!({"user": {"id": 1, "email": "m@x"}}),
            ),
            (
                "rename through arrays",
                Spec { rename: &[("items.cost", "price")], ..Spec::default() },
                json!({"items": [{"cost": 1}, {"name": "b"}, 3]}),
                json!({"items": [{"price": 1}, {"name": "b"}, 3]}),
            ),
            (
                "rename on a top-level array",
                Spec { rename: &[("id", "user_id")], ..Spec::default() },
                json!([{"id": 1}, {"id": 2}]),
                json!([{"user_id": 1}, {"user_id": 2}]),
            ),
            (
                "rename overwrites an existing key",
                Spec { rename: &[("a", "b")], ..Spec::default() },
                json!({"a": 1, "b": 2}),
                json!({"b": 1}),
            ),
            (
                "rename of an absent key keeps the target",
                Spec { rename: &[("a", "b"), ("x.y", "z")], ..Spec::default() },
                json!({"b": 2, "x": 1}),
                json!({"b": 2, "x": 1}),
            ),
            ("rename to itself", Spec { rename: &[("a", "a")], ..Spec::default() }, json!({"a": 1}), json!({"a": 1})),
            (
                "renames run in order",
                Spec { rename: &[("a", "b"), ("b", "c")], ..Spec::default() },
                json!({"a": 1}),
                json!({"c": 1}),
            ),
            (
                "rename moves a whole subtree",
                Spec { rename: &[("data", "payload")], ..Spec::default() },
                json!({"data": {"items": [1, 2]}}),
                json!({"payload": {"items": [1, 2]}}),
            ),
            // group
            ("group", Spec { group: Some("data"), ..Spec::default() }, json!({"a": 1}), json!({"data": {"a": 1}})),
            (
                "group wraps a top-level array once",
                Spec { group: Some("items"), ..Spec::default() },
                json!([{"a": 1}, {"a": 2}]),
                json!({"items": [{"a": 1}, {"a": 2}]}),
            ),
            // order: target, allow, deny, rename, group
            (
                "all operations in order",
                Spec {
                    target: Some("data"),
                    allow: Some(&["user.id", "user.password", "user.mail", "items.price"]),
                    deny: &["user.password"],
                    rename: &[("user.mail", "email"), ("items.price", "amount")],
                    group: Some("result"),
                },
                json!({"data": {"user": {"id": 1, "password": "x", "mail": "m", "extra": 1},
                                "items": [{"price": 1, "cost": 0}], "other": 1}, "meta": 1}),
                json!({"result": {"user": {"id": 1, "email": "m"}, "items": [{"amount": 1}]}}),
            ),
            (
                "allow runs before rename and names the original key",
                Spec { allow: Some(&["email"]), rename: &[("mail", "email")], ..Spec::default() },
                json!({"mail": "m", "email_verified": true}),
                json!({}),
            ),
            (
                "deny runs before rename",
                Spec { deny: &["email"], rename: &[("mail", "email")], ..Spec::default() },
                json!({"mail": "m"}),
                json!({"email": "m"}),
            ),
            (
                "group runs last, after target",
                Spec { target: Some("data"), group: Some("data"), ..Spec::default() },
                json!({"data": {"a": 1}, "meta": 2}),
                json!({"data": {"a": 1}}),
            ),
            // scalars and no-ops
            ("no operation", Spec::default(), json!({"a": [1, {"b": 2}]}), json!({"a": [1, {"b": 2}]})),
            ("scalar with deny", Spec { deny: &["a"], ..Spec::default() }, json!("text"), json!("text")),
            ("scalar with rename", Spec { rename: &[("a", "b")], ..Spec::default() }, json!(5), json!(5)),
            ("scalar with allow", Spec { allow: Some(&["a"]), ..Spec::default() }, json!("secret"), json!(null)),
            ("scalar with target", Spec { target: Some("a"), ..Spec::default() }, json!(true), json!(null)),
            ("scalar with group", Spec { group: Some("g"), ..Spec::default() }, json!("text"), json!({"g": "text"})),
            ("null with group", Spec { group: Some("g"), ..Spec::default() }, json!(null), json!({"g": null})),
        ];
        for (name, spec, input, expected) in cases {
            assert_eq!(spec.ops().apply(input), expected, "{name}");
        }
    }

    #[test]
    fn is_empty() {
        assert!(JsonOps::default().is_empty());
        assert!(!Spec { deny: &["a"], ..Spec::default() }.ops().is_empty());
        assert!(!Spec { allow: Some(&[]), ..Spec::default() }.ops().is_empty());
        assert!(!Spec { group: Some("g"), ..Spec::default() }.ops().is_empty());
    }

    /// `levels` arrays around `inner`.
    fn wrap(levels: usize, inner: Value) -> Value {
        (0..levels).fold(inner, |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn depth_is_bounded() {
        let deny_b = Spec { deny: &["b"], ..Spec::default() }.ops();
        assert_eq!(deny_b.apply(wrap(10, json!({"a": 1, "b": 2}))), wrap(10, json!({"a": 1})));
        // Beyond the bound nothing is reached: allow drops it, target omits it, the others leave it.
        let deep = wrap(MAX_DEPTH + 10, json!({"a": 1, "b": 2}));
        let within_reach = wrap(MAX_DEPTH - 1, json!([]));
        assert_eq!(Spec { allow: Some(&["a"]), ..Spec::default() }.ops().apply(deep.clone()), within_reach);
        assert_eq!(Spec { target: Some("a"), ..Spec::default() }.ops().apply(deep.clone()), within_reach);
        assert_eq!(deny_b.apply(deep.clone()), deep);
        assert_eq!(Spec { rename: &[("a", "c")], ..Spec::default() }.ops().apply(deep.clone()), deep);
    }

    #[test]
    fn bytes() {
        let deny_b = Spec { deny: &["b"], ..Spec::default() }.ops();
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for bad in [
            &b"not json"[..],
            b"",
            b"   ",
            b"{\"a\": 1",
            b"{\"a\": 1} x",
            b"\"\xff\"",
            b"\xef\xbb\xbf{}",
            deep.as_bytes(),
        ] {
            assert_eq!(transform_bytes(&deny_b, bad), Err(BodyIssue::NotJson), "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(transform_bytes(&JsonOps::default(), bad), Err(BodyIssue::NotJson));
        }
        let cases: Vec<(Spec, &[u8], &[u8])> = vec![
            (Spec { deny: &["b"], ..Spec::default() }, b"{\"a\": 1, \"b\": 2}", b"{\"a\":1}"),
            (Spec { group: Some("g"), ..Spec::default() }, b"\"hello\"", b"{\"g\":\"hello\"}"),
            (Spec { deny: &["a"], ..Spec::default() }, b" \"hello\" ", b"\"hello\""),
            (Spec { allow: Some(&["a"]), ..Spec::default() }, b"42", b"null"),
            (Spec { target: Some("a"), ..Spec::default() }, b"null", b"null"),
            (
                Spec { target: Some("data"), ..Spec::default() },
                b"[{\"data\": 1}, {\"data\": \"\xc3\xa9\"}]",
                "[1,\"é\"]".as_bytes(),
            ),
            // No operation: the bytes come back as they were.
            (Spec::default(), b"{ \"b\": 1, \"a\": 2 }\n", b"{ \"b\": 1, \"a\": 2 }\n"),
        ];
        for (spec, input, expected) in cases {
            assert_eq!(
                transform_bytes(&spec.ops(), input).as_deref(),
                Ok(expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(BodyIssue::NotJson.to_string(), "the body is not JSON");
        assert_eq!(OnInvalidBody::default(), OnInvalidBody::PassThrough);
    }

    #[test]
    fn merges() {
        let cases = [
            (
                "nested objects",
                json!({"a": {"b": 1, "c": 2, "d": {"e": 1}}, "f": 1}),
                json!({"a": {"c": 3, "g": 4, "d": {"h": 2}}, "i": 5}),
                json!({"a": {"b": 1, "c": 3, "g": 4, "d": {"e": 1, "h": 2}}, "f": 1, "i": 5}),
            ),
            (
                "arrays are replaced",
                json!({"a": [1, 2], "b": [{"x": 1}]}),
                json!({"a": [3], "b": [{"y": 2}]}),
                json!({"a": [3], "b": [{"y": 2}]}),
            ),
            ("null replaces an object", json!({"a": {"b": 1}, "c": 1}), json!({"a": null}), json!({"a": null, "c": 1})),
            ("null base is replaced", json!(null), json!({"a": 1}), json!({"a": 1})),
            ("null other replaces the base", json!({"a": 1}), json!(null), json!(null)),
            ("object replaces a scalar", json!({"a": 1}), json!({"a": {"b": 2}}), json!({"a": {"b": 2}})),
            ("scalar replaces an object", json!({"a": {"b": 2}}), json!({"a": "x"}), json!({"a": "x"})),
            ("object replaces an array", json!([1]), json!({"a": 1}), json!({"a": 1})),
            ("empty object changes nothing", json!({"a": 1}), json!({}), json!({"a": 1})),
            ("into an empty object", json!({}), json!({"a": {"b": 1}}), json!({"a": {"b": 1}})),
        ];
        for (name, mut base, other, expected) in cases {
            merge(&mut base, other);
            assert_eq!(base, expected, "{name}");
        }
    }

    #[test]
    fn merge_of_deep_objects() {
        fn nested(levels: usize, leaf: Value) -> Value {
            (0..levels).fold(leaf, |inner, _| json!({ "n": inner }))
        }
        let mut base = nested(500, json!({"a": 1}));
        merge(&mut base, nested(500, json!({"b": 2})));
        assert_eq!(base, nested(500, json!({"a": 1, "b": 2})));
    }

    #[test]
    fn template_parsing() {
        let template = Template::parse(
            "{params.id}/{claims.realm_access.roles}/{consumer.id}{consumer.name}{consumer.tags}\
             {request.ip}{request.id}{request.method}{request.path}{header.X-Foo}",
        )
        .unwrap();
        assert_eq!(
            template.placeholders().cloned().collect::<Vec<_>>(),
            [
                Placeholder::Param("id".into()),
                Placeholder::Claim("realm_access.roles".into()),
                Placeholder::Consumer(ConsumerField::Id),
                Placeholder::Consumer(ConsumerField::Name),
                Placeholder::Consumer(ConsumerField::Tags),
                Placeholder::RequestIp,
                Placeholder::RequestId,
                Placeholder::RequestMethod,
                Placeholder::RequestPath,
                Placeholder::Header(HeaderName::from_static("x-foo")),
            ]
        );
        let shown: Vec<String> = template.placeholders().map(ToString::to_string).collect();
        assert_eq!(
            shown.concat(),
            "{params.id}{claims.realm_access.roles}{consumer.id}{consumer.name}{consumer.tags}\
             {request.ip}{request.id}{request.method}{request.path}{header.x-foo}"
        );
        for placeholder in template.placeholders() {
            let reparsed = Template::parse(&placeholder.to_string()).unwrap();
            assert_eq!(reparsed.placeholders().collect::<Vec<_>>(), [placeholder]);
        }

        let errors = [
            (
                "{foo.bar}",
                "unknown placeholder \"{foo.bar}\": use params., claims., consumer.id/name/tags, \
                 request.ip/id/method/path or header.<name>",
            ),
            ("a {} b", "unknown placeholder \"{}\""),
            ("{params}", "unknown placeholder \"{params}\""),
            ("{ params.id }", "unknown placeholder \"{ params.id }\""),
            ("{consumer.email}", "unknown placeholder \"{consumer.email}\""),
            ("{request.host}", "unknown placeholder \"{request.host}\""),
            ("{params.}", "placeholder \"{params.}\" needs a parameter name"),
            ("{claims.}", "placeholder \"{claims.}\" needs a claim path"),
            ("{claims.a..b}", "placeholder \"{claims.a..b}\" needs a claim path"),
            ("{header.bad name}", "\"bad name\" is not a valid header name"),
            ("{header.}", "\"\" is not a valid header name"),
            ("x {params.id", "unclosed placeholder \"{params.id\""),
            ("{", "unclosed placeholder \"{\""),
            ("a } b", "unmatched \"}\""),
            ("{params.id}}", "unmatched \"}\""),
            ("{{params.id}", "unmatched \"}\""),
        ];
        for (text, reason) in errors {
            let error = Template::parse(text).unwrap_err();
            assert!(error.contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn template_rendering() {
        let lookup = |placeholder: &Placeholder| match placeholder {
            Placeholder::Param(name) if name == "id" => Some("42".to_owned()),
            Placeholder::RequestMethod => Some("GET".to_owned()),
            Placeholder::Header(name) if name == "x-foo" => Some("{v}".to_owned()),
            _ => None,
        };
        let cases = [
            ("", "", false),
            ("plain text ✓", "plain text ✓", false),
            ("{{literal}} and }} {{{{", "{literal} and } {{", false),
            ("{{{params.id}}}", "{42}", false),
            ("/users/{params.id}/{request.method}", "/users/42/GET", false),
            ("é{header.x-foo}é", "é{v}é", false),
            ("{params.id}-{claims.sub}", "42-", true),
            ("{consumer.name}", "", true),
            ("{params.other}{params.id}", "42", true),
        ];
        for (text, rendered, missing) in cases {
            let template = Template::parse(text).unwrap();
            assert_eq!(template.render(lookup), (rendered.to_owned(), missing), "{text:?}");
        }
        assert_eq!(Template::parse("a{{b").unwrap(), Template::parse("a{{b").unwrap());
        assert_eq!(Template::parse("plain").unwrap().placeholders().count(), 0);
    }
}
