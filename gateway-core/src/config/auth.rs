//! Compiles the `auth` section and route requirements into [`AuthPolicies`].

use std::collections::{BTreeMap, HashSet};

use http::HeaderName;

use super::compile::Compiler;
use super::error::{did_you_mean, ConfigErrorKind as Kind};
use super::model::{ApiKeyScheme, AuthSchemes, InlineKey, JwtScheme, Requirement, RouteAuth};
use crate::auth::jwt::{Algorithm, VerifyingKey};
use crate::auth::policy::{
    self, AuthPolicies, ClaimPath, Consumer, ConsumerField, CredentialSource, IssuerPolicy, JwksBounds, JwksSource,
    RouteRequirement, Scheme, SchemeKind, SecretEncoding, SecretRef, SetRule, StaticConsumer,
};

const DEFAULT_MAX_TOKEN_BYTES: u32 = 8192;
const DEFAULT_LEEWAY_S: u32 = 60;

/// Scheme names to their index in [`AuthPolicies::schemes`].
pub(super) type SchemeNames = BTreeMap<String, usize>;

pub(super) fn compile_schemes(c: &mut Compiler, schemes: &AuthSchemes) -> (AuthPolicies, SchemeNames) {
    let mut policies = AuthPolicies::default();
    let mut compiled = Vec::new();
    let mut issuers = Vec::new();
    let mut names = SchemeNames::new();
    for (name, scheme) in &schemes.jwt {
        let at = format!("auth.jwt.{name}");
        check_scheme_name(c, &at, name);
        if let Some(kind) = compile_jwt(c, &at, scheme, &mut issuers) {
            names.insert(name.clone(), compiled.len());
            compiled.push(Scheme { name: name.as_str().into(), kind: SchemeKind::Jwt(kind) });
        }
    }
    for (name, scheme) in &schemes.api_keys {
        let at = format!("auth.api_keys.{name}");
        check_scheme_name(c, &at, name);
        if schemes.jwt.contains_key(name) {
            c.error(Kind::InvalidValue, &at, format!("scheme name \"{name}\" is also a JWT scheme")).hint =
                Some("scheme names are unique across auth.jwt and auth.api_keys".into());
            continue;
        }
        if let Some(kind) = compile_api_keys(c, &at, scheme) {
            names.insert(name.clone(), compiled.len());
            compiled.push(Scheme { name: name.as_str().into(), kind: SchemeKind::ApiKey(kind) });
        }
    }
    policies.schemes = compiled.into();
    policies.issuers = issuers.into();
    (policies, names)
}

fn check_scheme_name(c: &mut Compiler, at: &str, name: &str) {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        c.error(Kind::InvalidValue, at, format!("invalid scheme name \"{name}\"")).hint =
            Some("use letters, digits, '-', '_' and '.'".into());
    }
}

fn header_name(c: &mut Compiler, at: &str, name: &str) -> Option<HeaderName> {
    match HeaderName::try_from(name) {
        Ok(name) => Some(name),
        Err(_) => {
            c.error(Kind::InvalidValue, at, format!("invalid header name \"{name}\""));
            None
        }
    }
}

fn claim_path(c: &mut Compiler, at: &str, path: &str) -> Option<ClaimPath> {
    let parsed = ClaimPath::parse(path);
    if parsed.is_none() {
        c.error(Kind::InvalidValue, at, format!("invalid claim path \"{path}\"")).hint =
            Some("write a claim name or a dotted path, e.g. \"sub\" or \"realm_access.roles\"".into());
    }
    parsed
}

fn algorithm(c: &mut Compiler, at: &str, name: &str, allowed: impl Fn(Algorithm) -> bool) -> Option<Algorithm> {
    match Algorithm::from_name(name).filter(|alg| allowed(*alg)) {
        Some(alg) => Some(alg),
        None => {
            let names: Vec<&str> = Algorithm::ALL.iter().filter(|a| allowed(**a)).map(|a| a.name()).collect();
            c.error(Kind::InvalidValue, at, format!("algorithm \"{name}\" is not accepted here")).hint = Some(
                did_you_mean(name, names.iter().copied()).unwrap_or_else(|| format!("use one of {}", names.join(", "))),
            );
            None
        }
    }
}

fn is_http_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
            && !url.contains('#')
    })
}

fn compile_jwt(
    c: &mut Compiler,
    at: &str,
    scheme: &JwtScheme,
    issuers: &mut Vec<IssuerPolicy>,
) -> Option<policy::JwtScheme> {
    let errors_before = c.errors.len();
    if scheme.issuers.is_empty() {
        c.error(Kind::InvalidValue, format!("{at}.issuers"), "a JWT scheme needs at least one issuer");
    }
    let bounds = jwks_bounds(c, at, scheme);
    let mut indexes = Vec::new();
    let mut seen = HashSet::new();
    for (i, issuer) in scheme.issuers.iter().enumerate() {
        let at = format!("{at}.issuers[{i}]");
        if !seen.insert(issuer.issuer.as_str()) {
            c.error(
                Kind::InvalidValue,
                format!("{at}.issuer"),
                format!("issuer \"{}\" is listed twice", issuer.issuer),
            );
        }
        if issuer.issuer.is_empty() {
            c.error(Kind::InvalidValue, format!("{at}.issuer"), "the issuer must not be empty");
        }
        let rsa_default = match &issuer.rsa_default_alg {
            Some(name) => {
                algorithm(c, &format!("{at}.rsa_default_alg"), name, |a| matches!(a.name().get(..2), Some("RS" | "PS")))
                    .unwrap_or(Algorithm::Rs256)
            }
            None => Algorithm::Rs256,
        };
        let mut keys = Vec::new();
        for (k, key) in issuer.keys.iter().enumerate() {
            let key_at = format!("{at}.keys[{k}]");
            let parsed = match key {
                InlineKey::Pem(pem) => {
                    let Some(alg) = algorithm(c, &format!("{key_at}.alg"), &pem.alg, |a| !a.is_hmac()) else {
                        continue;
                    };
                    VerifyingKey::from_pem(&pem.pem, alg, pem.kid.as_deref())
                }
                InlineKey::Jwk(jwk) => VerifyingKey::from_jwk(&serde_json::Value::Object(jwk.clone()), rsa_default),
            };
            match parsed {
                Ok(key) => keys.push(key),
                Err(error) => {
                    c.error(Kind::InvalidValue, key_at, error.to_string()).hint = Some(
                        "write a public JWK with \"alg\", or {\"pem\": \"-----BEGIN PUBLIC KEY-----...\", \"alg\": \"ES256\"}"
                            .into(),
                    );
                }
            }
        }
        let mut secrets = Vec::new();
        for (k, secret) in issuer.secrets.iter().enumerate() {
            let secret_at = format!("{at}.secrets[{k}]");
            let valid_name = secret.secret.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && secret.secret.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid_name {
                c.error(Kind::InvalidValue, format!("{secret_at}.secret"), format!("invalid secret name \"{}\"", secret.secret))
                    .hint = Some("name a runtime secret: lower case letters, digits and '_', e.g. \"jwt_secret\"; never the secret itself".into());
            }
            let encoding = match secret.encoding.as_deref() {
                None => Some(SecretEncoding::Utf8),
                Some(name) => {
                    let encoding = SecretEncoding::from_name(name);
                    if encoding.is_none() {
                        c.error(
                            Kind::InvalidValue,
                            format!("{secret_at}.encoding"),
                            format!("unknown encoding \"{name}\""),
                        )
                        .hint = Some("use \"utf8\", \"base64\", \"base64url\" or \"hex\"".into());
                    }
                    encoding
                }
            };
            if let (Some(alg), Some(encoding)) =
                (algorithm(c, &format!("{secret_at}.alg"), &secret.alg, Algorithm::is_hmac), encoding)
            {
                secrets.push(SecretRef {
                    name: secret.secret.as_str().into(),
                    alg,
                    kid: secret.kid.as_deref().map(Into::into),
                    encoding,
                });
            }
        }
        let jwks = match (&issuer.jwks_url, issuer.discovery.unwrap_or(false)) {
            (Some(_), true) => {
                c.error(
                    Kind::InvalidValue,
                    format!("{at}.discovery"),
                    "\"jwks_url\" and \"discovery\" exclude each other",
                )
                .hint = Some("keep one of them".into());
                None
            }
            (Some(url), false) => {
                if !is_http_url(url) {
                    c.error(Kind::InvalidValue, format!("{at}.jwks_url"), format!("invalid JWKS URL \"{url}\"")).hint =
                        Some("write an http:// or https:// URL".into());
                }
                Some(JwksSource::Url(url.as_str().into()))
            }
            (None, true) => {
                if !is_http_url(&issuer.issuer) {
                    c.error(Kind::InvalidValue, format!("{at}.discovery"), "discovery needs an http(s) issuer URL")
                        .hint = Some(format!("\"{}\" is not one; set \"jwks_url\" instead", issuer.issuer));
                }
                Some(JwksSource::Discovery(issuer.issuer.as_str().into()))
            }
            (None, false) => None,
        };
        if keys.is_empty()
            && issuer.keys.is_empty()
            && secrets.is_empty()
            && issuer.secrets.is_empty()
            && jwks.is_none()
        {
            c.error(Kind::MissingField, &at, "the issuer has no key source").hint =
                Some("add \"keys\", \"secrets\", \"jwks_url\" or \"discovery\": true".into());
        }
        let audiences = match &issuer.audiences {
            Some(list) if list.is_empty() => {
                c.error(Kind::InvalidValue, format!("{at}.audiences"), "an empty audience list accepts no token")
                    .hint = Some("leave \"audiences\" out to skip the aud check".into());
                None
            }
            Some(list) => Some(list.iter().map(|a| a.as_str().into()).collect()),
            None => None,
        };
        let required_claims: Vec<ClaimPath> = issuer
            .required_claims
            .iter()
            .enumerate()
            .filter_map(|(k, path)| claim_path(c, &format!("{at}.required_claims[{k}]"), path))
            .collect();
        indexes.push(issuers.len());
        issuers.push(IssuerPolicy {
            issuer: issuer.issuer.as_str().into(),
            audiences,
            static_keys: keys.into(),
            secrets: secrets.into(),
            jwks,
            rsa_default,
            required_claims: required_claims.into(),
            max_lifetime_s: issuer.max_lifetime_s,
            cache: bounds,
        });
    }

    let source = credential_source(c, &format!("{at}.token"), scheme.token.as_ref());
    let max_token_bytes = scheme.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    if !(64..=65_536).contains(&max_token_bytes) {
        c.error(Kind::InvalidValue, format!("{at}.max_token_bytes"), format!("{max_token_bytes} is out of range"))
            .hint = Some("use 64 to 65536".into());
    }
    let leeway = scheme.leeway_s.unwrap_or(DEFAULT_LEEWAY_S);
    if leeway > 600 {
        c.error(Kind::InvalidValue, format!("{at}.leeway_s"), format!("leeway {leeway} s is out of range")).hint =
            Some("use 0 to 600".into());
    }
    let mut forward_claims = Vec::new();
    for (header, path) in &scheme.forward_claims {
        let at = format!("{at}.forward_claims.{header}");
        if let (Some(name), Some(path)) = (header_name(c, &at, header), claim_path(c, &at, path)) {
            forward_claims.push((name, path));
        }
    }
    let roles_claim = claim_path(c, &format!("{at}.roles_claim"), scheme.roles_claim.as_deref().unwrap_or("roles"));
    if c.errors.len() > errors_before {
        return None;
    }
    Some(policy::JwtScheme {
        issuers: indexes.into(),
        source: source?,
        max_token_bytes: usize::try_from(max_token_bytes).unwrap_or(usize::MAX),
        leeway_s: u64::from(leeway),
        forward_claims: forward_claims.into(),
        forward_token: scheme.forward_token.unwrap_or(false),
        roles_claim: roles_claim?,
    })
}

fn jwks_bounds(c: &mut Compiler, at: &str, scheme: &JwtScheme) -> JwksBounds {
    let cache = scheme.jwks_cache.clone().unwrap_or_default();
    let seconds = |value: Option<u64>, default: u64| value.unwrap_or(default).saturating_mul(1000);
    let bounds = JwksBounds {
        min_ttl: seconds(cache.min_ttl_s, 60),
        max_ttl: seconds(cache.max_ttl_s, 86_400),
        cooldown: seconds(cache.refetch_cooldown_s, 30),
        max_stale: seconds(cache.max_stale_s, 86_400),
    };
    if bounds.min_ttl > bounds.max_ttl {
        c.error(Kind::InvalidValue, format!("{at}.jwks_cache.min_ttl_s"), "min_ttl_s is larger than max_ttl_s");
    }
    bounds
}

fn credential_source(
    c: &mut Compiler,
    at: &str,
    token: Option<&super::model::TokenSource>,
) -> Option<CredentialSource> {
    let Some(token) = token else { return Some(CredentialSource::Bearer) };
    let given = [token.header.is_some(), token.cookie.is_some(), token.query.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        c.error(Kind::InvalidValue, at, "give one of \"header\", \"cookie\" and \"query\"");
        return None;
    }
    if let Some(header) = &token.header {
        return header_name(c, &format!("{at}.header"), header).map(|name| {
            if name == http::header::AUTHORIZATION {
                CredentialSource::Bearer
            } else {
                CredentialSource::Header(name)
            }
        });
    }
    let simple = |name: &str| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if let Some(cookie) = &token.cookie {
        if !simple(cookie) {
            c.error(Kind::InvalidValue, format!("{at}.cookie"), format!("invalid cookie name \"{cookie}\""));
            return None;
        }
        return Some(CredentialSource::Cookie(cookie.as_str().into()));
    }
    if let Some(query) = &token.query {
        if !simple(query) {
            c.error(Kind::InvalidValue, format!("{at}.query"), format!("invalid query parameter \"{query}\""));
            return None;
        }
        return Some(CredentialSource::Query(query.as_str().into()));
    }
    Some(CredentialSource::Bearer)
}

fn compile_api_keys(c: &mut Compiler, at: &str, scheme: &ApiKeyScheme) -> Option<policy::ApiKeyScheme> {
    let errors_before = c.errors.len();
    let header = header_name(c, &format!("{at}.header"), scheme.header.as_deref().unwrap_or("x-api-key"));
    let store = scheme.store.unwrap_or(false);
    if scheme.consumers.is_empty() && !store {
        c.error(Kind::MissingField, at, "the scheme has no consumers").hint =
            Some("declare \"consumers\" or set \"store\": true".into());
    }
    let mut ids = HashSet::new();
    let mut digests = HashSet::new();
    let mut consumers = Vec::new();
    for (i, consumer) in scheme.consumers.iter().enumerate() {
        let at = format!("{at}.consumers[{i}]");
        if !ids.insert(consumer.id.as_str()) {
            c.error(Kind::InvalidValue, format!("{at}.id"), format!("consumer id \"{}\" is used twice", consumer.id));
        }
        let Some(digest) = parse_sha256(&consumer.key_sha256) else {
            c.error(Kind::InvalidValue, format!("{at}.key_sha256"), "not a SHA-256 digest").hint =
                Some("64 lower-case hex digits: printf %s \"$KEY\" | sha256sum".into());
            continue;
        };
        if !digests.insert(digest) {
            c.error(Kind::InvalidValue, format!("{at}.key_sha256"), "two consumers share this key");
        }
        consumers.push(StaticConsumer {
            key_sha256: digest,
            consumer: Consumer { id: consumer.id.clone(), name: consumer.name.clone(), tags: consumer.tags.clone() },
        });
    }
    let mut forward = Vec::new();
    for (header, field) in &scheme.forward {
        let at = format!("{at}.forward.{header}");
        let field = match field.as_str() {
            "id" => Some(ConsumerField::Id),
            "name" => Some(ConsumerField::Name),
            "tags" => Some(ConsumerField::Tags),
            other => {
                c.error(Kind::InvalidValue, &at, format!("unknown consumer field \"{other}\"")).hint =
                    Some("use \"id\", \"name\" or \"tags\"".into());
                None
            }
        };
        if let (Some(name), Some(field)) = (header_name(c, &at, header), field) {
            forward.push((name, field));
        }
    }
    let query = scheme.query.as_deref().map(Into::into);
    if c.errors.len() > errors_before {
        return None;
    }
    Some(policy::ApiKeyScheme {
        header: header?,
        query,
        consumers: consumers.into(),
        store,
        forward: forward.into(),
        forward_key: scheme.forward_key.unwrap_or(false),
    })
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// A route's (or the default) requirement, with scheme names resolved.
pub(super) fn compile_requirement(
    c: &mut Compiler,
    at: &str,
    auth: &RouteAuth,
    names: &SchemeNames,
    policies: &AuthPolicies,
) -> Option<RouteRequirement> {
    let errors_before = c.errors.len();
    if auth.any_of.is_empty() {
        c.error(Kind::InvalidValue, format!("{at}.any_of"), "an empty scheme list lets nobody in").hint =
            Some("name schemes from \"auth\", or write \"auth\": false for a public route".into());
    }
    let mut schemes = Vec::new();
    for (i, name) in auth.any_of.iter().enumerate() {
        match names.get(name) {
            Some(&index) if schemes.contains(&index) => {
                c.error(Kind::InvalidValue, format!("{at}.any_of[{i}]"), format!("scheme \"{name}\" is listed twice"));
            }
            Some(&index) => schemes.push(index),
            None => {
                c.error(Kind::UnknownScheme, format!("{at}.any_of[{i}]"), format!("unknown auth scheme \"{name}\""))
                    .hint = did_you_mean(name, names.keys().map(String::as_str))
                    .or_else(|| Some("declare it under \"auth.jwt\" or \"auth.api_keys\"".into()));
            }
        }
    }
    let has_jwt = schemes.iter().any(|&i| matches!(policies.schemes.get(i).map(|s| &s.kind), Some(SchemeKind::Jwt(_))));
    let mut rule = |key: &str, requirement: &Option<Requirement>| -> Option<SetRule> {
        let requirement = requirement.as_ref()?;
        let at = format!("{at}.{key}");
        if !has_jwt && !schemes.is_empty() {
            c.error(Kind::InvalidValue, &at, format!("{key} need a JWT scheme in \"any_of\""));
        }
        let list = |names: &Vec<String>| names.iter().map(|n| n.as_str().into()).collect::<Box<[Box<str>]>>();
        match (&requirement.any_of, &requirement.all_of) {
            (Some(names), None) if !names.is_empty() => Some(SetRule::AnyOf(list(names))),
            (None, Some(names)) if !names.is_empty() => Some(SetRule::AllOf(list(names))),
            _ => {
                c.error(Kind::InvalidValue, at, "give a non-empty \"any_of\" or \"all_of\", not both");
                None
            }
        }
    };
    let scopes = rule("scopes", &auth.scopes);
    let roles = rule("roles", &auth.roles);
    if c.errors.len() > errors_before {
        return None;
    }
    Some(RouteRequirement { schemes: schemes.into(), optional: auth.optional.unwrap_or(false), scopes, roles })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hex() {
        assert_eq!(super::parse_sha256(&"0f".repeat(32)), Some([0x0f; 32]));
        assert_eq!(super::parse_sha256(&"0F".repeat(32)), None);
        assert_eq!(super::parse_sha256("abc"), None);
    }
}
