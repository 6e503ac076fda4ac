//! The JWT signature layer: compact JWS decoding, verifying keys (JWK, JWKS, PEM, HMAC
//! secret) and signature verification.
//!
//! The signature math is [`jwt_compact`]'s (`HS*`, `RS*`, `PS*`, `ES256`, `EdDSA`), plus an
//! `ES384` implementation of its [`jwt_compact::Algorithm`] trait on the RustCrypto `p384`
//! crate. Parsing is ours, so that a token can be refused for what its header says before any
//! key is looked at.
//!
//! The rules that keep the classic JWT attacks out:
//! - a [`VerifyingKey`] verifies exactly one [`Algorithm`], chosen when the key is built, and
//!   [`DecodedToken::verify`] refuses a token whose header `alg` is not exactly that name, so
//!   `"none"` never verifies and an HMAC token never meets a public key (or the reverse);
//! - HMAC secrets never come from a JWK or JWKS, and private keys are refused outright;
//! - a `crit` header is refused (no extension is implemented), and so is `"b64": false`;
//! - embedded key headers (`jwk`, `jku`, `x5u`, `x5c`) are ignored: keys come from config only.
//!
//! Claims times (`exp`, `nbf`, …) are not checked here: this module never reads a clock.
//!
//! ```
//! use gateway_core::auth::jwt::{decode, Algorithm, VerifyingKey};
//! // RFC 7515, appendix A.1.
//! let secret = [3, 35, 53, 75, 43, 15, 165, 188, 131, 126, 6, 101, 119, 123, 166, 143, 90, 179, 40,
//!     230, 240, 84, 201, 40, 169, 15, 132, 178, 210, 80, 46, 191, 211, 251, 90, 146, 210, 6, 71, 239,
//!     150, 138, 180, 195, 119, 98, 61, 34, 61, 46, 33, 114, 5, 46, 79, 8, 192, 205, 154, 245, 103,
//!     208, 128, 163];
//! let key = VerifyingKey::hmac(&secret, Algorithm::Hs256, None).unwrap();
//! let token = decode("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
//! assert_eq!(token.alg(), "HS256");
//! assert_eq!(token.claims()["iss"], "joe");
//! token.verify(&key).unwrap();
//! ```

use core::fmt;
use core::num::NonZeroUsize;
use std::borrow::Cow;

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::{Algorithm as JwsAlgorithm, AlgorithmSignature};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use spki::der::Decode;
use spki::ObjectIdentifier;

/// Smallest RSA modulus accepted (RFC 7518 §3.3: "a key of size 2048 bits or larger MUST be used").
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (the `rsa` crate's default ceiling is 4096).
const MAX_RSA_BITS: usize = 8192;

// ---------------------------------------------------------------------------------------------
// Algorithm

/// A JWS signature algorithm this gateway verifies (RFC 7518 §3, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256, 32-byte salt.
    Ps256,
    /// RSASSA-PSS with SHA-384, MGF1 with SHA-384, 48-byte salt.
    Ps384,
    /// RSASSA-PSS with SHA-512, MGF1 with SHA-512, 64-byte salt.
    Ps512,
    /// ECDSA on P-256 with SHA-256 (signature: raw `r || s`, 64 bytes).
    Es256,
    /// ECDSA on P-384 with SHA-384 (signature: raw `r || s`, 96 bytes).
    Es384,
    /// EdDSA on Ed25519 (RFC 8037).
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::Hs256,
        Algorithm::Hs384,
        Algorithm::Hs512,
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// The algorithm with this exact, case-sensitive JOSE name (`"HS256"` … `"EdDSA"`).
    /// `"none"`, in any casing, and every unsupported name give `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Algorithm::Hs256,
            "HS384" => Algorithm::Hs384,
            "HS512" => Algorithm::Hs512,
            "RS256" => Algorithm::Rs256,
            "RS384" => Algorithm::Rs384,
            "RS512" => Algorithm::Rs512,
            "PS256" => Algorithm::Ps256,
            "PS384" => Algorithm::Ps384,
            "PS512" => Algorithm::Ps512,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "EdDSA" => Algorithm::EdDsa,
            _ => return None,
        })
    }

    /// The JOSE name, as it appears in a header's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Whether this is an HMAC (`HS*`) algorithm, whose key is a shared secret.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512)
    }

    /// jwt-compact's RSA algorithm for `RS*` / `PS*`.
    fn rsa(self) -> Option<Rsa> {
        Some(match self {
            Algorithm::Rs256 => Rsa::rs256(),
            Algorithm::Rs384 => Rsa::rs384(),
            Algorithm::Rs512 => Rsa::rs512(),
            Algorithm::Ps256 => Rsa::ps256(),
            Algorithm::Ps384 => Rsa::ps384(),
            Algorithm::Ps512 => Rsa::ps512(),
            _ => return None,
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// ES384: jwt-compact has no P-384 algorithm; this implements its trait on RustCrypto `p384`.

/// `ES384`: ECDSA on P-384 with SHA-384 (RFC 7518 §3.4).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Es384;

/// An `ES384` signature: the JWS form is `r || s`, 48 bytes each.
#[derive(Debug)]
pub(crate) struct Es384Signature(p384::ecdsa::Signature);

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(96);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        p384::ecdsa::Signature::from_slice(slice).map(Self).map_err(|_| anyhow::Error::msg("invalid ES384 signature"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl JwsAlgorithm for Es384 {
    type SigningKey = p384::ecdsa::SigningKey;
    type VerifyingKey = p384::ecdsa::VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        use p384::ecdsa::signature::DigestSigner;
        use sha2::Digest;
        // RFC 6979 deterministic nonce: no random source needed.
        Es384Signature(signing_key.sign_digest(sha2::Sha384::new_with_prefix(message)))
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        use p384::ecdsa::signature::DigestVerifier;
        use sha2::Digest;
        verifying_key.verify_digest(sha2::Sha384::new_with_prefix(message), &signature.0).is_ok()
    }
}

/// Runs one jwt-compact algorithm the way its validator does: length check, signature parse,
/// then the algorithm's own verification.
fn verify_with<A: JwsAlgorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if let Some(length) = A::Signature::LENGTH {
        // Also what keeps a DER-encoded ECDSA signature out: JWS wants raw r || s.
        if signature.len() != length.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => alg.verify_signature(&signature, key, message),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// Parsed key material, ready to verify: built once, never re-parsed per token.
#[derive(Clone)]
enum Material {
    Hs256(Hs256Key),
    Hs384(Hs384Key),
    Hs512(Hs512Key),
    Rsa(Rsa, Box<RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
    P384(Box<p384::ecdsa::VerifyingKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Material {
    fn public_jwk(&self) -> Option<Value> {
        let b64 = |bytes: &[u8]| Value::String(Base64UrlUnpadded::encode_string(bytes));
        let ec = |crv: &str, x: Option<&[u8]>, y: Option<&[u8]>| {
            Some(serde_json::json!({"kty": "EC", "crv": crv, "x": b64(x?), "y": b64(y?)}))
        };
        match self {
            Material::Hs256(_) | Material::Hs384(_) | Material::Hs512(_) => None,
            Material::Rsa(_, key) => Some(
                serde_json::json!({"kty": "RSA", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())}),
            ),
            Material::P256(key) => {
                let point = key.to_encoded_point(false);
                ec("P-256", point.x().map(|x| &x[..]), point.y().map(|y| &y[..]))
            }
            Material::P384(key) => {
                let point = key.to_encoded_point(false);
                ec("P-384", point.x().map(|x| &x[..]), point.y().map(|y| &y[..]))
            }
            Material::Ed25519(key) => {
                Some(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.as_bytes())}))
            }
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Material::Hs256(key) => verify_with(&Hs256, key, message, signature),
            Material::Hs384(key) => verify_with(&Hs384, key, message, signature),
            Material::Hs512(key) => verify_with(&Hs512, key, message, signature),
            Material::Rsa(alg, key) => verify_with(alg, key, message, signature),
            Material::P256(key) => verify_with(&Es256, key, message, signature),
            Material::P384(key) => verify_with(&Es384, key, message, signature),
            Material::Ed25519(key) => verify_with(&Ed25519, key, message, signature),
        }
    }

    /// What kind of key this is, for `Debug`: never the key itself.
    fn kind(&self) -> String {
        match self {
            Material::Hs256(_) | Material::Hs384(_) | Material::Hs512(_) => "HMAC secret".to_owned(),
            Material::Rsa(_, key) => format!("RSA {}-bit", key.n().bits()),
            Material::P256(_) => "EC P-256".to_owned(),
            Material::P384(_) => "EC P-384".to_owned(),
            Material::Ed25519(_) => "OKP Ed25519".to_owned(),
        }
    }
}

/// A key that verifies exactly one algorithm (the key decides the algorithm, never the token).
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    kid: Option<Box<str>>,
    material: Material,
    /// The public key as a JWK without `alg`/`kid`, made on first use, for platforms that
    /// verify natively (WebCrypto imports it); `None` for HMAC secrets. Not made at compile
    /// time: Spin compiles per request and never asks.
    public_jwk: std::sync::OnceLock<Option<Box<str>>>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg.name())
            .field("kid", &self.kid)
            .field("key", &self.material.kind())
            .finish()
    }
}

impl VerifyingKey {
    fn new(alg: Algorithm, kid: Option<&str>, material: Material) -> Self {
        VerifyingKey { alg, kid: kid.map(Box::from), material, public_jwk: std::sync::OnceLock::new() }
    }

    /// The public key as a JWK (`kty` and its parameters only), e.g. for WebCrypto's
    /// `importKey("jwk", ...)`; `None` for an HMAC secret, which is never exported.
    pub fn public_jwk(&self) -> Option<&str> {
        self.public_jwk
            .get_or_init(|| self.material.public_jwk().map(|jwk| jwk.to_string().into_boxed_str()))
            .as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id (`kid`), if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// A public JWK (RFC 7517) as JSON: `kty` `RSA`, `EC` (`P-256`, `P-384`) or `OKP` (`Ed25519`).
    ///
    /// Its `alg` decides the algorithm; when absent: EC P-256 → ES256, P-384 → ES384,
    /// OKP Ed25519 → EdDSA, RSA → `default_rsa`. `alg` must fit the key type and curve.
    /// If `use` is present it must be `"sig"`; if `key_ops` is present it must contain
    /// `"verify"`. `kty` `"oct"` is refused (an HMAC secret never comes from a JWK), and so is a
    /// private JWK (one with `"d"`). RSA moduli must have 2048 to 8192 bits.
    pub fn from_jwk(jwk: &Value, default_rsa: Algorithm) -> Result<Self, KeyError> {
        let jwk = jwk.as_object().ok_or(KeyError::NotAnObject)?;
        let kty = string_param(jwk, "kty")?.ok_or(KeyError::MissingParameter("kty"))?;
        if kty == "oct" {
            return Err(KeyError::SymmetricJwk);
        }
        if jwk.contains_key("d") {
            return Err(KeyError::PrivateKey);
        }
        if let Some(usage) = jwk.get("use") {
            if usage.as_str() != Some("sig") {
                return Err(KeyError::NotForSignature);
            }
        }
        if let Some(ops) = jwk.get("key_ops") {
            let ops = ops.as_array().ok_or(KeyError::InvalidParameter("key_ops"))?;
            if !ops.iter().any(|op| op.as_str() == Some("verify")) {
                return Err(KeyError::NotForSignature);
            }
        }
        let kid = string_param(jwk, "kid")?;
        let alg = match string_param(jwk, "alg")? {
            Some(name) => {
                Some(Algorithm::from_name(name).ok_or_else(|| KeyError::UnsupportedAlgorithm(name.to_owned()))?)
            }
            None => None,
        };
        let (alg, material) = match kty {
            "RSA" => {
                let alg = alg.unwrap_or(default_rsa);
                let rsa = alg.rsa().ok_or(KeyError::AlgorithmMismatch { alg, key: "RSA" })?;
                let n = bytes_param(jwk, "n")?;
                let e = bytes_param(jwk, "e")?;
                (alg, Material::Rsa(rsa, Box::new(rsa_key(&n, &e)?)))
            }
            "EC" => {
                let crv = string_param(jwk, "crv")?.ok_or(KeyError::MissingParameter("crv"))?;
                let (default, size, key) = match crv {
                    "P-256" => (Algorithm::Es256, 32, "EC P-256"),
                    "P-384" => (Algorithm::Es384, 48, "EC P-384"),
                    other => return Err(KeyError::UnsupportedCurve(other.to_owned())),
                };
                let alg = alg.unwrap_or(default);
                if alg != default {
                    return Err(KeyError::AlgorithmMismatch { alg, key });
                }
                let x = bytes_param(jwk, "x")?;
                let y = bytes_param(jwk, "y")?;
                if x.len() != size {
                    return Err(KeyError::InvalidParameter("x"));
                }
                if y.len() != size {
                    return Err(KeyError::InvalidParameter("y"));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(0x04); // SEC1 uncompressed point
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (alg, ec_key(alg, &point)?)
            }
            "OKP" => {
                let crv = string_param(jwk, "crv")?.ok_or(KeyError::MissingParameter("crv"))?;
                if crv != "Ed25519" {
                    return Err(KeyError::UnsupportedCurve(crv.to_owned()));
                }
                let alg = alg.unwrap_or(Algorithm::EdDsa);
                if alg != Algorithm::EdDsa {
                    return Err(KeyError::AlgorithmMismatch { alg, key: "OKP Ed25519" });
                }
                let x = bytes_param(jwk, "x")?;
                (alg, ed25519_key(&x).map_err(|_| KeyError::InvalidParameter("x"))?)
            }
            other => return Err(KeyError::UnsupportedKeyType(other.to_owned())),
        };
        Ok(VerifyingKey::new(alg, kid, material))
    }

    /// A PEM public key: `PUBLIC KEY` (SPKI: RSA, EC P-256 / P-384, Ed25519) or
    /// `RSA PUBLIC KEY` (PKCS#1). `alg` must fit the key type. Line width and line endings are
    /// not checked; text around the PEM block is not accepted.
    pub fn from_pem(pem: &str, alg: Algorithm, kid: Option<&str>) -> Result<Self, KeyError> {
        let (label, der) = parse_pem(pem)?;
        let material = match label {
            "PUBLIC KEY" => spki_key(&der, alg)?,
            "RSA PUBLIC KEY" => {
                let rsa = alg.rsa().ok_or(KeyError::AlgorithmMismatch { alg, key: "RSA" })?;
                Material::Rsa(rsa, Box::new(pkcs1_key(&der)?))
            }
            label if label.contains("PRIVATE KEY") => return Err(KeyError::PrivateKey),
            other => return Err(KeyError::UnsupportedPemLabel(other.to_owned())),
        };
        Ok(VerifyingKey::new(alg, kid, material))
    }

    /// An HMAC secret for `HS256` / `HS384` / `HS512`. The secret must be at least as long as
    /// the hash output (32 / 48 / 64 bytes, RFC 7518 §3.2).
    pub fn hmac(secret: &[u8], alg: Algorithm, kid: Option<&str>) -> Result<Self, KeyError> {
        let (min, material) = match alg {
            Algorithm::Hs256 => (32, Material::Hs256(Hs256Key::new(secret))),
            Algorithm::Hs384 => (48, Material::Hs384(Hs384Key::new(secret))),
            Algorithm::Hs512 => (64, Material::Hs512(Hs512Key::new(secret))),
            _ => return Err(KeyError::AlgorithmMismatch { alg, key: "HMAC secret" }),
        };
        if secret.len() < min {
            return Err(KeyError::HmacSecretTooShort { alg, min, len: secret.len() });
        }
        Ok(VerifyingKey::new(alg, kid, material))
    }
}

/// Parses a JWKS document (`{"keys": [...]}`, RFC 7517 §5). Keys that cannot be used
/// (unsupported `kty`, `oct`, private, `"use": "enc"`, bad parameters, …) are skipped and
/// counted; only a document that is not a JWKS at all is an error.
pub fn parse_jwks(json: &[u8], default_rsa: Algorithm) -> Result<(Vec<VerifyingKey>, usize), KeyError> {
    let document: Value = serde_json::from_slice(json).map_err(|_| KeyError::NotAJwks)?;
    let entries =
        document.as_object().and_then(|doc| doc.get("keys")).and_then(Value::as_array).ok_or(KeyError::NotAJwks)?;
    let mut keys = Vec::with_capacity(entries.len());
    let mut skipped = 0;
    for entry in entries {
        match VerifyingKey::from_jwk(entry, default_rsa) {
            Ok(key) => keys.push(key),
            Err(_) => skipped += 1,
        }
    }
    Ok((keys, skipped))
}

/// A string JWK member: absent is `None`, any other JSON type an error.
fn string_param<'a>(jwk: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, KeyError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(KeyError::InvalidParameter(name)),
    }
}

/// A required base64url (unpadded) JWK member.
fn bytes_param(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = string_param(jwk, name)?.ok_or(KeyError::MissingParameter(name))?;
    Base64UrlUnpadded::decode_vec(text).map_err(|_| KeyError::InvalidParameter(name))
}

/// An RSA public key from its big-endian modulus and exponent, 2048 to 8192 bits.
fn rsa_key(n: &[u8], e: &[u8]) -> Result<RsaPublicKey, KeyError> {
    let n = BigUint::from_bytes_be(n);
    let bits = n.bits();
    if bits < MIN_RSA_BITS {
        return Err(KeyError::WeakRsaKey { bits });
    }
    RsaPublicKey::new_with_max_size(n, BigUint::from_bytes_be(e), MAX_RSA_BITS)
        .map_err(|_| KeyError::InvalidKey("RSA modulus or exponent rejected"))
}

/// A PKCS#1 `RSAPublicKey` (DER).
fn pkcs1_key(der: &[u8]) -> Result<RsaPublicKey, KeyError> {
    let key =
        rsa::pkcs1::RsaPublicKey::from_der(der).map_err(|_| KeyError::InvalidKey("not a PKCS#1 RSA public key"))?;
    rsa_key(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

/// An EC public key from a SEC1 point, on the curve `alg` (ES256 or ES384) names.
fn ec_key(alg: Algorithm, point: &[u8]) -> Result<Material, KeyError> {
    match alg {
        Algorithm::Es256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map(Material::P256)
            .map_err(|_| KeyError::InvalidKey("not a point on P-256")),
        Algorithm::Es384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map(|key| Material::P384(Box::new(key)))
            .map_err(|_| KeyError::InvalidKey("not a point on P-384")),
        _ => Err(KeyError::AlgorithmMismatch { alg, key: "EC" }),
    }
}

/// An Ed25519 public key from its 32 bytes.
fn ed25519_key(x: &[u8]) -> Result<Material, KeyError> {
    let bytes: &[u8; 32] = x.try_into().map_err(|_| KeyError::InvalidKey("an Ed25519 key has 32 bytes"))?;
    ed25519_dalek::VerifyingKey::from_bytes(bytes)
        .map(Material::Ed25519)
        .map_err(|_| KeyError::InvalidKey("not an Ed25519 public key"))
}

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) whose key type must fit `alg`.
fn spki_key(der: &[u8], alg: Algorithm) -> Result<Material, KeyError> {
    let spki =
        spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|_| KeyError::InvalidKey("not a SubjectPublicKeyInfo"))?;
    let key_bytes = spki.subject_public_key.as_bytes().ok_or(KeyError::InvalidKey("not a SubjectPublicKeyInfo"))?;
    let (oid, parameters) = spki.algorithm.oids().map_err(|_| KeyError::InvalidKey("not a SubjectPublicKeyInfo"))?;
    match (oid, parameters) {
        (OID_RSA_ENCRYPTION, None) => {
            let rsa = alg.rsa().ok_or(KeyError::AlgorithmMismatch { alg, key: "RSA" })?;
            Ok(Material::Rsa(rsa, Box::new(pkcs1_key(key_bytes)?)))
        }
        (OID_EC_PUBLIC_KEY, Some(OID_P256)) => match alg {
            Algorithm::Es256 => ec_key(alg, key_bytes),
            _ => Err(KeyError::AlgorithmMismatch { alg, key: "EC P-256" }),
        },
        (OID_EC_PUBLIC_KEY, Some(OID_P384)) => match alg {
            Algorithm::Es384 => ec_key(alg, key_bytes),
            _ => Err(KeyError::AlgorithmMismatch { alg, key: "EC P-384" }),
        },
        (OID_EC_PUBLIC_KEY, Some(curve)) => Err(KeyError::UnsupportedCurve(curve.to_string())),
        (OID_ED25519, None) => match alg {
            Algorithm::EdDsa => ed25519_key(key_bytes),
            _ => Err(KeyError::AlgorithmMismatch { alg, key: "OKP Ed25519" }),
        },
        (oid, _) => Err(KeyError::UnsupportedKeyType(oid.to_string())),
    }
}

/// One PEM block (RFC 7468): its label and its DER bytes. Whitespace inside the base64 body is
/// ignored (any line width, LF or CRLF); anything before or after the block is an error.
fn parse_pem(pem: &str) -> Result<(&str, Vec<u8>), KeyError> {
    let text = pem.trim();
    let rest = text.strip_prefix("-----BEGIN ").ok_or(KeyError::InvalidPem("no -----BEGIN line"))?;
    let (label, rest) = rest.split_once("-----").ok_or(KeyError::InvalidPem("malformed -----BEGIN line"))?;
    let end = format!("-----END {label}-----");
    let body = rest.strip_suffix(end.as_str()).ok_or(KeyError::InvalidPem("no matching -----END line"))?;
    if body.contains('-') || body.contains(':') {
        return Err(KeyError::InvalidPem("more than one block, or encapsulated headers"));
    }
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = Base64::decode_vec(&base64).map_err(|_| KeyError::InvalidPem("invalid base64 body"))?;
    Ok((label, der))
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// A compact JWS whose structure has been checked but whose signature has not.
pub struct DecodedToken {
    alg: Box<str>,
    kid: Option<Box<str>>,
    typ: Option<Box<str>>,
    claims: Map<String, Value>,
    /// `BASE64URL(header) "." BASE64URL(payload)`, exactly as received.
    signing_input: Box<str>,
    signature: Vec<u8>,
}

impl fmt::Debug for DecodedToken {
    /// Never prints the token or its signature (a bearer credential) nor claim values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodedToken")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("typ", &self.typ)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl DecodedToken {
    /// The header `alg`, exactly as sent (it may name an algorithm no key has, even `"none"`).
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// The header `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The header `typ`, if any (e.g. `"JWT"`, `"at+jwt"`).
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The bytes the signature covers: `BASE64URL(header) "." BASE64URL(payload)` as received.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The claims: the payload's JSON object (unverified until [`verify`](Self::verify) succeeds).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The claims, taken out of the token (once it has been verified, to keep them).
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// Verifies the signature with `key`. Fails with [`JwtError::AlgorithmMismatch`] unless the
    /// header `alg` is exactly `key.algorithm().name()`, so `"none"` in any casing never
    /// verifies, and an HMAC token never verifies with a public key, nor the reverse.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), JwtError> {
        if *self.alg != *key.alg.name() {
            return Err(JwtError::AlgorithmMismatch);
        }
        self.verify_signature(key)
    }

    /// The signature check alone.
    fn verify_signature(&self, key: &VerifyingKey) -> Result<(), JwtError> {
        if key.material.verify(self.signing_input.as_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(JwtError::InvalidSignature)
        }
    }
}

/// The JOSE header members this layer reads; any other member is ignored. A repeated member
/// among these is malformed (serde refuses duplicate fields).
#[derive(Deserialize)]
struct Header {
    alg: Box<str>,
    #[serde(default)]
    kid: Option<Box<str>>,
    #[serde(default)]
    typ: Option<Box<str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default)]
    b64: Option<bool>,
}

/// `true` for a member that is present, whatever its value (even `null`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer)?;
    Ok(true)
}

/// Structural decode of a compact JWS (RFC 7515 §7.1): exactly three base64url segments without
/// padding, a header that is a JSON object with a string `alg`, a payload that is a JSON object.
///
/// Refuses a `crit` header ([`JwtError::UnsupportedCritical`]: no extension is implemented,
/// RFC 7515 §4.1.11) and `"b64": false` ([`JwtError::UnencodedPayload`]). Embedded key headers
/// (`jwk`, `jku`, `x5u`, `x5c`) are ignored. Neither the token's size (the caller caps it first)
/// nor claims times are checked here.
pub fn decode(token: &str) -> Result<DecodedToken, JwtError> {
    let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
    if payload.contains('.') {
        return Err(JwtError::Malformed);
    }
    let header = Base64UrlUnpadded::decode_vec(header).map_err(|_| JwtError::Malformed)?;
    // A struct also deserializes from a JSON array: insist on an object.
    if header.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(JwtError::Malformed);
    }
    let header: Header = serde_json::from_slice(&header).map_err(|_| JwtError::Malformed)?;
    if header.crit {
        return Err(JwtError::UnsupportedCritical);
    }
    if header.b64 == Some(false) {
        return Err(JwtError::UnencodedPayload);
    }
    let payload = Base64UrlUnpadded::decode_vec(payload).map_err(|_| JwtError::Malformed)?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
    let signature = Base64UrlUnpadded::decode_vec(signature).map_err(|_| JwtError::Malformed)?;
    Ok(DecodedToken {
        alg: header.alg,
        kid: header.kid,
        typ: header.typ,
        claims,
        signing_input: signing_input.into(),
        signature,
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a token was refused. The messages are short and safe to show a client.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not a compact JWS with a JSON-object header (with a string `alg`) and a JSON-object
    /// payload: wrong number of segments, invalid base64url (padding included), invalid JSON,
    /// a repeated header member.
    Malformed,
    /// The header has a `crit` member: this implementation understands no extension, so every
    /// critical one is unknown (RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// The header has `"b64": false` (RFC 7797 unencoded payload), which is not supported.
    UnencodedPayload,
    /// The header `alg` is not the one algorithm the key verifies (this includes `"none"`).
    AlgorithmMismatch,
    /// The signature does not verify with the key.
    InvalidSignature,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtError::Malformed => "malformed token",
            JwtError::UnsupportedCritical => "token has unsupported critical header parameters",
            JwtError::UnencodedPayload => "token payload encoding is not supported",
            JwtError::AlgorithmMismatch => "token algorithm is not accepted",
            JwtError::InvalidSignature => "invalid token signature",
        })
    }
}

impl std::error::Error for JwtError {}

/// Why a key could not be built. The messages are meant for a configuration error.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The JWKS document is not JSON, or not an object with a `"keys"` array.
    NotAJwks,
    /// The JWK is not a JSON object.
    NotAnObject,
    /// A required JWK member is missing.
    MissingParameter(&'static str),
    /// A JWK member has the wrong JSON type, is not base64url, or has the wrong length.
    InvalidParameter(&'static str),
    /// A JWK with `kty` `"oct"`: HMAC secrets come from a runtime secret, never from a JWK.
    SymmetricJwk,
    /// Private key material (a JWK with `"d"`, a PEM private key).
    PrivateKey,
    /// The JWK's `use` is not `"sig"`, or its `key_ops` lacks `"verify"`.
    NotForSignature,
    /// A key type this layer does not verify with (JWK `kty`, or an SPKI algorithm OID).
    UnsupportedKeyType(String),
    /// A curve this layer does not verify with (only P-256, P-384 and Ed25519 are).
    UnsupportedCurve(String),
    /// An `alg` name that is not a supported signature algorithm (including `"none"`).
    UnsupportedAlgorithm(String),
    /// The algorithm does not fit the key: an ES256 `alg` on a P-384 key, an RSA algorithm for
    /// an HMAC secret, …
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The kind of key it was asked of.
        key: &'static str,
    },
    /// An RSA modulus shorter than 2048 bits (RFC 7518 §3.3).
    WeakRsaKey {
        /// The modulus length.
        bits: usize,
    },
    /// An HMAC secret shorter than the hash output (RFC 7518 §3.2).
    HmacSecretTooShort {
        /// The HMAC algorithm.
        alg: Algorithm,
        /// The minimum length in bytes.
        min: usize,
        /// The secret's length in bytes.
        len: usize,
    },
    /// The key material itself is invalid (a point not on its curve, an RSA exponent out of
    /// range, a modulus over 8192 bits, DER that does not parse).
    InvalidKey(&'static str),
    /// The text is not one PEM block.
    InvalidPem(&'static str),
    /// A PEM block that is not `PUBLIC KEY` or `RSA PUBLIC KEY` (a `CERTIFICATE`, …).
    UnsupportedPemLabel(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotAJwks => f.write_str("not a JWKS document: expected a JSON object with a \"keys\" array"),
            KeyError::NotAnObject => f.write_str("a JWK must be a JSON object"),
            KeyError::MissingParameter(name) => write!(f, "JWK member \"{name}\" is missing"),
            KeyError::InvalidParameter(name) => write!(f, "JWK member \"{name}\" is invalid"),
            KeyError::SymmetricJwk => {
                f.write_str("JWK kty \"oct\" is not accepted: HMAC secrets come from a runtime secret")
            }
            KeyError::PrivateKey => f.write_str(
                "this is a private key: configure the public key only (a private key must not sit in config)",
            ),
            KeyError::NotForSignature => f.write_str(
                "JWK is not for signature verification (\"use\" is not \"sig\" or \"key_ops\" lacks \"verify\")",
            ),
            KeyError::UnsupportedKeyType(kty) => write!(f, "key type \"{kty}\" is not supported"),
            KeyError::UnsupportedCurve(crv) => {
                write!(f, "curve \"{crv}\" is not supported (P-256, P-384 and Ed25519 are)")
            }
            KeyError::UnsupportedAlgorithm(alg) => {
                write!(f, "algorithm \"{alg}\" is not a supported signature algorithm")
            }
            KeyError::AlgorithmMismatch { alg, key } => write!(f, "algorithm {alg} does not fit a {key} key"),
            KeyError::WeakRsaKey { bits } => {
                write!(f, "RSA key of {bits} bits is too short: at least {MIN_RSA_BITS} bits are required")
            }
            KeyError::HmacSecretTooShort { alg, min, len } => {
                write!(f, "{alg} secret of {len} bytes is too short: at least {min} bytes are required")
            }
            KeyError::InvalidKey(why) => write!(f, "invalid key: {why}"),
            KeyError::InvalidPem(why) => write!(f, "invalid PEM: {why}"),
            KeyError::UnsupportedPemLabel(label) => {
                write!(f, "PEM \"{label}\" is not supported: expected \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"")
            }
        }
    }
}

impl std::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7520 §3.3: the RSA public key of the JOSE cookbook.
    const RFC7520_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";
    /// RFC 7520 §4: the payload, "It’s a dangerous business, Frodo, going out your door. …".
    const RFC7520_PAYLOAD: &str = "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4";

    /// The vectors whose payload is not a JSON object, so `decode` refuses them as JWTs: the
    /// signature layer alone is checked, after the same `alg` comparison `verify` makes.
    fn verify_jws(token: &str, key: &VerifyingKey) -> Result<(), JwtError> {
        let (input, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header, _) = input.split_once('.').ok_or(JwtError::Malformed)?;
        let header: Header =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(header).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        let token = DecodedToken {
            alg: header.alg,
            kid: header.kid,
            typ: None,
            claims: Map::new(),
            signing_input: input.into(),
            signature: Base64UrlUnpadded::decode_vec(signature).map_err(|_| JwtError::Malformed)?,
        };
        token.verify(key)
    }

    #[test]
    fn non_json_payload_vectors() {
        let rfc7520_rsa = |alg| {
            VerifyingKey::from_jwk(
                &json!({"kty": "RSA", "kid": "bilbo.baggins@hobbiton.example", "use": "sig", "n": RFC7520_N, "e": "AQAB"}),
                alg,
            )
            .unwrap()
        };
        let cases = [
            (
                "RFC 7520 §4.1 RS256",
                format!("eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.{RFC7520_PAYLOAD}.MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg"),
                rfc7520_rsa(Algorithm::Rs256),
            ),
            (
                // PSS is randomized: verifying the published signature is the test.
                "RFC 7520 §4.2 PS384",
                format!("eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.{RFC7520_PAYLOAD}.cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw"),
                rfc7520_rsa(Algorithm::Ps384),
            ),
            (
                "RFC 7520 §4.4 HS256",
                format!("eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9.{RFC7520_PAYLOAD}.s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0"),
                VerifyingKey::hmac(
                    &Base64UrlUnpadded::decode_vec("hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg").unwrap(),
                    Algorithm::Hs256,
                    Some("018c0ae5-4d9b-471b-bfd6-eef314bc7037"),
                )
                .unwrap(),
            ),
            (
                "RFC 8037 A.4 EdDSA",
                "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg".to_owned(),
                VerifyingKey::from_jwk(
                    &json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
                    Algorithm::Rs256,
                )
                .unwrap(),
            ),
        ];
        for (name, token, key) in &cases {
            assert_eq!(verify_jws(token, key), Ok(()), "{name}");
            // And the payload is indeed not a JWT claims set.
            assert_eq!(decode(token).map(drop), Err(JwtError::Malformed), "{name}");
            // One changed payload character breaks each of them.
            let tampered = token.replacen("SXTi", "SXTj", 1).replacen("RXhh", "RXhi", 1);
            assert_eq!(verify_jws(&tampered, key), Err(JwtError::InvalidSignature), "{name}");
        }
        // The PS384 signature is not an RS384 or PS256 one: the key decides the algorithm.
        let (_, ps384, _) = &cases[1];
        assert_eq!(verify_jws(ps384, &rfc7520_rsa(Algorithm::Ps256)), Err(JwtError::AlgorithmMismatch));
        let rs384_named = ps384.replacen(
            "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9",
            &Base64UrlUnpadded::encode_string(br#"{"alg":"RS384","kid":"bilbo.baggins@hobbiton.example"}"#),
            1,
        );
        assert_eq!(verify_jws(&rs384_named, &rfc7520_rsa(Algorithm::Rs384)), Err(JwtError::InvalidSignature));
    }

    #[test]
    fn es384_signs_and_verifies_through_the_jwt_compact_trait() {
        let signing = p384::ecdsa::SigningKey::from_slice(&[5; 48]).unwrap();
        let verifying = *signing.verifying_key();
        let signature = Es384.sign(&signing, b"message");
        assert_eq!(signature.as_bytes().len(), 96);
        assert!(verify_with(&Es384, &verifying, b"message", &signature.as_bytes()));
        assert!(!verify_with(&Es384, &verifying, b"massage", &signature.as_bytes()));
        assert!(!verify_with(&Es384, &verifying, b"message", &signature.as_bytes()[..95]));
        assert!(!verify_with(&Es384, &verifying, b"message", &[0; 96]));
        assert_eq!(Es384.name(), "ES384");
    }

    #[test]
    fn pem_parsing() {
        assert_eq!(parse_pem("-----BEGIN X-----\nAQID\n-----END X-----").unwrap(), ("X", vec![1, 2, 3]));
        assert_eq!(parse_pem("-----BEGIN X-----\r\nAQ\r\nID\r\n-----END X-----\r\n").unwrap(), ("X", vec![1, 2, 3]));
        assert!(parse_pem("-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nAQID\n-----END X-----").is_err());
        assert!(parse_pem("-----BEGIN X-----\nAQID\n-----END Y-----").is_err());
    }
}
