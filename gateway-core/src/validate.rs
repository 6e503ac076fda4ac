//! Request-body validation against a subset of JSON Schema draft 2020-12: a [`Schema`] is
//! compiled once and validates many bodies.
//!
//! Supported keywords (with their draft 2020-12 meaning; a keyword about one JSON type
//! ignores instances of the others, e.g. `minimum` ignores strings):
//!
//! * `type`: one name or a non-empty array of unique names among `object`, `array`,
//!   `string`, `number`, `integer` (a number with no fractional part: `1.0` is one), `boolean`, `null`;
//! * `enum` (non-empty array), `const`: equality as JSON Schema defines it (`1` equals `1.0`);
//! * `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers; exact comparison
//!   of integers and floats);
//! * `minLength`, `maxLength`: counted in Unicode scalar values;
//! * `items` (one schema for every element), `minItems`, `maxItems`;
//! * `properties`, `required`, `additionalProperties` (a boolean or a schema);
//! * `allOf`, `anyOf`, `oneOf` (non-empty arrays of schemas), `not`;
//! * the boolean schemas `true` and `false`;
//! * annotations, accepted and ignored because they do not validate: `$schema`, `title`,
//!   `description` (strings), `examples` (an array), `default`.
//!
//! Every other keyword is a compile error naming its JSON pointer in the schema, never
//! silently ignored: among them `format`, `pattern`, `$ref`, `$defs`, `$id`, `$comment`,
//! `prefixItems`, `patternProperties`, `uniqueItems`, `if`/`then`/`else`. Subschemas nest
//! at most [`MAX_DEPTH`] levels, as do `const` and `enum` values.
//!
//! [`Schema::validate`] reports the first failure only, as a JSON path into the body
//! (`$.items[2].price`, `$['odd key']`) and a client-safe reason (`must be >= 0`,
//! `is required`, `must be a string`, `is not allowed`). Within one schema the keywords are
//! checked in this order: `type`, `const`, `enum`, number bounds, string lengths, array
//! sizes then `items` (in element order), `required` (in its order), `properties` (by
//! property name), `additionalProperties` (by member name), `allOf`, `anyOf`, `oneOf`, `not`.
//! A body nesting arrays and objects more than [`MAX_DEPTH`] deep is refused ("nesting too
//! deep") before any keyword is checked, so validation never recurses deeper than that.
//!
//! ```
//! use gateway_core::validate::{Schema, ValidationError};
//! let schema = Schema::compile(&serde_json::json!({
//!     "type": "object",
//!     "required": ["items"],
//!     "properties": {"items": {"type": "array", "items": {
//!         "type": "object", "properties": {"price": {"type": "number", "minimum": 0}}}}},
//!     "additionalProperties": false
//! })).unwrap();
//! assert_eq!(schema.validate(&serde_json::json!({"items": [{"price": 1}]})), Ok(()));
//! let error = schema.validate(&serde_json::json!({"items": [{"price": 1}, {"price": -2}]})).unwrap_err();
//! assert_eq!(error, ValidationError { path: "$.items[1].price".into(), reason: "must be >= 0".into() });
//!
//! let error = Schema::compile(&serde_json::json!({"properties": {"email": {"format": "email"}}})).unwrap_err();
//! assert_eq!(error, ("/properties/email/format".into(), "unsupported keyword `format`".into()));
//! ```

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

/// How deep subschemas, `const`/`enum` values and validated bodies may nest: a body is
/// refused when an array or object lies inside more than `MAX_DEPTH - 1` others.
pub const MAX_DEPTH: usize = 64;

/// The longest `const`/`enum` text quoted in a reason; longer ones are not spelled out.
const MAX_QUOTED: usize = 200;

/// A compiled schema: immutable, validates any number of bodies.
#[derive(Debug, Clone)]
pub struct Schema {
    root: Node,
}

/// Why a body does not match its schema: the first failure found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where in the body, as a JSON path: `$` is the whole body, `$.items[2].price` a member
    /// of an element; a name that is not an identifier is quoted: `$['first name']`.
    pub path: String,
    /// What is wrong, safe to show the client: `must be >= 0`, `is required`, ...
    pub reason: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for ValidationError {}

impl Schema {
    /// Compiles a schema. The error is the JSON pointer of the offending part of the schema
    /// (`""` is the whole schema, `/properties/email/format` a keyword) and why.
    pub fn compile(schema: &Value) -> Result<Self, (String, String)> {
        let mut pointer = String::new();
        let root = compile_node(schema, &mut pointer, 1)?;
        Ok(Schema { root })
    }

    /// `Ok(())` when `instance` matches, or the first failure.
    pub fn validate(&self, instance: &Value) -> Result<(), ValidationError> {
        check_depth(instance, &Path::Root, 1)?;
        self.root.check(instance, &Path::Root)
    }
}

// ---------------------------------------------------------------------------------------
// Compiled form.

#[derive(Debug, Clone)]
enum Node {
    /// `true` or `{}`.
    Any,
    /// `false`.
    Never,
    Rules(Box<Rules>),
}

#[derive(Debug, Clone, Default)]
struct Rules {
    types: Option<Types>,
    constant: Option<Literals>,
    one_of_values: Option<Literals>,
    minimum: Option<Bound>,
    maximum: Option<Bound>,
    exclusive_minimum: Option<Bound>,
    exclusive_maximum: Option<Bound>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    items: Option<Node>,
    required: Box<[Box<str>]>,
    /// Sorted by name.
    properties: Box<[(Box<str>, Node)]>,
    additional: Option<Node>,
    all_of: Box<[Node]>,
    any_of: Box<[Node]>,
    one_of: Box<[Node]>,
    not: Option<Node>,
}

/// `const` (one value) or `enum`, with the text a reason quotes when it is short.
#[derive(Debug, Clone)]
struct Literals {
    values: Box<[Value]>,
    quoted: Option<Box<str>>,
}

/// A number bound and its text as written.
#[derive(Debug, Clone)]
struct Bound {
    value: Num,
    text: Box<str>,
}

/// A set of JSON types (bits in [`TYPE_NAMES`] order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Types(u8);

/// Type names, their bit and how a reason names them.
const TYPE_NAMES: [(&str, u8, &str); 7] = [
    ("object", 1, "an object"),
    ("array", 2, "an array"),
    ("string", 4, "a string"),
    ("number", 8, "a number"),
    ("integer", 16, "an integer"),
    ("boolean", 32, "a boolean"),
    ("null", 64, "null"),
];
const OBJECT: u8 = 1;
const ARRAY: u8 = 2;
const STRING: u8 = 4;
const NUMBER: u8 = 8;
const INTEGER: u8 = 16;
const BOOLEAN: u8 = 32;
const NULL: u8 = 64;

// ---------------------------------------------------------------------------------------
// Compilation.

type CompileError = (String, String);

fn error(pointer: &str, reason: impl Into<String>) -> CompileError {
    (pointer.to_owned(), reason.into())
}

/// Appends one reference token (RFC 6901 escaping) to a JSON pointer.
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Runs `f` with `token` appended to `pointer`, restoring it afterwards.
fn within<T>(
    pointer: &mut String,
    token: &str,
    f: impl FnOnce(&mut String) -> Result<T, CompileError>,
) -> Result<T, CompileError> {
    let len = pointer.len();
    push_token(pointer, token);
    let result = f(pointer);
    pointer.truncate(len);
    result
}

fn compile_node(schema: &Value, pointer: &mut String, depth: usize) -> Result<Node, CompileError> {
    if depth > MAX_DEPTH {
        return Err(error(pointer, format!("schema nesting too deep (more than {MAX_DEPTH} levels)")));
    }
    match schema {
        Value::Bool(true) => Ok(Node::Any),
        Value::Bool(false) => Ok(Node::Never),
        Value::Object(keywords) => {
            let mut rules = Rules::default();
            let mut any_rule = false;
            for (keyword, value) in keywords {
                any_rule |=
                    within(pointer, keyword, |pointer| compile_keyword(&mut rules, keyword, value, pointer, depth))?;
            }
            Ok(if any_rule { Node::Rules(Box::new(rules)) } else { Node::Any })
        }
        _ => Err(error(pointer, "a schema must be an object or a boolean")),
    }
}

/// Compiles one keyword into `rules`; whether it validates anything (annotations do not).
fn compile_keyword(
    rules: &mut Rules,
    keyword: &str,
    value: &Value,
    pointer: &mut String,
    depth: usize,
) -> Result<bool, CompileError> {
    let subschema = |value: &Value, pointer: &mut String| compile_node(value, pointer, depth + 1);
    match keyword {
        "$schema" | "title" | "description" => {
            if !value.is_string() {
                return Err(error(pointer, "must be a string"));
            }
            return Ok(false);
        }
        "examples" => {
            if !value.is_array() {
                return Err(error(pointer, "must be an array"));
            }
            return Ok(false);
        }
        "default" => return Ok(false),
        "type" => rules.types = Some(compile_types(value, pointer)?),
        "const" => rules.constant = Some(literals(std::slice::from_ref(value), pointer, "must be equal to ")?),
        "enum" => {
            let values = match value {
                Value::Array(values) if !values.is_empty() => values,
                _ => return Err(error(pointer, "must be a non-empty array")),
            };
            rules.one_of_values = Some(literals(values, pointer, "must be one of ")?);
        }
        "minimum" => rules.minimum = Some(bound(value, pointer)?),
        "maximum" => rules.maximum = Some(bound(value, pointer)?),
        "exclusiveMinimum" => rules.exclusive_minimum = Some(bound(value, pointer)?),
        "exclusiveMaximum" => rules.exclusive_maximum = Some(bound(value, pointer)?),
        "minLength" => rules.min_length = Some(count(value, pointer)?),
        "maxLength" => rules.max_length = Some(count(value, pointer)?),
        "minItems" => rules.min_items = Some(count(value, pointer)?),
        "maxItems" => rules.max_items = Some(count(value, pointer)?),
        "items" => {
            if value.is_array() {
                return Err(error(
                    pointer,
                    "must be a schema (in draft 2020-12 the array form is `prefixItems`, which is not supported)",
                ));
            }
            rules.items = Some(subschema(value, pointer)?);
        }
        "additionalProperties" => rules.additional = Some(subschema(value, pointer)?),
        "not" => rules.not = Some(subschema(value, pointer)?),
        "required" => {
            let Value::Array(names) = value else {
                return Err(error(pointer, "must be an array of property names"));
            };
            let mut required: Vec<Box<str>> = Vec::with_capacity(names.len());
            for (index, name) in names.iter().enumerate() {
                let Value::String(name) = name else {
                    return within(pointer, &index.to_string(), |pointer| Err(error(pointer, "must be a string")));
                };
                if required.iter().any(|seen| **seen == **name) {
                    return within(pointer, &index.to_string(), |pointer| {
                        Err(error(pointer, format!("duplicate property name `{name}`")))
                    });
                }
                required.push(name.as_str().into());
            }
            rules.required = required.into();
        }
        "properties" => {
            let Value::Object(members) = value else {
                return Err(error(pointer, "must be an object of schemas"));
            };
            let mut properties = Vec::with_capacity(members.len());
            for (name, member) in members {
                let node = within(pointer, name, |pointer| subschema(member, pointer))?;
                properties.push((Box::<str>::from(name.as_str()), node));
            }
            properties.sort_by(|a, b| a.0.cmp(&b.0));
            rules.properties = properties.into();
        }
        "allOf" => rules.all_of = schema_list(value, pointer, depth)?,
        "anyOf" => rules.any_of = schema_list(value, pointer, depth)?,
        "oneOf" => rules.one_of = schema_list(value, pointer, depth)?,
        "$ref" | "$dynamicRef" | "$defs" | "definitions" => {
            return Err(error(pointer, format!("unsupported keyword `{keyword}` (references are not supported)")));
        }
        _ => return Err(error(pointer, format!("unsupported keyword `{keyword}`"))),
    }
    Ok(true)
}

fn compile_types(value: &Value, pointer: &mut String) -> Result<Types, CompileError> {
    fn type_bit(name: &Value, pointer: &str) -> Result<u8, CompileError> {
        let found = name.as_str().and_then(|name| TYPE_NAMES.iter().find(|(known, _, _)| *known == name));
        match found {
            Some(&(_, bit, _)) => Ok(bit),
            None => Err(error(
                pointer,
                "must be one of `object`, `array`, `string`, `number`, `integer`, `boolean`, `null`",
            )),
        }
    }
    match value {
        Value::String(_) => Ok(Types(type_bit(value, pointer)?)),
        Value::Array(names) if !names.is_empty() => {
            let mut types = 0;
            for (index, name) in names.iter().enumerate() {
                let bit = within(pointer, &index.to_string(), |pointer| type_bit(name, pointer))?;
                if types & bit != 0 {
                    return within(pointer, &index.to_string(), |pointer| Err(error(pointer, "duplicate type")));
                }
                types |= bit;
            }
            Ok(Types(types))
        }
        _ => Err(error(pointer, "must be a type name or a non-empty array of type names")),
    }
}

fn schema_list(value: &Value, pointer: &mut String, depth: usize) -> Result<Box<[Node]>, CompileError> {
    let schemas = match value {
        Value::Array(schemas) if !schemas.is_empty() => schemas,
        _ => return Err(error(pointer, "must be a non-empty array of schemas")),
    };
    let mut nodes = Vec::with_capacity(schemas.len());
    for (index, schema) in schemas.iter().enumerate() {
        nodes.push(within(pointer, &index.to_string(), |pointer| compile_node(schema, pointer, depth + 1))?);
    }
    Ok(nodes.into())
}

fn literals(values: &[Value], pointer: &str, prefix: &str) -> Result<Literals, CompileError> {
    if values.iter().any(|value| too_deep(value, 1)) {
        return Err(error(pointer, format!("value nesting too deep (more than {MAX_DEPTH} levels)")));
    }
    let mut quoted = String::from(prefix);
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            quoted.push_str(", ");
        }
        quoted.push_str(&value.to_string());
        if quoted.len() > MAX_QUOTED {
            break;
        }
    }
    let quoted = (quoted.len() <= MAX_QUOTED).then(|| quoted.into_boxed_str());
    Ok(Literals { values: values.into(), quoted })
}

/// Whether `value` has an array or object more than [`MAX_DEPTH`] levels down.
fn too_deep(value: &Value, depth: usize) -> bool {
    match value {
        Value::Array(_) | Value::Object(_) if depth > MAX_DEPTH => true,
        Value::Array(items) => items.iter().any(|item| too_deep(item, depth + 1)),
        Value::Object(members) => members.values().any(|member| too_deep(member, depth + 1)),
        _ => false,
    }
}

fn bound(value: &Value, pointer: &str) -> Result<Bound, CompileError> {
    match value {
        Value::Number(number) => Ok(Bound { value: Num::of(number), text: number.to_string().into() }),
        _ => Err(error(pointer, "must be a number")),
    }
}

/// A non-negative integer (`2.0` is one, as in draft 2020-12).
fn count(value: &Value, pointer: &str) -> Result<u64, CompileError> {
    let integral = |f: f64| f.is_finite() && f >= 0.0 && f.trunc() == f && f < 18_446_744_073_709_551_616.0;
    let count = match value {
        Value::Number(number) => match number.as_u64() {
            Some(count) => Some(count),
            // Exact: an integral float below 2^64 converts without loss.
            None => number.as_f64().filter(|f| integral(*f)).map(|f| f as u64),
        },
        _ => None,
    };
    count.ok_or_else(|| error(pointer, "must be a non-negative integer"))
}

// ---------------------------------------------------------------------------------------
// Validation.

/// Where the validator is in the body: a linked list on the stack, rendered only on failure.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root => break,
                Path::Key(parent, _) | Path::Index(parent, _) => {
                    segments.push(at);
                    at = parent;
                }
            }
        }
        let mut text = String::from("$");
        for segment in segments.iter().rev() {
            match segment {
                Path::Root => {}
                Path::Index(_, index) => {
                    text.push('[');
                    text.push_str(&index.to_string());
                    text.push(']');
                }
                Path::Key(_, key) if is_identifier(key) => {
                    text.push('.');
                    text.push_str(key);
                }
                Path::Key(_, key) => {
                    text.push_str("['");
                    for c in key.chars() {
                        match c {
                            '\'' => text.push_str("\\'"),
                            '\\' => text.push_str("\\\\"),
                            c if c.is_control() => text.push_str(&format!("\\u{:04x}", u32::from(c))),
                            c => text.push(c),
                        }
                    }
                    text.push_str("']");
                }
            }
        }
        text
    }

    fn fail(&self, reason: impl Into<String>) -> ValidationError {
        ValidationError { path: self.render(), reason: reason.into() }
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses arrays and objects nested more than [`MAX_DEPTH`] deep; recursion is bounded by it.
fn check_depth(value: &Value, path: &Path<'_>, depth: usize) -> Result<(), ValidationError> {
    match value {
        Value::Array(_) | Value::Object(_) if depth > MAX_DEPTH => Err(path.fail("nesting too deep")),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, item)| check_depth(item, &Path::Index(path, index), depth + 1)),
        Value::Object(members) => {
            members.iter().try_for_each(|(key, member)| check_depth(member, &Path::Key(path, key), depth + 1))
        }
        _ => Ok(()),
    }
}

impl Node {
    fn check(&self, instance: &Value, path: &Path<'_>) -> Result<(), ValidationError> {
        match self {
            Node::Any => Ok(()),
            Node::Never => Err(path.fail("is not allowed")),
            Node::Rules(rules) => rules.check(instance, path),
        }
    }

    fn matches(&self, instance: &Value) -> bool {
        self.check(instance, &Path::Root).is_ok()
    }
}

impl Rules {
    fn check(&self, instance: &Value, path: &Path<'_>) -> Result<(), ValidationError> {
        if let Some(types) = self.types {
            if !types.matches(instance) {
                return Err(path.fail(types.reason()));
            }
        }
        for (literals, fallback) in [
            (&self.constant, "must be equal to the expected value"),
            (&self.one_of_values, "must be one of the allowed values"),
        ] {
            if let Some(literals) = literals {
                if !literals.values.iter().any(|value| json_equal(value, instance)) {
                    return Err(path.fail(literals.quoted.as_deref().unwrap_or(fallback)));
                }
            }
        }
        match instance {
            Value::Number(number) => self.check_number(Num::of(number), path)?,
            Value::String(text) => self.check_string(text, path)?,
            Value::Array(items) => self.check_array(items, path)?,
            Value::Object(members) => self.check_object(members, path)?,
            Value::Null | Value::Bool(_) => {}
        }
        for schema in self.all_of.iter() {
            schema.check(instance, path)?;
        }
        if !self.any_of.is_empty() && !self.any_of.iter().any(|schema| schema.matches(instance)) {
            return Err(path.fail("does not match any of the allowed schemas"));
        }
        if !self.one_of.is_empty() {
            match self.one_of.iter().filter(|schema| schema.matches(instance)).take(2).count() {
                0 => return Err(path.fail("must match exactly one of the allowed schemas (matches none)")),
                1 => {}
                _ => return Err(path.fail("must match exactly one of the allowed schemas (matches more than one)")),
            }
        }
        if let Some(not) = &self.not {
            if not.matches(instance) {
                return Err(path.fail("matches a disallowed schema"));
            }
        }
        Ok(())
    }

    fn check_number(&self, number: Num, path: &Path<'_>) -> Result<(), ValidationError> {
        let checks = [
            (&self.minimum, ">=", Ordering::is_ge as fn(Ordering) -> bool),
            (&self.maximum, "<=", Ordering::is_le),
            (&self.exclusive_minimum, ">", Ordering::is_gt),
            (&self.exclusive_maximum, "<", Ordering::is_lt),
        ];
        for (bound, operator, holds) in checks {
            if let Some(bound) = bound {
                // Unordered (never, without NaN in JSON) fails.
                if !number.compare(bound.value).is_some_and(holds) {
                    return Err(path.fail(format!("must be {operator} {}", bound.text)));
                }
            }
        }
        Ok(())
    }

    fn check_string(&self, text: &str, path: &Path<'_>) -> Result<(), ValidationError> {
        if self.min_length.is_none() && self.max_length.is_none() {
            return Ok(());
        }
        let length = text.chars().count() as u64;
        if let Some(min) = self.min_length.filter(|min| length < *min) {
            return Err(path.fail(format!("must be at least {min} {} long", plural(min, "character"))));
        }
        if let Some(max) = self.max_length.filter(|max| length > *max) {
            return Err(path.fail(format!("must be at most {max} {} long", plural(max, "character"))));
        }
        Ok(())
    }

    fn check_array(&self, items: &[Value], path: &Path<'_>) -> Result<(), ValidationError> {
        let length = items.len() as u64;
        if let Some(min) = self.min_items.filter(|min| length < *min) {
            return Err(path.fail(format!("must have at least {min} {}", plural(min, "item"))));
        }
        if let Some(max) = self.max_items.filter(|max| length > *max) {
            return Err(path.fail(format!("must have at most {max} {}", plural(max, "item"))));
        }
        if let Some(schema) = &self.items {
            for (index, item) in items.iter().enumerate() {
                schema.check(item, &Path::Index(path, index))?;
            }
        }
        Ok(())
    }

    fn check_object(&self, members: &Map<String, Value>, path: &Path<'_>) -> Result<(), ValidationError> {
        for name in self.required.iter() {
            if !members.contains_key(&**name) {
                return Err(Path::Key(path, name).fail("is required"));
            }
        }
        for (name, schema) in self.properties.iter() {
            if let Some(member) = members.get(&**name) {
                schema.check(member, &Path::Key(path, name))?;
            }
        }
        if let Some(schema) = &self.additional {
            for (name, member) in members {
                if self.properties.binary_search_by(|(known, _)| (**known).cmp(name.as_str())).is_err() {
                    schema.check(member, &Path::Key(path, name))?;
                }
            }
        }
        Ok(())
    }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

impl Types {
    fn matches(self, instance: &Value) -> bool {
        let has = |bit: u8| self.0 & bit != 0;
        match instance {
            Value::Null => has(NULL),
            Value::Bool(_) => has(BOOLEAN),
            Value::Number(number) => has(NUMBER) || (has(INTEGER) && is_integer(number)),
            Value::String(_) => has(STRING),
            Value::Array(_) => has(ARRAY),
            Value::Object(_) => has(OBJECT),
        }
    }

    /// `must be a string`, `must be a string or null`, `must be an object, an array or null`.
    fn reason(self) -> String {
        let mut names = TYPE_NAMES
            .iter()
            // "a number or an integer" says no more than "a number".
            .filter(|(_, bit, _)| self.0 & bit != 0 && !(*bit == INTEGER && self.0 & NUMBER != 0))
            .map(|(_, _, name)| *name)
            .peekable();
        let mut reason = String::from("must be ");
        let mut first = true;
        while let Some(name) = names.next() {
            if !first {
                reason.push_str(if names.peek().is_some() { ", " } else { " or " });
            }
            reason.push_str(name);
            first = false;
        }
        reason
    }
}

/// A number with no fractional part (draft 2020-12: `1.0` is an integer).
fn is_integer(number: &Number) -> bool {
    number.is_i64() || number.is_u64() || number.as_f64().is_some_and(|f| f.is_finite() && f.trunc() == f)
}

/// JSON Schema equality: numbers by value (`1` equals `1.0`), objects regardless of order.
/// Recursion is bounded by the shallower value (a `const`/`enum` value, at most [`MAX_DEPTH`]).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => Num::of(a).compare(Num::of(b)) == Some(Ordering::Equal),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_equal(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, a)| b.get(key).is_some_and(|b| json_equal(a, b)))
        }
        _ => false,
    }
}

/// A JSON number, compared exactly whether integer or float.
#[derive(Debug, Clone, Copy)]
enum Num {
    /// Every `i64` and `u64`.
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(number: &Number) -> Num {
        if let Some(i) = number.as_i64() {
            Num::Int(i.into())
        } else if let Some(u) = number.as_u64() {
            Num::Int(u.into())
        } else {
            Num::Float(number.as_f64().unwrap_or(f64::NAN))
        }
    }

    fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
            (Num::Int(a), Num::Float(b)) => int_float(a, b),
            (Num::Float(a), Num::Int(b)) => int_float(b, a).map(Ordering::reverse),
        }
    }
}

/// Compares an integer (within `i64::MIN..=u64::MAX`) with a float, exactly.
fn int_float(int: i128, float: f64) -> Option<Ordering> {
    if float.is_nan() {
        return None;
    }
    // Beyond ±2^64 the float is past every integer here; within, its integral part
    // converts to i128 exactly.
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if float >= TWO_64 {
        return Some(Ordering::Less);
    }
    if float <= -TWO_64 {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    match int.cmp(&(whole as i128)) {
        Ordering::Equal => 0.0.partial_cmp(&(float - whole)),
        unequal => Some(unequal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(schema: Value) -> Schema {
        Schema::compile(&schema).unwrap_or_else(|e| panic!("{schema}: {e:?}"))
    }

    /// Each case: a schema, then bodies with `None` (valid) or `Some((path, reason))`.
    type Case = (Value, Vec<(Value, Option<(&'static str, &'static str)>)>);

    fn run(cases: Vec<Case>) {
        for (schema_json, bodies) in cases {
            let schema = compile(schema_json.clone());
            for (body, expected) in bodies {
                let got = schema.validate(&body);
                let expected = match expected {
                    None => Ok(()),
                    Some((path, reason)) => Err(ValidationError { path: path.into(), reason: reason.into() }),
                };
                assert_eq!(got, expected, "schema {schema_json} body {body}");
            }
        }
    }

    #[test]
    fn type_keyword() {
        run(vec![
            (
                json!({"type": "string"}),
                vec![
                    (json!("x"), None),
                    (json!(""), None),
                    (json!(1), Some(("$", "must be a string"))),
                    (json!(null), Some(("$", "must be a string"))),
                ],
            ),
            (
                json!({"type": "integer"}),
                vec![
                    (json!(1), None),
                    (json!(-1), None),
                    (json!(u64::MAX), None),
                    (json!(1.0), None),
                    (json!(1e300), None),
                    (json!(1.5), Some(("$", "must be an integer"))),
                    (json!("1"), Some(("$", "must be an integer"))),
                ],
            ),
            (
                json!({"type": "number"}),
                vec![(json!(1), None), (json!(1.5), None), (json!(true), Some(("$", "must be a number")))],
            ),
            (json!({"type": "object"}), vec![(json!({}), None), (json!([]), Some(("$", "must be an object")))]),
            (json!({"type": "array"}), vec![(json!([]), None), (json!({}), Some(("$", "must be an array")))]),
            (json!({"type": "boolean"}), vec![(json!(false), None), (json!(0), Some(("$", "must be a boolean")))]),
            (json!({"type": "null"}), vec![(json!(null), None), (json!(false), Some(("$", "must be null")))]),
            (
                json!({"type": ["string", "null"]}),
                vec![(json!(null), None), (json!("a"), None), (json!(2), Some(("$", "must be a string or null")))],
            ),
            (
                json!({"type": ["null", "array", "object"]}),
                vec![(json!([]), None), (json!(2), Some(("$", "must be an object, an array or null")))],
            ),
            (
                json!({"type": ["integer", "number"]}),
                vec![(json!(2.5), None), (json!("2"), Some(("$", "must be a number")))],
            ),
            (
                json!({"type": ["integer", "string"]}),
                vec![(json!(2), None), (json!(2.5), Some(("$", "must be a string or an integer")))],
            ),
        ]);
    }

    #[test]
    fn const_and_enum() {
        run(vec![
            (
                json!({"const": 5}),
                vec![
                    (json!(5), None),
                    (json!(5.0), None),
                    (json!(5.5), Some(("$", "must be equal to 5"))),
                    (json!("5"), Some(("$", "must be equal to 5"))),
                ],
            ),
            (
                json!({"const": {"a": [1, "x", null], "b": {"c": true}}}),
                vec![
                    (json!({"b": {"c": true}, "a": [1.0, "x", null]}), None),
                    (
                        json!({"a": [1, "x", null], "b": {"c": true}, "d": 1}),
                        Some(("$", r#"must be equal to {"a":[1,"x",null],"b":{"c":true}}"#)),
                    ),
                    (
                        json!({"a": [1, "x"], "b": {"c": true}}),
                        Some(("$", r#"must be equal to {"a":[1,"x",null],"b":{"c":true}}"#)),
                    ),
                ],
            ),
            (json!({"const": null}), vec![(json!(null), None), (json!(0), Some(("$", "must be equal to null")))]),
            (
                json!({"enum": ["red", "green", 3]}),
                vec![
                    (json!("red"), None),
                    (json!(3.0), None),
                    (json!("blue"), Some(("$", r#"must be one of "red", "green", 3"#))),
                ],
            ),
            (json!({"enum": ["x".repeat(300)]}), vec![(json!("y"), Some(("$", "must be one of the allowed values")))]),
            (
                json!({"const": "x".repeat(300)}),
                vec![(json!("x".repeat(300)), None), (json!("y"), Some(("$", "must be equal to the expected value")))],
            ),
            // const before enum; type before both.
            (
                json!({"type": "string", "const": "a", "enum": ["b"]}),
                vec![(json!(1), Some(("$", "must be a string"))), (json!("b"), Some(("$", r#"must be equal to "a""#)))],
            ),
        ]);
    }

    #[test]
    fn number_bounds() {
        run(vec![
            (
                json!({"minimum": 0}),
                vec![
                    (json!(0), None),
                    (json!(0.0), None),
                    (json!(1e-300), None),
                    (json!(-1), Some(("$", "must be >= 0"))),
                    (json!(-0.5), Some(("$", "must be >= 0"))),
                    (json!(i64::MIN), Some(("$", "must be >= 0"))),
                    // Other types are not numbers: the keyword ignores them.
                    (json!("-1"), None),
                ],
            ),
            (
                json!({"maximum": 2.5}),
                vec![(json!(2), None), (json!(2.5), None), (json!(3), Some(("$", "must be <= 2.5")))],
            ),
            (
                json!({"exclusiveMinimum": 0}),
                vec![
                    (json!(0.001), None),
                    (json!(0), Some(("$", "must be > 0"))),
                    (json!(-0.0), Some(("$", "must be > 0"))),
                ],
            ),
            (
                json!({"exclusiveMaximum": 10}),
                vec![
                    (json!(9.999), None),
                    (json!(10.0), Some(("$", "must be < 10"))),
                    (json!(11), Some(("$", "must be < 10"))),
                ],
            ),
            // Exact comparison of large integers and floats.
            (
                json!({"maximum": 9007199254740993_u64}),
                vec![
                    (json!(9007199254740993_u64), None),
                    (json!(9007199254740994_u64), Some(("$", "must be <= 9007199254740993"))),
                    (json!(9007199254740992.0), None),
                ],
            ),
            (
                json!({"minimum": u64::MAX}),
                vec![
                    (json!(u64::MAX), None),
                    (json!(u64::MAX - 1), Some(("$", "must be >= 18446744073709551615"))),
                    (json!(1e20), None),
                    (json!(-1e20), Some(("$", "must be >= 18446744073709551615"))),
                ],
            ),
            (json!({"maximum": 1e300}), vec![(json!(u64::MAX), None), (json!(i64::MIN), None)]),
            (json!({"minimum": -1e300}), vec![(json!(i64::MIN), None)]),
            (json!({"minimum": 0.5}), vec![(json!(1), None), (json!(0), Some(("$", "must be >= 0.5")))]),
            (
                json!({"minimum": -1.5}),
                vec![(json!(-1), None), (json!(-2), Some(("$", "must be >= -1.5"))), (json!(-1.5), None)],
            ),
            // Bounds are checked in order minimum, maximum, exclusiveMinimum, exclusiveMaximum.
            (
                json!({"minimum": 5, "exclusiveMinimum": 6, "maximum": 1}),
                vec![(json!(3), Some(("$", "must be >= 5"))), (json!(5), Some(("$", "must be <= 1")))],
            ),
        ]);
    }

    #[test]
    fn string_lengths() {
        run(vec![
            (
                json!({"minLength": 2, "maxLength": 3}),
                vec![
                    (json!("ab"), None),
                    (json!("abc"), None),
                    // Unicode scalar values, not bytes or UTF-16 units.
                    (json!("日本"), None),
                    (json!("😀😀😀"), None),
                    (json!("a"), Some(("$", "must be at least 2 characters long"))),
                    (json!("abcd"), Some(("$", "must be at most 3 characters long"))),
                    (json!("😀😀😀😀"), Some(("$", "must be at most 3 characters long"))),
                    (json!(12345), None),
                ],
            ),
            (
                json!({"minLength": 1, "maxLength": 1.0}),
                vec![
                    (json!("é"), None),
                    (json!(""), Some(("$", "must be at least 1 character long"))),
                    (json!("e\u{301}"), Some(("$", "must be at most 1 character long"))),
                ],
            ),
            (
                json!({"maxLength": 0}),
                vec![(json!(""), None), (json!("a"), Some(("$", "must be at most 0 characters long")))],
            ),
        ]);
    }

    #[test]
    fn arrays() {
        run(vec![
            (
                json!({"minItems": 1, "maxItems": 2}),
                vec![
                    (json!([1]), None),
                    (json!([1, 2]), None),
                    (json!([]), Some(("$", "must have at least 1 item"))),
                    (json!([1, 2, 3]), Some(("$", "must have at most 2 items"))),
                    (json!("abc"), None),
                ],
            ),
            (json!({"minItems": 2}), vec![(json!([1]), Some(("$", "must have at least 2 items")))]),
            (json!({"maxItems": 1}), vec![(json!([1, 2]), Some(("$", "must have at most 1 item")))]),
            (
                json!({"items": {"type": "integer", "minimum": 0}}),
                vec![
                    (json!([]), None),
                    (json!([0, 1, 2]), None),
                    (json!([0, -1, "x"]), Some(("$[1]", "must be >= 0"))),
                    (json!([0, 1, "x"]), Some(("$[2]", "must be an integer"))),
                    (json!({"0": "x"}), None),
                ],
            ),
            (
                json!({"items": {"items": {"type": "null"}}}),
                vec![(json!([[null], [null, null, 1]]), Some(("$[1][2]", "must be null")))],
            ),
            (json!({"items": false}), vec![(json!([]), None), (json!([1]), Some(("$[0]", "is not allowed")))]),
            // Sizes before items.
            (
                json!({"maxItems": 1, "items": {"type": "string"}}),
                vec![(json!([1, 2]), Some(("$", "must have at most 1 item")))],
            ),
        ]);
    }

    #[test]
    fn objects() {
        run(vec![
            (
                json!({"required": ["id", "name"]}),
                vec![
                    (json!({"id": 1, "name": "x"}), None),
                    (json!({"name": "x"}), Some(("$.id", "is required"))),
                    (json!({"id": 1}), Some(("$.name", "is required"))),
                    (json!({}), Some(("$.id", "is required"))),
                    (json!([1]), None),
                ],
            ),
            (
                json!({"properties": {"price": {"type": "number", "minimum": 0}, "name": {"type": "string"}}}),
                vec![
                    (json!({}), None),
                    (json!({"price": 3, "other": null}), None),
                    (json!({"price": -3}), Some(("$.price", "must be >= 0"))),
                    // Properties are checked by name: `name` before `price`.
                    (json!({"price": -3, "name": 1}), Some(("$.name", "must be a string"))),
                ],
            ),
            (
                json!({"properties": {"a": true}, "additionalProperties": false}),
                vec![
                    (json!({"a": 1}), None),
                    (json!({"a": 1, "b": 2}), Some(("$.b", "is not allowed"))),
                    (json!({"first name": 1}), Some(("$['first name']", "is not allowed"))),
                ],
            ),
            (
                json!({"properties": {"a": true}, "additionalProperties": {"type": "string"}}),
                vec![(json!({"a": 1, "b": "x"}), None), (json!({"a": 1, "b": 2}), Some(("$.b", "must be a string")))],
            ),
            (json!({"additionalProperties": true}), vec![(json!({"x": 1}), None)]),
            (
                json!({"properties": {"gone": false}}),
                vec![(json!({}), None), (json!({"gone": 0}), Some(("$.gone", "is not allowed")))],
            ),
            // required before properties before additionalProperties.
            (
                json!({
                    "required": ["z"],
                    "properties": {"a": {"type": "string"}},
                    "additionalProperties": false
                }),
                vec![
                    (json!({"a": 1, "b": 1}), Some(("$.z", "is required"))),
                    (json!({"a": 1, "b": 1, "z": 1}), Some(("$.a", "must be a string"))),
                    (json!({"a": "", "b": 1, "z": 1}), Some(("$.b", "is not allowed"))),
                ],
            ),
            // Property names that are keywords are just names.
            (
                json!({"properties": {"format": {"type": "string"}, "$ref": {"type": "integer"}}}),
                vec![
                    (json!({"format": "x", "$ref": 1}), None),
                    (json!({"$ref": "x"}), Some(("$['$ref']", "must be an integer"))),
                ],
            ),
        ]);
    }

    #[test]
    fn paths() {
        let schema = compile(json!({
            "properties": {"items": {"items": {"properties": {"price": {"minimum": 0}}}}},
            "additionalProperties": {"type": "integer"}
        }));
        let cases = [
            (json!({"items": [{}, {}, {"price": -1}]}), "$.items[2].price"),
            (json!({"_a1": "x"}), "$._a1"),
            (json!({"1a": "x"}), "$['1a']"),
            (json!({"": "x"}), "$['']"),
            (json!({"a.b": "x"}), "$['a.b']"),
            (json!({"it's": "x"}), r"$['it\'s']"),
            (json!({"back\\slash": "x"}), r"$['back\\slash']"),
            (json!({"new\nline": "x"}), r"$['new\u000aline']"),
            (json!({"日本": "x"}), "$['日本']"),
            (json!({"a-b": "x"}), "$['a-b']"),
        ];
        for (body, path) in cases {
            assert_eq!(schema.validate(&body).unwrap_err().path, path, "{body}");
        }
        assert_eq!(
            ValidationError { path: "$.a".into(), reason: "is required".into() }.to_string(),
            "$.a: is required"
        );
    }

    #[test]
    fn combinators() {
        run(vec![
            (
                json!({"allOf": [{"type": "integer"}, {"minimum": 2}, {"maximum": 5}]}),
                vec![
                    (json!(3), None),
                    (json!(1.5), Some(("$", "must be an integer"))),
                    (json!(1), Some(("$", "must be >= 2"))),
                    (json!(6), Some(("$", "must be <= 5"))),
                ],
            ),
            (
                json!({"properties": {"a": {"allOf": [{"properties": {"b": {"type": "string"}}}]}}}),
                vec![(json!({"a": {"b": 1}}), Some(("$.a.b", "must be a string")))],
            ),
            (
                json!({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}),
                vec![
                    (json!("x"), None),
                    (json!(3), None),
                    (json!(-3), Some(("$", "does not match any of the allowed schemas"))),
                    (json!(null), Some(("$", "does not match any of the allowed schemas"))),
                ],
            ),
            (
                json!({"oneOf": [{"type": "integer"}, {"minimum": 10}]}),
                vec![
                    (json!(3), None),
                    (json!(10.5), None),
                    (json!(11), Some(("$", "must match exactly one of the allowed schemas (matches more than one)"))),
                    (json!(1.5), Some(("$", "must match exactly one of the allowed schemas (matches none)"))),
                    // `minimum` ignores strings: only the second schema matches.
                    (json!("x"), None),
                ],
            ),
            (
                json!({"not": {"type": "null"}}),
                vec![(json!(0), None), (json!(null), Some(("$", "matches a disallowed schema")))],
            ),
            (json!({"not": true}), vec![(json!(0), Some(("$", "matches a disallowed schema")))]),
            (json!({"not": false}), vec![(json!(0), None)]),
            // Order: allOf, anyOf, oneOf, not.
            (
                json!({"not": {"type": "string"}, "oneOf": [false], "anyOf": [false], "allOf": [{"type": "integer"}]}),
                vec![
                    (json!("x"), Some(("$", "must be an integer"))),
                    (json!(1), Some(("$", "does not match any of the allowed schemas"))),
                ],
            ),
        ]);
    }

    #[test]
    fn boolean_schemas_and_annotations() {
        run(vec![
            (json!(true), vec![(json!(null), None), (json!({"a": [1]}), None)]),
            (json!({}), vec![(json!(1), None)]),
            (json!(false), vec![(json!(null), Some(("$", "is not allowed")))]),
            (
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "title": "t", "description": "d", "examples": [{"format": 1}], "default": {"$ref": "x"},
                    "type": "integer"
                }),
                vec![(json!(1), None), (json!("1"), Some(("$", "must be an integer")))],
            ),
        ]);
    }

    #[test]
    fn compile_errors() {
        let cases = [
            (json!({"format": "email"}), "/format", "unsupported keyword `format`"),
            (json!({"pattern": "^a"}), "/pattern", "unsupported keyword `pattern`"),
            (json!({"$ref": "#/$defs/a"}), "/$ref", "unsupported keyword `$ref` (references are not supported)"),
            (json!({"$defs": {}}), "/$defs", "unsupported keyword `$defs` (references are not supported)"),
            (json!({"$comment": "x"}), "/$comment", "unsupported keyword `$comment`"),
            (json!({"uniqueItems": true}), "/uniqueItems", "unsupported keyword `uniqueItems`"),
            (json!({"prefixItems": []}), "/prefixItems", "unsupported keyword `prefixItems`"),
            (
                json!({"properties": {"a/b~c": {"format": "x"}}}),
                "/properties/a~1b~0c/format",
                "unsupported keyword `format`",
            ),
            (
                json!({"items": {"properties": {"a": {"pattern": "x"}}}}),
                "/items/properties/a/pattern",
                "unsupported keyword `pattern`",
            ),
            (json!({"anyOf": [true, {"if": true}]}), "/anyOf/1/if", "unsupported keyword `if`"),
            (
                json!({"allOf": [{"not": {"minContains": 1}}]}),
                "/allOf/0/not/minContains",
                "unsupported keyword `minContains`",
            ),
            (
                json!({"additionalProperties": {"propertyNames": {}}}),
                "/additionalProperties/propertyNames",
                "unsupported keyword `propertyNames`",
            ),
            (json!({"oneOf": [{"x-custom": 1}]}), "/oneOf/0/x-custom", "unsupported keyword `x-custom`"),
            // Malformed values.
            (json!(1), "", "a schema must be an object or a boolean"),
            (json!({"properties": {"a": "string"}}), "/properties/a", "a schema must be an object or a boolean"),
            (
                json!({"type": "float"}),
                "/type",
                "must be one of `object`, `array`, `string`, `number`, `integer`, `boolean`, `null`",
            ),
            (
                json!({"type": ["string", 1]}),
                "/type/1",
                "must be one of `object`, `array`, `string`, `number`, `integer`, `boolean`, `null`",
            ),
            (json!({"type": ["string", "string"]}), "/type/1", "duplicate type"),
            (json!({"type": []}), "/type", "must be a type name or a non-empty array of type names"),
            (
                json!({"items": [{}]}),
                "/items",
                "must be a schema (in draft 2020-12 the array form is `prefixItems`, which is not supported)",
            ),
            (json!({"required": "a"}), "/required", "must be an array of property names"),
            (json!({"required": ["a", 1]}), "/required/1", "must be a string"),
            (json!({"required": ["a", "a"]}), "/required/1", "duplicate property name `a`"),
            (json!({"properties": []}), "/properties", "must be an object of schemas"),
            (json!({"minimum": "0"}), "/minimum", "must be a number"),
            (json!({"exclusiveMinimum": true}), "/exclusiveMinimum", "must be a number"),
            (json!({"minLength": -1}), "/minLength", "must be a non-negative integer"),
            (json!({"maxLength": 1.5}), "/maxLength", "must be a non-negative integer"),
            (json!({"minItems": "1"}), "/minItems", "must be a non-negative integer"),
            (json!({"maxItems": 1e30}), "/maxItems", "must be a non-negative integer"),
            (json!({"enum": []}), "/enum", "must be a non-empty array"),
            (json!({"enum": 1}), "/enum", "must be a non-empty array"),
            (json!({"anyOf": []}), "/anyOf", "must be a non-empty array of schemas"),
            (json!({"allOf": {}}), "/allOf", "must be a non-empty array of schemas"),
            (json!({"oneOf": [1]}), "/oneOf/0", "a schema must be an object or a boolean"),
            (json!({"not": null}), "/not", "a schema must be an object or a boolean"),
            (json!({"additionalProperties": 0}), "/additionalProperties", "a schema must be an object or a boolean"),
            (json!({"title": 1}), "/title", "must be a string"),
            (json!({"$schema": null}), "/$schema", "must be a string"),
            (json!({"examples": "x"}), "/examples", "must be an array"),
        ];
        for (schema, pointer, reason) in cases {
            assert_eq!(Schema::compile(&schema).unwrap_err(), (pointer.to_owned(), reason.to_owned()), "{schema}");
        }
    }

    fn nested_arrays(levels: usize, leaf: Value) -> Value {
        (0..levels).fold(leaf, |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn deep_nesting() {
        let any = compile(json!({}));
        assert_eq!(any.validate(&nested_arrays(MAX_DEPTH, json!(1))), Ok(()));
        let error = any.validate(&nested_arrays(MAX_DEPTH + 1, json!(1))).unwrap_err();
        assert_eq!(error.reason, "nesting too deep");
        assert_eq!(error.path, format!("${}", "[0]".repeat(MAX_DEPTH)));
        // Objects count too, and the check comes before any keyword.
        let mut deep = json!({});
        for _ in 0..MAX_DEPTH {
            deep = json!({"a": deep});
        }
        let error = compile(json!({"type": "string"})).validate(&deep).unwrap_err();
        assert_eq!(
            error,
            ValidationError { path: format!("${}", ".a".repeat(MAX_DEPTH)), reason: "nesting too deep".into() }
        );
        // The deepest body serde_json parses (128 levels) is refused without trouble.
        let text = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(any.validate(&body).unwrap_err().reason, "nesting too deep");
        // Scalars at the deepest level are fine.
        assert_eq!(compile(json!({"items": true})).validate(&nested_arrays(MAX_DEPTH, json!("x"))), Ok(()));

        // Schemas: subschemas nest at most MAX_DEPTH levels.
        let nested_schema =
            |levels: usize| (1..levels).fold(json!({"type": "null"}), |inner, _| json!({"items": inner}));
        let schema = compile(nested_schema(MAX_DEPTH));
        assert_eq!(schema.validate(&nested_arrays(MAX_DEPTH - 1, json!(null))), Ok(()));
        assert_eq!(
            schema.validate(&nested_arrays(MAX_DEPTH - 1, json!(1))).unwrap_err().path,
            format!("${}", "[0]".repeat(MAX_DEPTH - 1))
        );
        let (pointer, reason) = Schema::compile(&nested_schema(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(pointer, "/items".repeat(MAX_DEPTH));
        assert_eq!(reason, "schema nesting too deep (more than 64 levels)");
        // A schema value deeper than serde_json would parse is refused, not recursed through.
        let very_deep = (0..1000).fold(json!(true), |inner, _| json!({"not": inner}));
        assert_eq!(Schema::compile(&very_deep).unwrap_err().1, "schema nesting too deep (more than 64 levels)");

        // const and enum values.
        assert!(Schema::compile(&json!({"const": nested_arrays(MAX_DEPTH, json!(1))})).is_ok());
        assert_eq!(
            Schema::compile(&json!({"enum": [1, nested_arrays(MAX_DEPTH + 1, json!(1))]})).unwrap_err(),
            ("/enum".to_owned(), "value nesting too deep (more than 64 levels)".to_owned())
        );
    }

    #[test]
    fn int_float_comparison() {
        let cases = [
            (0, 0.0, Ordering::Equal),
            (0, -0.0, Ordering::Equal),
            (1, 0.5, Ordering::Greater),
            (0, 0.5, Ordering::Less),
            (-1, -0.5, Ordering::Less),
            (-1, -1.5, Ordering::Greater),
            (i128::from(u64::MAX), 1.8446744073709552e19, Ordering::Less),
            (i128::from(i64::MIN), -9_223_372_036_854_775_808.0, Ordering::Equal),
            (i128::from(i64::MIN), -1e300, Ordering::Greater),
            (9007199254740993, 9007199254740992.0, Ordering::Greater),
        ];
        for (int, float, expected) in cases {
            assert_eq!(int_float(int, float), Some(expected), "{int} vs {float}");
        }
        assert_eq!(int_float(0, f64::NAN), None);
    }
}
