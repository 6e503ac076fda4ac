//! Compiled authentication policy: plain data built once from routes.json, and the pure
//! checks a verified token's claims must pass.

use http::HeaderName;
use serde_json::{Map, Value};

use super::jwt::{Algorithm, VerifyingKey};

/// Every scheme of the file, in one list; routes refer to them by index.
#[derive(Debug, Default)]
pub(crate) struct AuthPolicies {
    pub schemes: Box<[Scheme]>,
    pub requirements: Box<[RouteRequirement]>,
    /// Issuers across all JWT schemes, so caches can be indexed by one number.
    pub issuers: Box<[IssuerPolicy]>,
}

impl AuthPolicies {
    /// Every header any scheme sets from a verified identity, without duplicates: no client
    /// may send one of these on any route, whatever guards it.
    pub fn forwarded_header_names(&self) -> Box<[HeaderName]> {
        let mut names: Vec<HeaderName> = Vec::new();
        for scheme in self.schemes.iter() {
            let forwarded: Vec<&HeaderName> = match &scheme.kind {
                SchemeKind::Jwt(jwt) => jwt.forward_claims.iter().map(|(name, _)| name).collect(),
                SchemeKind::ApiKey(keys) => keys.forward.iter().map(|(name, _)| name).collect(),
            };
            for name in forwarded {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names.into()
    }
}

#[derive(Debug)]
pub(crate) struct Scheme {
    /// Its name in the routes file.
    pub name: Box<str>,
    pub kind: SchemeKind,
}

#[derive(Debug)]
pub(crate) enum SchemeKind {
    Jwt(JwtScheme),
    ApiKey(ApiKeyScheme),
}

#[derive(Debug)]
pub(crate) struct JwtScheme {
    /// Indexes into [`AuthPolicies::issuers`].
    pub issuers: Box<[usize]>,
    pub source: CredentialSource,
    pub max_token_bytes: usize,
    pub leeway_s: u64,
    pub forward_claims: Box<[(HeaderName, ClaimPath)]>,
    pub forward_token: bool,
    pub roles_claim: ClaimPath,
}

#[derive(Debug)]
pub(crate) struct IssuerPolicy {
    pub issuer: Box<str>,
    pub audiences: Option<Box<[Box<str>]>>,
    pub static_keys: Box<[VerifyingKey]>,
    pub secrets: Box<[SecretRef]>,
    pub jwks: Option<JwksSource>,
    pub rsa_default: Algorithm,
    pub required_claims: Box<[ClaimPath]>,
    pub max_lifetime_s: Option<u64>,
    pub cache: JwksBounds,
}

/// An HMAC key held by the runtime under `name`.
#[derive(Debug)]
pub(crate) struct SecretRef {
    pub name: Box<str>,
    pub alg: Algorithm,
    pub kid: Option<Box<str>>,
    pub encoding: SecretEncoding,
}

/// How a runtime secret's text spells the key bytes (most HMAC keys are random bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretEncoding {
    Utf8,
    Base64,
    Base64Url,
    Hex,
}

impl SecretEncoding {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "utf8" => Self::Utf8,
            "base64" => Self::Base64,
            "base64url" => Self::Base64Url,
            "hex" => Self::Hex,
            _ => return None,
        })
    }

    /// The key bytes; surrounding whitespace (a trailing newline from `echo`) is ignored for
    /// the binary encodings, never for `utf8`, whose text is the key.
    pub fn decode(self, text: &str) -> Result<Vec<u8>, &'static str> {
        use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};
        let trimmed = text.trim();
        match self {
            Self::Utf8 => Ok(text.as_bytes().to_vec()),
            Self::Base64 => Base64::decode_vec(trimmed)
                .or_else(|_| Base64Unpadded::decode_vec(trimmed))
                .map_err(|_| "not valid base64"),
            Self::Base64Url => Base64UrlUnpadded::decode_vec(trimmed)
                .or_else(|_| Base64Url::decode_vec(trimmed))
                .map_err(|_| "not valid base64url"),
            Self::Hex => {
                let digits = trimmed.as_bytes();
                if !digits.len().is_multiple_of(2) {
                    return Err("not valid hex (odd length)");
                }
                digits
                    .chunks_exact(2)
                    .map(|pair| {
                        std::str::from_utf8(pair)
                            .ok()
                            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                            .ok_or("not valid hex")
                    })
                    .collect()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwksSource {
    Url(Box<str>),
    /// The issuer URL; the JWKS URL comes from its OIDC discovery document.
    Discovery(Box<str>),
}

/// Cache bounds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JwksBounds {
    pub min_ttl: u64,
    pub max_ttl: u64,
    pub cooldown: u64,
    pub max_stale: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialSource {
    /// `Authorization: Bearer <token>`.
    Bearer,
    Header(HeaderName),
    Cookie(Box<str>),
    Query(Box<str>),
}

#[derive(Debug)]
pub(crate) struct ApiKeyScheme {
    pub header: HeaderName,
    pub query: Option<Box<str>>,
    pub consumers: Box<[StaticConsumer]>,
    pub store: bool,
    pub forward: Box<[(HeaderName, ConsumerField)]>,
    pub forward_key: bool,
}

#[derive(Debug)]
pub(crate) struct StaticConsumer {
    pub key_sha256: [u8; 32],
    pub consumer: Consumer,
}

/// The caller an API key identifies; later policies key on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Consumer {
    /// Stable id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumerField {
    Id,
    Name,
    Tags,
}

#[derive(Debug)]
pub(crate) struct RouteRequirement {
    /// Indexes into [`AuthPolicies::schemes`], tried in order.
    pub schemes: Box<[usize]>,
    pub optional: bool,
    pub scopes: Option<SetRule>,
    pub roles: Option<SetRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetRule {
    AnyOf(Box<[Box<str>]>),
    AllOf(Box<[Box<str>]>),
}

impl SetRule {
    pub fn is_met<'a>(&self, mut granted: impl Iterator<Item = &'a str> + Clone) -> bool {
        match self {
            Self::AnyOf(wanted) => granted.any(|g| wanted.iter().any(|w| **w == *g)),
            Self::AllOf(wanted) => wanted.iter().all(|w| granted.clone().any(|g| g == &**w)),
        }
    }

    pub fn names(&self) -> &[Box<str>] {
        match self {
            Self::AnyOf(names) | Self::AllOf(names) => names,
        }
    }
}

/// A dotted path into the claims (`realm_access.roles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimPath(Box<[Box<str>]>);

impl ClaimPath {
    pub fn parse(path: &str) -> Option<Self> {
        let segments: Vec<Box<str>> = path.split('.').map(Into::into).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(Self(segments.into()))
    }

    pub fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut value = claims.get(&**first)?;
        for segment in rest {
            value = value.as_object()?.get(&**segment)?;
        }
        (!value.is_null()).then_some(value)
    }
}

/// Strings a claim grants: a string split on spaces (`scope`), or the strings of an array.
pub(crate) fn claim_strings(value: Option<&Value>) -> impl Iterator<Item = &str> + Clone {
    let (text, array) = match value {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(items)) => (None, Some(items)),
        _ => (None, None),
    };
    text.into_iter()
        .flat_map(|s| s.split(' ').filter(|part| !part.is_empty()))
        .chain(array.into_iter().flatten().filter_map(Value::as_str))
}

/// Scopes granted by `scope` (space separated) or `scp` (array or string).
pub(crate) fn scopes(claims: &Map<String, Value>) -> impl Iterator<Item = &str> + Clone {
    claim_strings(claims.get("scope")).chain(claim_strings(claims.get("scp")))
}

/// Why a token's claims are not accepted. The messages are safe to show to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimsError {
    MissingExpiry,
    Expired,
    NotYetValid,
    IssuedInFuture,
    TooLongLived,
    Audience,
    MissingClaim,
    /// A registered claim (RFC 7519 §4.1) of the wrong JSON type.
    ClaimType,
}

impl ClaimsError {
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingExpiry => "The token has no expiry",
            Self::Expired => "The token has expired",
            Self::NotYetValid => "The token is not valid yet",
            Self::IssuedInFuture => "The token was issued in the future",
            Self::TooLongLived => "The token lifetime is too long",
            Self::Audience => "The token audience is not accepted",
            Self::MissingClaim => "The token lacks a required claim",
            Self::ClaimType => "A registered claim of the token has the wrong type",
        }
    }
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Option<Result<i64, ()>> {
    let value = claims.get(name)?;
    Some(value.as_i64().or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)).ok_or(()))
}

/// RFC 7519 §4.1: `iss`, `sub` and `jti` are strings, `aud` a string or an array of strings,
/// `exp`, `nbf` and `iat` numbers. A token that breaks this is invalid, not coerced.
fn registered_claims_well_typed(claims: &Map<String, Value>) -> bool {
    let string_or_absent = |name: &str| claims.get(name).is_none_or(Value::is_string);
    let number_or_absent = |name: &str| claims.get(name).is_none_or(Value::is_number);
    let audience = match claims.get("aud") {
        None | Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    audience
        && ["iss", "sub", "jti"].into_iter().all(string_or_absent)
        && ["exp", "nbf", "iat"].into_iter().all(number_or_absent)
}

/// Checks time, audience and required claims of an already verified token.
pub(crate) fn check_claims(
    issuer: &IssuerPolicy,
    claims: &Map<String, Value>,
    now_s: i64,
    leeway_s: u64,
) -> Result<(), ClaimsError> {
    if !registered_claims_well_typed(claims) {
        return Err(ClaimsError::ClaimType);
    }
    let leeway = i64::try_from(leeway_s).unwrap_or(i64::MAX);
    let exp = match numeric_date(claims, "exp") {
        Some(Ok(exp)) => exp,
        _ => return Err(ClaimsError::MissingExpiry),
    };
    if now_s >= exp.saturating_add(leeway) {
        return Err(ClaimsError::Expired);
    }
    match numeric_date(claims, "nbf") {
        Some(Err(())) => return Err(ClaimsError::NotYetValid),
        Some(Ok(nbf)) if now_s.saturating_add(leeway) < nbf => return Err(ClaimsError::NotYetValid),
        _ => {}
    }
    let iat = match numeric_date(claims, "iat") {
        Some(Err(())) => return Err(ClaimsError::IssuedInFuture),
        Some(Ok(iat)) if iat > now_s.saturating_add(leeway) => return Err(ClaimsError::IssuedInFuture),
        Some(Ok(iat)) => Some(iat),
        None => None,
    };
    if let Some(max) = issuer.max_lifetime_s {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        match iat {
            Some(iat) if exp.saturating_sub(iat) <= max => {}
            _ => return Err(ClaimsError::TooLongLived),
        }
    }
    if let Some(audiences) = &issuer.audiences {
        let mut presented = claim_strings_exact(claims.get("aud"));
        if !presented.any(|aud| audiences.iter().any(|a| **a == *aud)) {
            return Err(ClaimsError::Audience);
        }
    }
    if issuer.required_claims.iter().any(|path| path.lookup(claims).is_none()) {
        return Err(ClaimsError::MissingClaim);
    }
    Ok(())
}

/// `aud` is a string or an array of strings; a string is one audience, never split.
fn claim_strings_exact(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let (single, array) = match value {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(items)) => (None, Some(items)),
        _ => (None, None),
    };
    single.into_iter().chain(array.into_iter().flatten().filter_map(Value::as_str))
}

/// A claim rendered as a header value: strings as they are, arrays joined with `,`,
/// numbers and booleans as JSON; objects are not forwarded.
pub(crate) fn claim_header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    other => claim_header_text(other),
                })
                .collect();
            Some(parts?.join(","))
        }
        Value::Null | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issuer() -> IssuerPolicy {
        IssuerPolicy {
            issuer: "https://id.example".into(),
            audiences: Some(["api".into(), "web".into()].into()),
            static_keys: Box::new([]),
            secrets: Box::new([]),
            jwks: None,
            rsa_default: Algorithm::Rs256,
            required_claims: [ClaimPath::parse("sub").unwrap()].into(),
            max_lifetime_s: Some(3600),
            cache: JwksBounds { min_ttl: 0, max_ttl: 0, cooldown: 0, max_stale: 0 },
        }
    }

    #[test]
    fn claims_table() {
        let now = 1_000_000;
        let base = json!({"sub": "u1", "aud": "api", "iat": now - 10, "exp": now + 100});
        let with = |patch: Value| {
            let mut claims = base.as_object().unwrap().clone();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    claims.remove(k);
                } else {
                    claims.insert(k.clone(), v.clone());
                }
            }
            claims
        };
        let table: Vec<(Value, Result<(), ClaimsError>)> = vec![
            (json!({}), Ok(())),
            (json!({"exp": null}), Err(ClaimsError::MissingExpiry)),
            (json!({"exp": "soon"}), Err(ClaimsError::ClaimType)),
            (json!({"exp": now - 61}), Err(ClaimsError::Expired)),
            (json!({"exp": now - 30}), Ok(())), // inside the leeway
            (json!({"nbf": now + 61}), Err(ClaimsError::NotYetValid)),
            (json!({"nbf": now + 30}), Ok(())),
            (json!({"iat": now + 61}), Err(ClaimsError::IssuedInFuture)),
            (json!({"iat": now - 4000}), Err(ClaimsError::TooLongLived)),
            (json!({"iat": null}), Err(ClaimsError::TooLongLived)),
            (json!({"aud": ["other", "web"]}), Ok(())),
            (json!({"aud": "api web"}), Err(ClaimsError::Audience)),
            (json!({"aud": null}), Err(ClaimsError::Audience)),
            (json!({"sub": null}), Err(ClaimsError::MissingClaim)),
            // RFC 7519 types of the registered claims.
            (json!({"sub": 12345}), Err(ClaimsError::ClaimType)),
            (json!({"sub": ["u1"]}), Err(ClaimsError::ClaimType)),
            (json!({"iss": 1}), Err(ClaimsError::ClaimType)),
            (json!({"jti": {"id": 1}}), Err(ClaimsError::ClaimType)),
            (json!({"jti": "j-1"}), Ok(())),
            (json!({"aud": ["api", 7]}), Err(ClaimsError::ClaimType)),
            (json!({"aud": 7}), Err(ClaimsError::ClaimType)),
            (json!({"nbf": "now"}), Err(ClaimsError::ClaimType)),
            (json!({"iat": true}), Err(ClaimsError::ClaimType)),
        ];
        for (patch, expected) in table {
            assert_eq!(check_claims(&issuer(), &with(patch.clone()), now, 60), expected, "{patch}");
        }
    }

    #[test]
    fn secret_encodings() {
        type Row<'a> = (SecretEncoding, &'a str, Result<&'a [u8], ()>);
        let table: [Row; 9] = [
            (SecretEncoding::Utf8, " key\n", Ok(b" key\n")),
            (SecretEncoding::Base64, "AP8+/w==", Ok(&[0, 255, 62, 255])),
            (SecretEncoding::Base64, "AP8+/w\n", Ok(&[0, 255, 62, 255])),
            (SecretEncoding::Base64, "AP8-_w", Err(())),
            (SecretEncoding::Base64Url, "AP8-_w", Ok(&[0, 255, 62, 255])),
            (SecretEncoding::Base64Url, "AP8-_w==", Ok(&[0, 255, 62, 255])),
            (SecretEncoding::Hex, "00ff3EFF", Ok(&[0, 255, 62, 255])),
            (SecretEncoding::Hex, "00f", Err(())),
            (SecretEncoding::Hex, "zz", Err(())),
        ];
        for (encoding, text, expected) in table {
            assert_eq!(encoding.decode(text).map_err(|_| ()), expected.map(<[u8]>::to_vec), "{encoding:?} {text:?}");
        }
    }

    #[test]
    fn scopes_roles_and_header_text() {
        let claims = json!({"scope": "read  write", "scp": ["admin"], "realm_access": {"roles": ["a", "b"]}});
        let claims = claims.as_object().unwrap();
        let granted: Vec<&str> = scopes(claims).collect();
        assert_eq!(granted, ["read", "write", "admin"]);
        assert!(SetRule::AllOf(["read".into(), "admin".into()].into()).is_met(scopes(claims)));
        assert!(!SetRule::AllOf(["read".into(), "delete".into()].into()).is_met(scopes(claims)));
        assert!(SetRule::AnyOf(["delete".into(), "write".into()].into()).is_met(scopes(claims)));
        let roles = ClaimPath::parse("realm_access.roles").unwrap();
        assert_eq!(claim_header_text(roles.lookup(claims).unwrap()).as_deref(), Some("a,b"));
        assert_eq!(ClaimPath::parse("a..b"), None);
        assert_eq!(claim_header_text(&json!({"x": 1})), None);
        assert_eq!(claim_header_text(&json!(42)).as_deref(), Some("42"));
    }
}
