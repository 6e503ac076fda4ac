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

#[derive(Debug)]
pub(crate) struct Scheme {
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
        }
    }
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Option<Result<i64, ()>> {
    let value = claims.get(name)?;
    Some(value.as_i64().or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)).ok_or(()))
}

/// Checks time, audience and required claims of an already verified token.
pub(crate) fn check_claims(
    issuer: &IssuerPolicy,
    claims: &Map<String, Value>,
    now_s: i64,
    leeway_s: u64,
) -> Result<(), ClaimsError> {
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
            (json!({"exp": "soon"}), Err(ClaimsError::MissingExpiry)),
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
        ];
        for (patch, expected) in table {
            assert_eq!(check_claims(&issuer(), &with(patch.clone()), now, 60), expected, "{patch}");
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
