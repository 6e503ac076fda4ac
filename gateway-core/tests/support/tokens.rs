//! Minting test tokens natively (HS256 with hmac, ES256 with p256): the verifier under test
//! never signs anything itself.
#![allow(dead_code, clippy::unwrap_used)]

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use serde_json::{json, Value};

pub fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

pub fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

pub fn es256(key: &p256::ecdsa::SigningKey, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

/// A deterministic P-256 key from one seed byte.
pub fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    let mut bytes = [seed; 32];
    bytes[0] = 1;
    p256::ecdsa::SigningKey::from_bytes(&bytes.into()).unwrap()
}

/// The public JWK of a P-256 key.
pub fn p256_jwk(key: &p256::ecdsa::SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
           "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
}
