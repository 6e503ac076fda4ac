//! The authentication phase: find a credential for one of the route's schemes, verify it,
//! apply the route's scope and role rules, and rewrite the request headers the upstream sees.

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, Uri};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::credential::{self, Malformed};
use super::jwks::VerifiedToken;
use super::jwt::{self, Algorithm, DecodedToken, JwtError, VerifyingKey};
use super::policy::{
    check_claims, claim_header_text, claim_strings, scopes, ApiKeyScheme, Consumer, ConsumerField, CredentialSource,
    JwtScheme, RouteRequirement, SchemeKind,
};
use super::remembered;
use super::KeyCache;
use crate::ports::{explain, Platform};
use crate::problem::{ProblemKind, Rejection};
use crate::Gateway;

/// Who the caller is, as far as later phases are concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// The route is public, or its auth is optional and no credential came.
    Anonymous,
    /// A verified JWT.
    Token {
        /// The verified claims.
        claims: std::sync::Arc<Map<String, Value>>,
    },
    /// A consumer identified by its API key.
    Consumer(Consumer),
}

impl Identity {
    /// Who called, for logs: the token's `sub` or the consumer's id.
    pub fn principal(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::Token { claims } => claims.get("sub").and_then(Value::as_str),
            Self::Consumer(consumer) => Some(&consumer.id),
        }
    }
}

/// Why one scheme refused its credential. Descriptions are safe to show to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// RFC 6750 `invalid_token`, with a description.
    InvalidToken(&'static str),
    /// No key can be obtained for this token and none is cached.
    KeysUnavailable,
    /// The key-value store is needed for API keys and cannot be read.
    StoreUnavailable,
}

/// A request that passed its route's requirement.
#[derive(Debug)]
pub(crate) struct Authenticated {
    pub identity: Identity,
    /// The query string to forward when a credential was removed from it.
    pub query: Option<String>,
}

/// Runs the route's requirement; `Err` is the answer to send instead of forwarding.
/// Identity headers a client sent and credentials are removed from `headers` either way.
pub(crate) async fn authenticate<P: Platform>(
    gateway: &Gateway,
    keys: &KeyCache,
    platform: &P,
    requirement: &RouteRequirement,
    headers: &mut HeaderMap,
    uri: &Uri,
) -> Result<Authenticated, Rejection> {
    let policies = &gateway.auth;
    let mut outcome: Option<(usize, Identity)> = None;
    let mut refusal: Option<(usize, Refusal)> = None;
    for &index in requirement.schemes.iter() {
        let Some(scheme) = policies.schemes.get(index) else { continue };
        let result = match &scheme.kind {
            SchemeKind::Jwt(jwt) => verify_jwt((gateway, keys), platform, jwt, headers, uri).await,
            SchemeKind::ApiKey(keys) => verify_api_key(platform, keys, headers, uri).await,
        };
        explain(platform, "auth", || format!("scheme \"{}\": {}", scheme.name, verdict(&result)));
        match result {
            Ok(Some(identity)) => {
                outcome = Some((index, identity));
                break;
            }
            Ok(None) => {}
            Err(why) => {
                refusal.get_or_insert((index, why));
            }
        }
    }

    // Whatever happened, the upstream must not see a spoofed identity header or a credential.
    let mut stripped_uri: Option<Uri> = None;
    for &index in requirement.schemes.iter() {
        if let Some(scheme) = policies.schemes.get(index) {
            strip_for_scheme(&scheme.kind, headers, uri, &mut stripped_uri);
        }
    }
    let query = stripped_uri.map(|u| u.query().unwrap_or_default().to_owned());

    let (index, identity) = match (outcome, refusal) {
        (Some(found), _) => found,
        (None, Some((_, Refusal::KeysUnavailable))) => {
            return Err(Rejection::new(
                ProblemKind::AuthUnavailable,
                "The keys to verify this credential cannot be obtained right now.",
            ));
        }
        (None, Some((_, Refusal::StoreUnavailable))) => {
            return Err(Rejection::new(
                ProblemKind::AuthUnavailable,
                "The consumer directory cannot be read right now.",
            ));
        }
        (None, Some((failed, Refusal::InvalidToken(description)))) => {
            return Err(unauthorized(gateway, requirement, Some((failed, description))));
        }
        (None, None) if requirement.optional => {
            explain(platform, "auth", || "optional: passes on as anonymous".to_owned());
            return Ok(Authenticated { identity: Identity::Anonymous, query });
        }
        (None, None) => return Err(unauthorized(gateway, requirement, None)),
    };

    let granted = check_grants(gateway, requirement, index, &identity);
    explain(platform, "auth", || match (&granted, &requirement.scopes, &requirement.roles) {
        (_, None, None) => "no scope or role required".to_owned(),
        (Ok(()), _, _) => "the required scopes and roles are held".to_owned(),
        (Err(rejection), _, _) => format!("refused: {}", rejection.detail),
    });
    granted?;
    if let Some(scheme) = policies.schemes.get(index) {
        forward_identity(&scheme.kind, &identity, headers);
    }
    Ok(Authenticated { identity, query })
}

/// One scheme's verdict, for `explain`.
fn verdict(result: &Result<Option<Identity>, Refusal>) -> String {
    match result {
        Ok(Some(identity)) => format!("accepted, caller {}", identity.principal().unwrap_or("(no sub)")),
        Ok(None) => "no credential where it looks".to_owned(),
        Err(Refusal::InvalidToken(why)) => format!("refused: {why}"),
        Err(Refusal::KeysUnavailable) => "no key can be obtained for this token".to_owned(),
        Err(Refusal::StoreUnavailable) => "the consumer directory cannot be read".to_owned(),
    }
}

/// Removes a scheme's identity headers and credential; a credential in the query string is
/// removed from a copy of the URI, made on first need.
fn strip_for_scheme(kind: &SchemeKind, headers: &mut HeaderMap, original: &Uri, uri: &mut Option<Uri>) {
    let mut strip_query = |name: &str| {
        if original.query().is_some() {
            credential::strip_query_param(uri.get_or_insert_with(|| original.clone()), name);
        }
    };
    match kind {
        SchemeKind::Jwt(jwt) => {
            for (name, _) in jwt.forward_claims.iter() {
                headers.remove(name);
            }
            if !jwt.forward_token {
                match &jwt.source {
                    CredentialSource::Query(name) => strip_query(name),
                    source => credential::strip(source, headers),
                }
            }
        }
        SchemeKind::ApiKey(keys) => {
            for (name, _) in keys.forward.iter() {
                headers.remove(name);
            }
            if !keys.forward_key {
                headers.remove(&keys.header);
                if let Some(name) = &keys.query {
                    strip_query(name);
                }
            }
        }
    }
}

fn forward_identity(kind: &SchemeKind, identity: &Identity, headers: &mut HeaderMap) {
    match (kind, identity) {
        (SchemeKind::Jwt(jwt), Identity::Token { claims }) => {
            for (name, path) in jwt.forward_claims.iter() {
                let text = path.lookup(claims).and_then(claim_header_text);
                if let Some(value) = text.and_then(|t| HeaderValue::try_from(t).ok()) {
                    headers.insert(name, value);
                }
            }
        }
        (SchemeKind::ApiKey(keys), Identity::Consumer(consumer)) => {
            for (name, field) in keys.forward.iter() {
                let text = match field {
                    ConsumerField::Id => Some(consumer.id.clone()),
                    ConsumerField::Name => consumer.name.clone(),
                    ConsumerField::Tags => Some(consumer.tags.join(",")),
                };
                if let Some(value) = text.and_then(|t| HeaderValue::try_from(t).ok()) {
                    headers.insert(name, value);
                }
            }
        }
        _ => {}
    }
}

fn check_grants(
    gateway: &Gateway,
    requirement: &RouteRequirement,
    scheme: usize,
    identity: &Identity,
) -> Result<(), Rejection> {
    if requirement.scopes.is_none() && requirement.roles.is_none() {
        return Ok(());
    }
    let claims = match identity {
        Identity::Token { claims } => Some(claims),
        _ => None,
    };
    let roles_claim = match gateway.auth.schemes.get(scheme).map(|s| &s.kind) {
        Some(SchemeKind::Jwt(jwt)) => Some(&jwt.roles_claim),
        _ => None,
    };
    let scopes_ok = match (&requirement.scopes, claims) {
        (None, _) => true,
        (Some(rule), Some(claims)) => rule.is_met(scopes(claims)),
        (Some(_), None) => false,
    };
    let roles_ok = match (&requirement.roles, claims, roles_claim) {
        (None, _, _) => true,
        (Some(rule), Some(claims), Some(path)) => rule.is_met(claim_strings(path.lookup(claims))),
        _ => false,
    };
    if scopes_ok && roles_ok {
        return Ok(());
    }
    let mut rejection = Rejection::new(
        ProblemKind::InsufficientScope,
        if scopes_ok { "The credential lacks a required role." } else { "The credential lacks a required scope." },
    );
    let mut challenge = String::from("Bearer realm=\"edgegate\", error=\"insufficient_scope\"");
    if let Some(rule) = &requirement.scopes {
        challenge.push_str(", scope=\"");
        challenge.push_str(&rule.names().join(" "));
        challenge.push('"');
    }
    if let Ok(value) = HeaderValue::try_from(challenge) {
        rejection = rejection.with_header(WWW_AUTHENTICATE, value);
    }
    Err(rejection)
}

/// 401 with one challenge per scheme the route accepts; the failing one carries the error.
fn unauthorized(gateway: &Gateway, requirement: &RouteRequirement, failed: Option<(usize, &'static str)>) -> Rejection {
    let detail = match failed {
        Some((_, description)) => description,
        None => "This route requires a credential.",
    };
    let mut rejection = Rejection::new(ProblemKind::Unauthorized, detail);
    for &index in requirement.schemes.iter() {
        let Some(scheme) = gateway.auth.schemes.get(index) else { continue };
        let mut challenge = match scheme.kind {
            SchemeKind::Jwt(_) => String::from("Bearer realm=\"edgegate\""),
            SchemeKind::ApiKey(_) => String::from("ApiKey realm=\"edgegate\""),
        };
        if let Some((_, description)) = failed.filter(|(i, _)| *i == index) {
            challenge.push_str(", error=\"invalid_token\", error_description=\"");
            challenge.push_str(description);
            challenge.push('"');
        }
        if let Ok(value) = HeaderValue::try_from(challenge) {
            rejection = rejection.with_header(WWW_AUTHENTICATE, value);
        }
    }
    rejection
}

fn jwt_refusal(error: &JwtError) -> Refusal {
    Refusal::InvalidToken(match error {
        JwtError::UnsupportedCritical => "The token uses an unsupported critical extension",
        JwtError::AlgorithmMismatch | JwtError::InvalidSignature => "The token signature is invalid",
        _ => "The token is malformed",
    })
}

async fn verify_jwt<P: Platform>(
    (gateway, keys): (&Gateway, &KeyCache),
    platform: &P,
    scheme: &JwtScheme,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Option<Identity>, Refusal> {
    let token = match credential::find(&scheme.source, headers, uri) {
        Ok(Some(token)) => token,
        Ok(None) => return Ok(None),
        Err(Malformed) => return Err(Refusal::InvalidToken("The credential is malformed")),
    };
    if token.len() > scheme.max_token_bytes {
        return Err(Refusal::InvalidToken("The token is too large"));
    }
    let now = platform.now();
    let now_s = i64::try_from(now / 1000).unwrap_or(i64::MAX);
    if let Some(hit) = remembered::recall(gateway, keys, platform, &token, now).await {
        if let Some(issuer) =
            scheme.issuers.contains(&hit.issuer).then(|| gateway.auth.issuers.get(hit.issuer)).flatten()
        {
            check_claims(issuer, &hit.claims, now_s, scheme.leeway_s)
                .map_err(|e| Refusal::InvalidToken(e.description()))?;
            return Ok(Some(Identity::Token { claims: hit.claims }));
        }
    }
    let decoded = jwt::decode(&token).map_err(|e| jwt_refusal(&e))?;
    let Some(alg) = Algorithm::from_name(decoded.alg()) else {
        return Err(Refusal::InvalidToken("The token algorithm is not accepted"));
    };
    let iss = decoded.claims().get("iss").and_then(Value::as_str);
    let policies = &gateway.auth;
    let found = scheme
        .issuers
        .iter()
        .filter_map(|&i| Some((i, policies.issuers.get(i)?)))
        .find(|(_, issuer)| iss == Some(&*issuer.issuer));
    let Some((issuer_index, issuer)) = found else {
        return Err(Refusal::InvalidToken("The token issuer is not accepted"));
    };
    verify_with_issuer_keys(keys, platform, &decoded, alg, (issuer_index, issuer)).await?;
    check_claims(issuer, decoded.claims(), now_s, scheme.leeway_s)
        .map_err(|e| Refusal::InvalidToken(e.description()))?;
    let claims = std::sync::Arc::new(decoded.into_claims());
    remembered::keep(
        gateway,
        keys,
        platform,
        &token,
        VerifiedToken { issuer: issuer_index, claims: claims.clone(), verified_at: now },
    )
    .await;
    Ok(Some(Identity::Token { claims }))
}

/// Verifies the token's signature with the issuer's keys: static ones, then shared secrets
/// (HMAC), then its key set (fetched again when the token names a key not yet seen). A source
/// that was asked and gave nothing, with no other key, means 503 rather than 401.
async fn verify_with_issuer_keys<P: Platform>(
    keys: &KeyCache,
    platform: &P,
    decoded: &DecodedToken,
    alg: Algorithm,
    (issuer_index, issuer): (usize, &super::policy::IssuerPolicy),
) -> Result<(), Refusal> {
    let kid = decoded.kid();

    let of_alg = |keys: &[VerifyingKey]| keys.iter().any(|k| k.algorithm() == alg);
    let has_kid = |keys: &[VerifyingKey]| kid.is_some_and(|kid| keys.iter().any(|k| k.kid() == Some(kid)));

    let mut verified = verifies(platform, decoded, alg, &issuer.static_keys).await;
    let mut candidates = of_alg(&issuer.static_keys);
    let mut kid_known = has_kid(&issuer.static_keys);
    // A source that was asked and gave nothing: with no other key, the answer is 503, not 401.
    let mut source_empty = false;
    if !verified && alg.is_hmac() && !issuer.secrets.is_empty() {
        let secrets = keys.secret_keys(platform, issuer_index, issuer);
        source_empty |= secrets.is_empty();
        candidates |= of_alg(&secrets);
        kid_known |= has_kid(&secrets);
        verified = verifies(platform, decoded, alg, &secrets).await;
    }
    if !verified && !alg.is_hmac() {
        if let Some(source) = &issuer.jwks {
            let refetch_kid = kid.filter(|_| !kid_known);
            let entry = keys.jwks(platform, issuer_index, issuer, source, refetch_kid).await;
            let usable = entry.usable_keys(platform.now(), &issuer.cache);
            source_empty |= usable.is_empty();
            candidates |= of_alg(usable);
            kid_known |= has_kid(usable);
            verified = verifies(platform, decoded, alg, usable).await;
        }
    }
    if verified {
        return Ok(());
    }
    Err(match () {
        () if !candidates && source_empty => Refusal::KeysUnavailable,
        () if !candidates => Refusal::InvalidToken("The token algorithm is not accepted"),
        () if kid.is_some() && !kid_known => Refusal::InvalidToken("The token key is unknown"),
        () => Refusal::InvalidToken("The token signature is invalid"),
    })
}

/// Whether a key of the token's algorithm (and `kid`, when both name one) verifies it: natively
/// where the platform can, else in the core. The algorithm is matched before either is asked.
async fn verifies<P: Platform>(platform: &P, decoded: &DecodedToken, alg: Algorithm, keys: &[VerifyingKey]) -> bool {
    let kid = decoded.kid();
    let fits = |key: &&VerifyingKey| {
        key.algorithm() == alg
            && decoded.alg() == key.algorithm().name()
            && match (kid, key.kid()) {
                (Some(wanted), Some(have)) => wanted == have,
                _ => true,
            }
    };
    for key in keys.iter().filter(fits) {
        let native = match key.public_jwk() {
            Some(_) => platform.verify_signature(key, decoded.signing_input(), decoded.signature()).await,
            None => None,
        };
        let valid = match native {
            Some(valid) => valid,
            None => decoded.verify(key).is_ok(),
        };
        if valid {
            return true;
        }
    }
    false
}

/// `apikey:<sha256 hex>`, where consumers live in the shared store.
fn store_key(digest: &[u8; 32]) -> String {
    let mut key = String::with_capacity(7 + 64);
    key.push_str("apikey:");
    crate::hygiene::push_hex(&mut key, digest);
    key
}

async fn verify_api_key<P: Platform>(
    platform: &P,
    scheme: &ApiKeyScheme,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Option<Identity>, Refusal> {
    let from_header = credential::find(&CredentialSource::Header(scheme.header.clone()), headers, uri);
    let key = match from_header {
        Ok(Some(key)) => key,
        Ok(None) => match &scheme.query {
            Some(name) => match credential::find(&CredentialSource::Query(name.clone()), headers, uri) {
                Ok(Some(key)) => key,
                Ok(None) => return Ok(None),
                Err(Malformed) => return Err(Refusal::InvalidToken("The API key is malformed")),
            },
            None => return Ok(None),
        },
        Err(Malformed) => return Err(Refusal::InvalidToken("The API key is malformed")),
    };
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    // Every declared consumer is compared, in constant time, whatever matched before.
    let mut found: Option<&Consumer> = None;
    for candidate in scheme.consumers.iter() {
        if bool::from(candidate.key_sha256.ct_eq(&digest)) {
            found = Some(&candidate.consumer);
        }
    }
    if let Some(consumer) = found {
        return Ok(Some(Identity::Consumer(consumer.clone())));
    }
    if scheme.store {
        match platform.get(&store_key(&digest)).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Consumer>(&bytes) {
                Ok(consumer) => return Ok(Some(Identity::Consumer(consumer))),
                Err(_) => {
                    platform.log(&super::jwks::warning("a stored API-key consumer is not valid JSON"));
                }
            },
            Ok(None) => {}
            Err(_) => return Err(Refusal::StoreUnavailable),
        }
    }
    Err(Refusal::InvalidToken("The API key is not valid"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_keys_are_lower_hex() {
        assert_eq!(super::store_key(&[0xab; 32]), format!("apikey:{}", "ab".repeat(32)));
    }
}
