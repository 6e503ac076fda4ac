//! The JWT signature layer against published vectors, the classic attacks, and key parsing.
//!
//! Vectors that sign a non-JSON payload (RFC 7520 §4, RFC 8037 A.4) cannot go through
//! `decode` (a JWT payload must be a JSON object); they are checked by the unit tests in
//! `src/auth/jwt.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use base64ct::{Base64UrlUnpadded, Encoding};
use gateway_core::auth::jwt::{decode, parse_jwks, Algorithm, DecodedToken, JwtError, KeyError, VerifyingKey};
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use serde_json::{json, Value};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    Base64UrlUnpadded::encode_string(bytes.as_ref())
}

fn unb64(text: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Published keys and tokens

/// RFC 7515 appendix A.1: the HMAC key (64 bytes) and token.
const A1_KEY: &str = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// RFC 7515 appendix A.2: the RSA key (public and private parts) and RS256 token.
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const A2_D: &str = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const A2_P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const A2_Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
const A2_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
/// The same public key as PEM (SPKI and PKCS#1), written by python `cryptography` 48 from A2_N.
const A2_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj
NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz
P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo
9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB
EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX
FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp
oQIDAQAB
-----END PUBLIC KEY-----
";
const A2_PKCS1_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd/wWJcyQoTbji9k0l8W2
6mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMs
D1W/YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5
z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxv
b3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxXFvUK+DWNmoudF8NAco9/h9iaGNj8q2et
hFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQIDAQAB
-----END RSA PUBLIC KEY-----
";

/// RFC 7515 appendix A.3: the P-256 key and ES256 token.
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const A3_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
const A3_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// The same public key as SPKI PEM, written by python `cryptography` 48.
const A3_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7
6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
-----END PUBLIC KEY-----
";

/// RFC 8037 appendix A.1/A.2: the Ed25519 key (its A.4 vector signs a non-JSON payload: unit tests).
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
/// The same public key as SPKI PEM, written by python `cryptography` 48.
const RFC8037_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
-----END PUBLIC KEY-----
";

/// ES384: no RFC has a compact ES384 JWT, so this key pair and token were generated once with
/// python `cryptography` 48 (`ec.generate_private_key(ec.SECP384R1())`, `sign(..., ECDSA(SHA384))`,
/// DER signature converted to r || s with `decode_dss_signature`) and committed as literals.
const ES384_X: &str = "d_9v4ZXPksVmJhTsq__sQmGDLi3bmExc6qJ49V-mcgiPZ4f7jpyqQaLGlDEk34Tb";
const ES384_Y: &str = "jsIzWsu5pBZUaICcG9EFn8R0utcKpJBu9hksUedU5MRRw8mm6-wlkUFz1opbx_yT";
const ES384_D: &str = "R5uPJ02TyZYe067xiEQByG9RClDikUT-frk39rCHKa8w0ujHhXCQTYoB9ASQzRbA";
const ES384_TOKEN: &str = "eyJhbGciOiJFUzM4NCIsImtpZCI6ImVzMzg0LXRlc3QiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoidXNlci0zODQiLCJhdWQiOiJlZGdlZ2F0ZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.cal4Pwx62o9tvToJ8vC0TUO9FjUhtKEgp_ciKN5ubv9q9U3Bee-mPOpf3-Hu5JNQnsCDFv4h6MewtvarwGzynjPLB5s-LgUm3negAuU8pBD23J87NzpQAIXuL70Q8anH";
const ES384_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEd/9v4ZXPksVmJhTsq//sQmGDLi3bmExc
6qJ49V+mcgiPZ4f7jpyqQaLGlDEk34TbjsIzWsu5pBZUaICcG9EFn8R0utcKpJBu
9hksUedU5MRRw8mm6+wlkUFz1opbx/yT
-----END PUBLIC KEY-----
";

/// A P-521 public key (unsupported curve), python `cryptography` 48.
const P521_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBiU7gG/QdnksP0/70+OasgvQl0oCl
jEJFK739c0VuM7B1ZF/YPpXxmJ6+8jJDD/TLnRd32qIEqFnuYIk6lk+FlBoBtAZ+
7iHP703uj0I03jfeUKjP/VZ0RgrwVyN9DfC/nHUuuPkExphDHqR6b8nYkleQ+ydL
YqGQPi+RY/bGiq8KN6s=
-----END PUBLIC KEY-----
";

/// A 1024-bit RSA public key (too weak), python `cryptography` 48.
const RSA1024_N: &str = "sroa7blJoCDzkzdnRWQa80IM34BbmTqSrBMT5MYTckyFcDFXIBGWU30R9mH6ojaQoa67LM7y8Z4CIMegGw43kso1EYEMRVNSta41-UAE6flC7vymE4LTQJQ_H4tXX6kxHPncPi0r-Wr3VzahgzuwrR6C5XJcvAQwYmSBrbX_xq0";

/// RFC 7520 §3.3: a second 2048-bit RSA key, used here as "the wrong key".
const RFC7520_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

fn a2_jwk() -> Value {
    json!({"kty": "RSA", "n": A2_N, "e": "AQAB"})
}

fn a3_jwk() -> Value {
    json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y})
}

fn es384_jwk() -> Value {
    json!({"kty": "EC", "crv": "P-384", "x": ES384_X, "y": ES384_Y})
}

fn ed25519_jwk() -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
}

fn rsa_private_key() -> rsa::RsaPrivateKey {
    let int = |text: &str| rsa::BigUint::from_bytes_be(&unb64(text));
    rsa::RsaPrivateKey::from_components(int(A2_N), int("AQAB"), int(A2_D), vec![int(A2_P), int(A2_Q)]).unwrap()
}

fn jwk_key(jwk: Value, alg: Algorithm) -> VerifyingKey {
    let mut jwk = jwk;
    jwk["alg"] = json!(alg.name());
    VerifyingKey::from_jwk(&jwk, Algorithm::Rs256).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Published vectors

#[test]
fn published_vectors_verify() {
    let a1_secret = unb64(A1_KEY);
    assert_eq!(a1_secret.len(), 64);
    let cases: Vec<(&str, &str, VerifyingKey)> = vec![
        ("RFC 7515 A.1 HS256", A1_TOKEN, VerifyingKey::hmac(&a1_secret, Algorithm::Hs256, None).unwrap()),
        (
            "RFC 7515 A.2 RS256 (JWK, alg from default)",
            A2_TOKEN,
            VerifyingKey::from_jwk(&a2_jwk(), Algorithm::Rs256).unwrap(),
        ),
        (
            "RFC 7515 A.2 RS256 (SPKI PEM)",
            A2_TOKEN,
            VerifyingKey::from_pem(A2_SPKI_PEM, Algorithm::Rs256, None).unwrap(),
        ),
        (
            "RFC 7515 A.2 RS256 (PKCS#1 PEM)",
            A2_TOKEN,
            VerifyingKey::from_pem(A2_PKCS1_PEM, Algorithm::Rs256, None).unwrap(),
        ),
        ("RFC 7515 A.3 ES256 (JWK)", A3_TOKEN, VerifyingKey::from_jwk(&a3_jwk(), Algorithm::Rs256).unwrap()),
        ("RFC 7515 A.3 ES256 (PEM)", A3_TOKEN, VerifyingKey::from_pem(A3_SPKI_PEM, Algorithm::Es256, None).unwrap()),
        ("python ES384 (JWK)", ES384_TOKEN, VerifyingKey::from_jwk(&es384_jwk(), Algorithm::Rs256).unwrap()),
        ("python ES384 (PEM)", ES384_TOKEN, VerifyingKey::from_pem(ES384_SPKI_PEM, Algorithm::Es384, None).unwrap()),
    ];
    for (name, token, key) in cases {
        let decoded = decode(token).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.alg(), key.algorithm().name(), "{name}");
        assert_eq!(decoded.verify(&key), Ok(()), "{name}");
    }

    let a1 = decode(A1_TOKEN).unwrap();
    assert_eq!(a1.typ(), Some("JWT"));
    assert_eq!(a1.claims()["iss"], "joe");
    assert_eq!(a1.claims()["exp"], 1_300_819_380);
    assert_eq!(a1.claims()["http://example.com/is_root"], true);
    let es384 = decode(ES384_TOKEN).unwrap();
    assert_eq!(es384.kid(), Some("es384-test"));
    assert_eq!(es384.claims()["sub"], "user-384");
}

#[test]
fn ed25519_pem_and_jwk_are_the_same_key() {
    let from_jwk = VerifyingKey::from_jwk(&ed25519_jwk(), Algorithm::Rs256).unwrap();
    let from_pem = VerifyingKey::from_pem(RFC8037_SPKI_PEM, Algorithm::EdDsa, Some("ed")).unwrap();
    assert_eq!(from_jwk.algorithm(), Algorithm::EdDsa);
    assert_eq!(from_pem.kid(), Some("ed"));
    let fixtures = fixtures();
    let token = (fixtures.iter().find(|f| f.alg == Algorithm::EdDsa).unwrap().sign)(r#"{"alg":"EdDSA"}"#, CLAIMS);
    let decoded = decode(&token).unwrap();
    assert_eq!(decoded.verify(&from_jwk), Ok(()));
    assert_eq!(decoded.verify(&from_pem), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Every algorithm: sign with the crates, decode + verify with ours

const CLAIMS: &str =
    r#"{"iss":"https://issuer.example","sub":"alice","aud":"edgegate","exp":1900000000,"scope":"read write"}"#;

type Signer = Box<dyn Fn(&str, &str) -> String>;

/// Per algorithm: a signer (header JSON, claims JSON → token), the matching key, another key
/// of the same algorithm.
struct Fixture {
    alg: Algorithm,
    sign: Signer,
    key: VerifyingKey,
    other: VerifyingKey,
}

fn compact<S: AsRef<[u8]>>(header: &str, claims: &str, sign: impl Fn(&[u8]) -> S) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();

    let hmac = |alg: Algorithm, secret: &'static [u8], other: &'static [u8], sign: Signer| Fixture {
        alg,
        sign,
        key: VerifyingKey::hmac(secret, alg, Some("hmac")).unwrap(),
        other: VerifyingKey::hmac(other, alg, None).unwrap(),
    };
    const S64: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const O64: &[u8] = b"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    out.push(hmac(
        Algorithm::Hs256,
        &S64[..32],
        &O64[..32],
        Box::new(|h, c| compact(h, c, |m| Hs256.sign(&Hs256Key::new(&S64[..32]), m).as_bytes().into_owned())),
    ));
    out.push(hmac(
        Algorithm::Hs384,
        &S64[..48],
        &O64[..48],
        Box::new(|h, c| compact(h, c, |m| Hs384.sign(&Hs384Key::new(&S64[..48]), m).as_bytes().into_owned())),
    ));
    out.push(hmac(
        Algorithm::Hs512,
        S64,
        O64,
        Box::new(|h, c| compact(h, c, |m| Hs512.sign(&Hs512Key::new(S64), m).as_bytes().into_owned())),
    ));

    let private = std::rc::Rc::new(rsa_private_key());
    for alg in
        [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512, Algorithm::Ps256, Algorithm::Ps384, Algorithm::Ps512]
    {
        let rsa: Rsa = alg.name().parse().unwrap();
        let private = private.clone();
        out.push(Fixture {
            alg,
            sign: Box::new(move |h, c| compact(h, c, |m| rsa.sign(&private, m).as_bytes().into_owned())),
            key: jwk_key(a2_jwk(), alg),
            other: jwk_key(json!({"kty": "RSA", "n": RFC7520_N, "e": "AQAB"}), alg),
        });
    }

    let p256 = p256::ecdsa::SigningKey::from_slice(&unb64(A3_D)).unwrap();
    let p256_other = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    out.push(Fixture {
        alg: Algorithm::Es256,
        sign: Box::new(move |h, c| compact(h, c, |m| Es256.sign(&p256, m).as_bytes().into_owned())),
        key: VerifyingKey::from_jwk(&a3_jwk(), Algorithm::Rs256).unwrap(),
        other: ec_jwk_key(p256_other.verifying_key().to_encoded_point(false).as_bytes(), "P-256"),
    });

    let p384 = p384::ecdsa::SigningKey::from_slice(&unb64(ES384_D)).unwrap();
    let p384_other = p384::ecdsa::SigningKey::from_slice(&[7; 48]).unwrap();
    out.push(Fixture {
        alg: Algorithm::Es384,
        sign: Box::new(move |h, c| {
            compact(h, c, |m| {
                use p384::ecdsa::signature::Signer as _;
                let signature: p384::ecdsa::Signature = p384.sign(m);
                signature.to_bytes()
            })
        }),
        key: VerifyingKey::from_jwk(&es384_jwk(), Algorithm::Rs256).unwrap(),
        other: ec_jwk_key(p384_other.verifying_key().to_encoded_point(false).as_bytes(), "P-384"),
    });

    let ed = ed25519_dalek::SigningKey::from_bytes(&<[u8; 32]>::try_from(unb64(RFC8037_D)).unwrap());
    let ed_other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    out.push(Fixture {
        alg: Algorithm::EdDsa,
        sign: Box::new(move |h, c| compact(h, c, |m| Ed25519.sign(&ed, m).as_bytes().into_owned())),
        key: VerifyingKey::from_jwk(&ed25519_jwk(), Algorithm::Rs256).unwrap(),
        other: VerifyingKey::from_jwk(
            &json!({"kty": "OKP", "crv": "Ed25519", "x": b64(ed_other.verifying_key().as_bytes())}),
            Algorithm::Rs256,
        )
        .unwrap(),
    });

    assert_eq!(out.iter().map(|f| f.alg).collect::<Vec<_>>(), Algorithm::ALL);
    out
}

/// An EC JWK from a SEC1 uncompressed point.
fn ec_jwk_key(point: &[u8], crv: &str) -> VerifyingKey {
    let size = (point.len() - 1) / 2;
    let jwk = json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=size]), "y": b64(&point[1 + size..])});
    VerifyingKey::from_jwk(&jwk, Algorithm::Rs256).unwrap()
}

fn header(alg: &str) -> String {
    json!({"alg": alg, "typ": "JWT"}).to_string()
}

#[test]
fn every_algorithm_round_trips_and_refuses_tampering() {
    let fixtures = fixtures();
    for f in &fixtures {
        let name = f.alg.name();
        let token = (f.sign)(&header(name), CLAIMS);
        let decoded = decode(&token).unwrap();
        assert_eq!(decoded.verify(&f.key), Ok(()), "{name}");
        assert_eq!(decoded.claims()["sub"], "alice");

        // Wrong key of the same algorithm.
        assert_eq!(decoded.verify(&f.other), Err(JwtError::InvalidSignature), "{name}: other key");

        // Every key of another algorithm: the algorithm check comes first.
        for g in fixtures.iter().filter(|g| g.alg != f.alg) {
            assert_eq!(decoded.verify(&g.key), Err(JwtError::AlgorithmMismatch), "{name} with a {} key", g.alg);
        }

        let (head, rest) = token.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();

        // Tampered payload: same header and signature, another claims set.
        let forged = format!("{head}.{}.{signature}", b64(CLAIMS.replace("alice", "admin")));
        assert_eq!(decode(&forged).unwrap().verify(&f.key), Err(JwtError::InvalidSignature), "{name}: payload");

        // Tampered header: an added member, same alg.
        let forged = format!("{}.{payload}.{signature}", b64(json!({"alg": name, "kid": "x"}).to_string()));
        assert_eq!(decode(&forged).unwrap().verify(&f.key), Err(JwtError::InvalidSignature), "{name}: header");

        // Tampered signature: one bit flipped, and cut short.
        let mut bytes = unb64(signature);
        bytes[0] ^= 1;
        let forged = format!("{head}.{payload}.{}", b64(&bytes));
        assert_eq!(decode(&forged).unwrap().verify(&f.key), Err(JwtError::InvalidSignature), "{name}: signature");
        let forged = format!("{head}.{payload}.{}", b64(&bytes[..bytes.len() - 1]));
        assert_eq!(decode(&forged).unwrap().verify(&f.key), Err(JwtError::InvalidSignature), "{name}: short");
        let forged = format!("{head}.{payload}.");
        assert_eq!(decode(&forged).unwrap().verify(&f.key), Err(JwtError::InvalidSignature), "{name}: empty");
    }
}

// ---------------------------------------------------------------------------------------------
// Attacks

fn all_keys() -> Vec<VerifyingKey> {
    fixtures().into_iter().flat_map(|f| [f.key, f.other]).collect()
}

#[test]
fn alg_none_never_verifies() {
    let keys = all_keys();
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        assert_eq!(Algorithm::from_name(alg), None);
        for signature in ["", "AAAA"] {
            let token = format!("{}.{}.{signature}", b64(header(alg)), b64(CLAIMS));
            let decoded = decode(&token).unwrap();
            assert_eq!(decoded.alg(), alg);
            for key in &keys {
                assert_eq!(decoded.verify(key), Err(JwtError::AlgorithmMismatch), "{alg} with {key:?}");
            }
        }
    }
}

#[test]
fn algorithm_names_are_exact() {
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        assert_eq!(Algorithm::from_name(&alg.name().to_lowercase()), None);
        assert_eq!(alg.is_hmac(), alg.name().starts_with("HS"));
        assert_eq!(alg.to_string(), alg.name());
    }
    for name in ["ES512", "ES256K", "Ed25519", "HS1", "RSA-OAEP", "eddsa", " HS256"] {
        assert_eq!(Algorithm::from_name(name), None, "{name}");
    }
}

/// A token whose header alg is a lowercased or otherwise respelled name never verifies.
#[test]
fn respelled_alg_never_verifies() {
    for f in fixtures() {
        let respelled = f.alg.name().to_lowercase();
        let token = (f.sign)(&header(&respelled), CLAIMS);
        assert_eq!(decode(&token).unwrap().verify(&f.key), Err(JwtError::AlgorithmMismatch));
    }
}

/// The RS256 → HS256 confusion: an attacker signs an HS256 token using the RSA public key's
/// bytes (PEM text, DER, the raw modulus) as the HMAC secret. The forged token is a valid
/// HS256 token for that secret, and must never verify against the RSA key.
#[test]
fn hmac_with_public_key_bytes_never_verifies_against_the_public_key() {
    let body: String = A2_SPKI_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64ct::Base64::decode_vec(&body).unwrap();
    let secrets: Vec<Vec<u8>> = vec![
        A2_SPKI_PEM.as_bytes().to_vec(),
        A2_SPKI_PEM.trim_end().as_bytes().to_vec(),
        A2_PKCS1_PEM.as_bytes().to_vec(),
        der,
        unb64(A2_N),
        serde_json::to_vec(&a2_jwk()).unwrap(),
    ];
    let rsa_keys: Vec<VerifyingKey> = [Algorithm::Rs256, Algorithm::Ps256]
        .into_iter()
        .flat_map(|alg| {
            [
                VerifyingKey::from_pem(A2_SPKI_PEM, alg, None).unwrap(),
                VerifyingKey::from_pem(A2_PKCS1_PEM, alg, None).unwrap(),
                jwk_key(a2_jwk(), alg),
            ]
        })
        .collect();
    for secret in &secrets {
        let token =
            compact(&header("HS256"), CLAIMS, |m| Hs256.sign(&Hs256Key::new(secret), m).as_bytes().into_owned());
        let decoded = decode(&token).unwrap();
        // The forgery is sound as an HS256 token…
        assert_eq!(decoded.verify(&VerifyingKey::hmac(secret, Algorithm::Hs256, None).unwrap()), Ok(()));
        // …and is never accepted by the RSA key, whatever its form.
        for key in &rsa_keys {
            assert_eq!(decoded.verify(key), Err(JwtError::AlgorithmMismatch));
        }
    }
}

#[test]
fn critical_headers_are_refused() {
    for crit in [json!(["exp"]), json!([]), json!(null), json!("b64")] {
        let header = json!({"alg": "HS256", "crit": crit, "exp": 1}).to_string();
        let token = format!("{}.{}.{}", b64(header), b64(CLAIMS), b64([0; 32]));
        assert_eq!(decode(&token).unwrap_err(), JwtError::UnsupportedCritical, "{crit}");
    }
    // b64: false, with or without crit.
    let token = format!("{}.{}.", b64(r#"{"alg":"HS256","b64":false}"#), b64(CLAIMS));
    assert_eq!(decode(&token).unwrap_err(), JwtError::UnencodedPayload);
    let token = format!("{}.{}.", b64(r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#), b64(CLAIMS));
    assert!(matches!(decode(&token).unwrap_err(), JwtError::UnsupportedCritical | JwtError::UnencodedPayload));
    let token = format!("{}.{}.", b64(r#"{"alg":"HS256","b64":true}"#), b64(CLAIMS));
    assert!(decode(&token).is_ok());
}

/// Keys embedded in the header are never used: a token signed by the attacker's own key, which
/// it ships in `jwk` (or points to with `jku` / `x5u` / `x5c`), decodes but does not verify.
#[test]
fn embedded_key_headers_are_ignored() {
    let fixtures = fixtures();
    let ed = fixtures.iter().find(|f| f.alg == Algorithm::EdDsa).unwrap();
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let embedded = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(attacker.verifying_key().as_bytes())});
    for (name, value) in [
        ("jwk", embedded.clone()),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIBIjANBgkq"])),
    ] {
        let mut header = json!({"alg": "EdDSA"});
        header[name] = value;
        let token = compact(&header.to_string(), CLAIMS, |m| Ed25519.sign(&attacker, m).as_bytes().into_owned());
        let decoded = decode(&token).unwrap();
        assert_eq!(decoded.verify(&ed.key), Err(JwtError::InvalidSignature), "{name}");
        assert_eq!(decoded.verify(&VerifyingKey::from_jwk(&embedded, Algorithm::Rs256).unwrap()), Ok(()));
    }
}

#[test]
fn der_encoded_ecdsa_signatures_are_refused() {
    let key = VerifyingKey::from_jwk(&a3_jwk(), Algorithm::Rs256).unwrap();
    let (input, signature) = A3_TOKEN.rsplit_once('.').unwrap();
    let raw = p256::ecdsa::Signature::from_slice(&unb64(signature)).unwrap();
    let der = raw.to_der();
    assert!(der.as_bytes().len() > 64);
    let token = format!("{input}.{}", b64(der.as_bytes()));
    assert_eq!(decode(&token).unwrap().verify(&key), Err(JwtError::InvalidSignature));

    // Same for ES384.
    let key = VerifyingKey::from_jwk(&es384_jwk(), Algorithm::Rs256).unwrap();
    let (input, signature) = ES384_TOKEN.rsplit_once('.').unwrap();
    let der = p384::ecdsa::Signature::from_slice(&unb64(signature)).unwrap().to_der();
    let token = format!("{input}.{}", b64(der.as_bytes()));
    assert_eq!(decode(&token).unwrap().verify(&key), Err(JwtError::InvalidSignature));
}

#[test]
fn malformed_tokens() {
    let h = b64(header("HS256"));
    let p = b64(CLAIMS);
    let s = b64([1u8; 32]);
    let padded = base64ct::Base64Url::encode_string(br#"{"alg":"HS256" }"#);
    assert!(padded.ends_with('='));
    let standard = base64ct::Base64Unpadded::encode_string(br#"{"alg":"HS256","x":"??>"}"#);
    assert!(standard.contains('/') || standard.contains('+'), "{standard}");
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("one segment", h.clone()),
        ("two segments", format!("{h}.{p}")),
        ("four segments", format!("{h}.{p}.{s}.{s}")),
        ("five segments (JWE)", format!("{h}.{p}.{s}.{s}.{s}")),
        ("empty header", format!(".{p}.{s}")),
        ("empty payload", format!("{h}..{s}")),
        ("padded header", format!("{padded}.{p}.{s}")),
        ("padded signature", format!("{h}.{p}.{}", base64ct::Base64Url::encode_string(&[1u8; 32]))),
        ("padding char", format!("{h}=.{p}.{s}")),
        ("standard alphabet", format!("{standard}.{p}.{s}")),
        ("bad base64 char", format!("{h}.{p}!.{s}")),
        ("whitespace", format!("{h}. {p}.{s}")),
        ("header not JSON", format!("{}.{p}.{s}", b64("not json"))),
        ("header an array", format!("{}.{p}.{s}", b64(r#"["HS256"]"#))),
        ("header a string", format!("{}.{p}.{s}", b64(r#""HS256""#))),
        ("header without alg", format!("{}.{p}.{s}", b64(r#"{"typ":"JWT"}"#))),
        ("alg not a string", format!("{}.{p}.{s}", b64(r#"{"alg":256}"#))),
        ("alg null", format!("{}.{p}.{s}", b64(r#"{"alg":null}"#))),
        ("alg twice", format!("{}.{p}.{s}", b64(r#"{"alg":"HS256","alg":"none"}"#))),
        ("kid a number", format!("{}.{p}.{s}", b64(r#"{"alg":"HS256","kid":7}"#))),
        ("header trailing data", format!("{}.{p}.{s}", b64(r#"{"alg":"HS256"}x"#))),
        ("payload an array", format!("{h}.{}.{s}", b64("[1,2]"))),
        ("payload a string", format!("{h}.{}.{s}", b64(r#""sub""#))),
        ("payload not JSON", format!("{h}.{}.{s}", b64("Example of Ed25519 signing"))),
        ("payload not UTF-8", format!("{h}.{}.{s}", b64([0xff, 0xfe]))),
    ];
    for (name, token) in cases {
        assert_eq!(decode(&token).map(drop), Err(JwtError::Malformed), "{name}: {token}");
    }
    // The same segments, well-formed, do decode.
    assert!(decode(&format!("{h}.{p}.{s}")).is_ok());
    assert!(decode(&format!("{h}.{p}.")).is_ok());
}

#[test]
fn errors_have_short_client_safe_messages() {
    for error in [
        JwtError::Malformed,
        JwtError::UnsupportedCritical,
        JwtError::UnencodedPayload,
        JwtError::AlgorithmMismatch,
        JwtError::InvalidSignature,
    ] {
        let message = error.to_string();
        assert!(!message.is_empty() && message.len() < 60, "{message}");
    }
}

#[test]
fn debug_never_shows_key_material_or_the_token() {
    let secret = b"a-very-secret-hmac-key-of-32-byt";
    let key = VerifyingKey::hmac(secret, Algorithm::Hs256, Some("k1")).unwrap();
    let text = format!("{key:?}");
    assert!(text.contains("HS256") && text.contains("k1"), "{text}");
    assert!(!text.contains("very") && !text.contains("97"), "{text}");

    let rsa = VerifyingKey::from_jwk(&a2_jwk(), Algorithm::Rs256).unwrap();
    let text = format!("{rsa:?}");
    assert!(text.contains("RSA 2048-bit"), "{text}");

    let decoded: DecodedToken = decode(A2_TOKEN).unwrap();
    let text = format!("{decoded:?}");
    assert!(!text.contains("joe") && !text.contains("cC4hiUPo") && !text.contains("eyJ"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Keys

#[test]
fn jwk_algorithm_inference() {
    let cases: Vec<(Value, Algorithm, Algorithm)> = vec![
        (a3_jwk(), Algorithm::Rs256, Algorithm::Es256),
        (es384_jwk(), Algorithm::Rs256, Algorithm::Es384),
        (ed25519_jwk(), Algorithm::Rs256, Algorithm::EdDsa),
        (a2_jwk(), Algorithm::Rs256, Algorithm::Rs256),
        (a2_jwk(), Algorithm::Ps384, Algorithm::Ps384),
        (json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "alg": "PS512"}), Algorithm::Rs256, Algorithm::Ps512),
        (
            json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y, "alg": "ES256"}),
            Algorithm::Rs256,
            Algorithm::Es256,
        ),
        (json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "alg": "EdDSA"}), Algorithm::Rs256, Algorithm::EdDsa),
    ];
    for (jwk, default_rsa, expected) in cases {
        let key = VerifyingKey::from_jwk(&jwk, default_rsa).unwrap_or_else(|e| panic!("{jwk}: {e}"));
        assert_eq!(key.algorithm(), expected, "{jwk}");
        assert_eq!(key.kid(), None);
    }
    let with_kid =
        json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y, "kid": "k-1", "use": "sig", "key_ops": ["verify"]});
    assert_eq!(VerifyingKey::from_jwk(&with_kid, Algorithm::Rs256).unwrap().kid(), Some("k-1"));
}

#[test]
fn jwk_refusals() {
    let mismatch = |alg, key| KeyError::AlgorithmMismatch { alg, key };
    let cases: Vec<(&str, Value, Algorithm, KeyError)> = vec![
        (
            "ES256 on P-384",
            json!({"kty": "EC", "crv": "P-384", "x": ES384_X, "y": ES384_Y, "alg": "ES256"}),
            Algorithm::Rs256,
            mismatch(Algorithm::Es256, "EC P-384"),
        ),
        (
            "ES384 on P-256",
            json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y, "alg": "ES384"}),
            Algorithm::Rs256,
            mismatch(Algorithm::Es384, "EC P-256"),
        ),
        (
            "RS256 on EC",
            json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y, "alg": "RS256"}),
            Algorithm::Rs256,
            mismatch(Algorithm::Rs256, "EC P-256"),
        ),
        (
            "HS256 on RSA",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "alg": "HS256"}),
            Algorithm::Rs256,
            mismatch(Algorithm::Hs256, "RSA"),
        ),
        (
            "ES256 on RSA",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "alg": "ES256"}),
            Algorithm::Rs256,
            mismatch(Algorithm::Es256, "RSA"),
        ),
        (
            "EdDSA on RSA",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "alg": "EdDSA"}),
            Algorithm::Rs256,
            mismatch(Algorithm::EdDsa, "RSA"),
        ),
        (
            "RS256 on Ed25519",
            json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "alg": "RS256"}),
            Algorithm::Rs256,
            mismatch(Algorithm::Rs256, "OKP Ed25519"),
        ),
        ("default_rsa not RSA", a2_jwk(), Algorithm::Es256, mismatch(Algorithm::Es256, "RSA")),
        ("oct", json!({"kty": "oct", "k": A1_KEY, "alg": "HS256"}), Algorithm::Rs256, KeyError::SymmetricJwk),
        (
            "oct, private-looking",
            json!({"kty": "oct", "k": A1_KEY, "d": "x"}),
            Algorithm::Rs256,
            KeyError::SymmetricJwk,
        ),
        (
            "private EC",
            json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y, "d": A3_D}),
            Algorithm::Rs256,
            KeyError::PrivateKey,
        ),
        (
            "private RSA",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "d": A2_D, "p": A2_P, "q": A2_Q}),
            Algorithm::Rs256,
            KeyError::PrivateKey,
        ),
        (
            "private OKP",
            json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D}),
            Algorithm::Rs256,
            KeyError::PrivateKey,
        ),
        (
            "use enc",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "use": "enc"}),
            Algorithm::Rs256,
            KeyError::NotForSignature,
        ),
        (
            "use not a string",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "use": ["sig"]}),
            Algorithm::Rs256,
            KeyError::NotForSignature,
        ),
        (
            "key_ops without verify",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "key_ops": ["encrypt", "sign"]}),
            Algorithm::Rs256,
            KeyError::NotForSignature,
        ),
        (
            "key_ops not an array",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "key_ops": "verify"}),
            Algorithm::Rs256,
            KeyError::InvalidParameter("key_ops"),
        ),
        (
            "RSA 1024",
            json!({"kty": "RSA", "n": RSA1024_N, "e": "AQAB"}),
            Algorithm::Rs256,
            KeyError::WeakRsaKey { bits: 1024 },
        ),
        (
            "RSA exponent 1",
            json!({"kty": "RSA", "n": A2_N, "e": "AQ"}),
            Algorithm::Rs256,
            KeyError::InvalidKey("RSA modulus or exponent rejected"),
        ),
        (
            "alg none",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "alg": "none"}),
            Algorithm::Rs256,
            KeyError::UnsupportedAlgorithm("none".into()),
        ),
        (
            "alg RSA-OAEP",
            json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "alg": "RSA-OAEP"}),
            Algorithm::Rs256,
            KeyError::UnsupportedAlgorithm("RSA-OAEP".into()),
        ),
        (
            "alg lowercase",
            json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y, "alg": "es256"}),
            Algorithm::Rs256,
            KeyError::UnsupportedAlgorithm("es256".into()),
        ),
        ("kty unknown", json!({"kty": "DSA"}), Algorithm::Rs256, KeyError::UnsupportedKeyType("DSA".into())),
        ("kty missing", json!({"n": A2_N, "e": "AQAB"}), Algorithm::Rs256, KeyError::MissingParameter("kty")),
        ("kty not a string", json!({"kty": 1}), Algorithm::Rs256, KeyError::InvalidParameter("kty")),
        (
            "P-521",
            json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
            Algorithm::Rs256,
            KeyError::UnsupportedCurve("P-521".into()),
        ),
        (
            "secp256k1",
            json!({"kty": "EC", "crv": "secp256k1", "x": A3_X, "y": A3_Y}),
            Algorithm::Rs256,
            KeyError::UnsupportedCurve("secp256k1".into()),
        ),
        (
            "X25519",
            json!({"kty": "OKP", "crv": "X25519", "x": RFC8037_X}),
            Algorithm::Rs256,
            KeyError::UnsupportedCurve("X25519".into()),
        ),
        (
            "Ed448",
            json!({"kty": "OKP", "crv": "Ed448", "x": RFC8037_X}),
            Algorithm::Rs256,
            KeyError::UnsupportedCurve("Ed448".into()),
        ),
        (
            "EC crv missing",
            json!({"kty": "EC", "x": A3_X, "y": A3_Y}),
            Algorithm::Rs256,
            KeyError::MissingParameter("crv"),
        ),
        (
            "EC y missing",
            json!({"kty": "EC", "crv": "P-256", "x": A3_X}),
            Algorithm::Rs256,
            KeyError::MissingParameter("y"),
        ),
        (
            "EC x short",
            json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": A3_Y}),
            Algorithm::Rs256,
            KeyError::InvalidParameter("x"),
        ),
        (
            "EC x padded",
            json!({"kty": "EC", "crv": "P-256", "x": format!("{A3_X}="), "y": A3_Y}),
            Algorithm::Rs256,
            KeyError::InvalidParameter("x"),
        ),
        (
            "EC not on curve",
            json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_X}),
            Algorithm::Rs256,
            KeyError::InvalidKey("not a point on P-256"),
        ),
        (
            "P-384 coordinates on P-256",
            json!({"kty": "EC", "crv": "P-256", "x": ES384_X, "y": ES384_Y}),
            Algorithm::Rs256,
            KeyError::InvalidParameter("x"),
        ),
        ("RSA n missing", json!({"kty": "RSA", "e": "AQAB"}), Algorithm::Rs256, KeyError::MissingParameter("n")),
        (
            "RSA n not base64url",
            json!({"kty": "RSA", "n": "a+b/", "e": "AQAB"}),
            Algorithm::Rs256,
            KeyError::InvalidParameter("n"),
        ),
        (
            "Ed25519 x short",
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
            Algorithm::Rs256,
            KeyError::InvalidParameter("x"),
        ),
        (
            "kid a number",
            json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": 3}),
            Algorithm::Rs256,
            KeyError::InvalidParameter("kid"),
        ),
        ("not an object", json!([a2_jwk()]), Algorithm::Rs256, KeyError::NotAnObject),
    ];
    for (name, jwk, default_rsa, expected) in cases {
        assert_eq!(VerifyingKey::from_jwk(&jwk, default_rsa).map(drop), Err(expected), "{name}");
    }
    assert_eq!(
        KeyError::SymmetricJwk.to_string(),
        "JWK kty \"oct\" is not accepted: HMAC secrets come from a runtime secret"
    );
    assert!(KeyError::PrivateKey.to_string().contains("private key"));
}

#[test]
fn jwks_skips_unusable_keys() {
    let document = json!({"keys": [
        a2_jwk(),
        json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "kid": "ps", "alg": "PS256"}),
        a3_jwk(),
        es384_jwk(),
        ed25519_jwk(),
        json!({"kty": "oct", "k": A1_KEY}),
        json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "use": "enc"}),
        json!({"kty": "RSA", "n": RSA1024_N, "e": "AQAB"}),
        json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y, "d": A3_D}),
        json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
        json!({"kty": "RSA", "n": A2_N, "e": "AQAB", "alg": "RSA-OAEP-256"}),
        json!("not a key"),
        json!({}),
    ]});
    let (keys, skipped) = parse_jwks(document.to_string().as_bytes(), Algorithm::Rs256).unwrap();
    assert_eq!(
        keys.iter().map(VerifyingKey::algorithm).collect::<Vec<_>>(),
        [Algorithm::Rs256, Algorithm::Ps256, Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa]
    );
    assert_eq!(keys[1].kid(), Some("ps"));
    assert_eq!(skipped, 8);

    assert_eq!(parse_jwks(br#"{"keys": []}"#, Algorithm::Rs256).unwrap().1, 0);
    assert!(parse_jwks(br#"{"keys": [], "other": 1}"#, Algorithm::Rs256).unwrap().0.is_empty());
    for bad in [&b"not json"[..], b"[]", br#"{"keys": {}}"#, br#"{"key": []}"#, b"", br#"{"keys": null}"#] {
        assert_eq!(
            parse_jwks(bad, Algorithm::Rs256).map(drop),
            Err(KeyError::NotAJwks),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn pem_keys() {
    // Accepted: each SPKI type with its algorithm; PKCS#1 for every RSA algorithm.
    for alg in
        [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512, Algorithm::Ps256, Algorithm::Ps384, Algorithm::Ps512]
    {
        assert_eq!(VerifyingKey::from_pem(A2_SPKI_PEM, alg, None).unwrap().algorithm(), alg);
        assert_eq!(VerifyingKey::from_pem(A2_PKCS1_PEM, alg, Some("r")).unwrap().kid(), Some("r"));
    }
    assert!(VerifyingKey::from_pem(A3_SPKI_PEM, Algorithm::Es256, None).is_ok());
    assert!(VerifyingKey::from_pem(ES384_SPKI_PEM, Algorithm::Es384, None).is_ok());
    assert!(VerifyingKey::from_pem(RFC8037_SPKI_PEM, Algorithm::EdDsa, None).is_ok());

    // Lenient about layout: CRLF, other line widths, surrounding whitespace.
    let crlf = A2_SPKI_PEM.replace('\n', "\r\n");
    assert!(VerifyingKey::from_pem(&crlf, Algorithm::Rs256, None).is_ok());
    let body: String = A2_SPKI_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    let wide =
        format!("\n  -----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----  \n", &body[..76], &body[76..]);
    assert!(VerifyingKey::from_pem(&wide, Algorithm::Rs256, None).is_ok());
    let one_line = format!("-----BEGIN PUBLIC KEY-----{body}-----END PUBLIC KEY-----");
    assert!(VerifyingKey::from_pem(&one_line, Algorithm::Rs256, None).is_ok());

    let mismatch = |alg, key| KeyError::AlgorithmMismatch { alg, key };
    let cases: Vec<(&str, String, Algorithm, KeyError)> = vec![
        ("RSA as ES256", A2_SPKI_PEM.into(), Algorithm::Es256, mismatch(Algorithm::Es256, "RSA")),
        ("RSA as HS256", A2_SPKI_PEM.into(), Algorithm::Hs256, mismatch(Algorithm::Hs256, "RSA")),
        ("PKCS#1 as EdDSA", A2_PKCS1_PEM.into(), Algorithm::EdDsa, mismatch(Algorithm::EdDsa, "RSA")),
        ("P-256 as ES384", A3_SPKI_PEM.into(), Algorithm::Es384, mismatch(Algorithm::Es384, "EC P-256")),
        ("P-384 as ES256", ES384_SPKI_PEM.into(), Algorithm::Es256, mismatch(Algorithm::Es256, "EC P-384")),
        ("P-256 as RS256", A3_SPKI_PEM.into(), Algorithm::Rs256, mismatch(Algorithm::Rs256, "EC P-256")),
        ("Ed25519 as ES256", RFC8037_SPKI_PEM.into(), Algorithm::Es256, mismatch(Algorithm::Es256, "OKP Ed25519")),
        ("P-521", P521_SPKI_PEM.into(), Algorithm::Es256, KeyError::UnsupportedCurve("1.3.132.0.35".into())),
        (
            "private key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
            Algorithm::Rs256,
            KeyError::PrivateKey,
        ),
        (
            "RSA private key",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".into(),
            Algorithm::Rs256,
            KeyError::PrivateKey,
        ),
        (
            "EC private key",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".into(),
            Algorithm::Es256,
            KeyError::PrivateKey,
        ),
        (
            "certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            Algorithm::Rs256,
            KeyError::UnsupportedPemLabel("CERTIFICATE".into()),
        ),
        (
            "not PEM",
            "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".into(),
            Algorithm::Rs256,
            KeyError::InvalidPem("no -----BEGIN line"),
        ),
        (
            "no END",
            A2_SPKI_PEM.replace("-----END PUBLIC KEY-----", ""),
            Algorithm::Rs256,
            KeyError::InvalidPem("no matching -----END line"),
        ),
        (
            "mismatched END",
            A2_SPKI_PEM.replace("END PUBLIC", "END RSA PUBLIC"),
            Algorithm::Rs256,
            KeyError::InvalidPem("no matching -----END line"),
        ),
        (
            "two blocks",
            format!("{A3_SPKI_PEM}{A3_SPKI_PEM}"),
            Algorithm::Es256,
            KeyError::InvalidPem("more than one block, or encapsulated headers"),
        ),
        ("text before", format!("key:\n{A3_SPKI_PEM}"), Algorithm::Es256, KeyError::InvalidPem("no -----BEGIN line")),
        (
            "bad base64",
            A3_SPKI_PEM.replace("MFkw", "M!kw"),
            Algorithm::Es256,
            KeyError::InvalidPem("invalid base64 body"),
        ),
        (
            "not DER",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
            Algorithm::Es256,
            KeyError::InvalidKey("not a SubjectPublicKeyInfo"),
        ),
        (
            "PKCS#1 label on SPKI",
            A2_SPKI_PEM.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
            Algorithm::Rs256,
            KeyError::InvalidKey("not a PKCS#1 RSA public key"),
        ),
    ];
    for (name, pem, alg, expected) in cases {
        assert_eq!(VerifyingKey::from_pem(&pem, alg, None).map(drop), Err(expected), "{name}");
    }
}

#[test]
fn hmac_secrets() {
    for (alg, min) in [(Algorithm::Hs256, 32), (Algorithm::Hs384, 48), (Algorithm::Hs512, 64)] {
        let secret = vec![7u8; 128];
        assert_eq!(VerifyingKey::hmac(&secret[..min], alg, Some("s")).unwrap().algorithm(), alg);
        assert!(VerifyingKey::hmac(&secret, alg, None).is_ok());
        assert_eq!(
            VerifyingKey::hmac(&secret[..min - 1], alg, None).map(drop),
            Err(KeyError::HmacSecretTooShort { alg, min, len: min - 1 })
        );
        assert!(VerifyingKey::hmac(&[], alg, None).is_err());
    }
    for alg in Algorithm::ALL.into_iter().filter(|alg| !alg.is_hmac()) {
        assert_eq!(
            VerifyingKey::hmac(&[7; 64], alg, None).map(drop),
            Err(KeyError::AlgorithmMismatch { alg, key: "HMAC secret" })
        );
    }
    // A 19-byte "your-256-bit-secret" (jwt.io's sample) is refused for HS256.
    assert!(matches!(
        VerifyingKey::hmac(b"your-256-bit-secret", Algorithm::Hs256, None),
        Err(KeyError::HmacSecretTooShort { .. })
    ));
}

/// The JWK a platform imports to verify natively is the same public key: re-imported here, it
/// verifies what the original key verifies. HMAC secrets are never exported.
#[test]
fn public_jwk_round_trips() {
    for f in fixtures() {
        let token = (f.sign)(&header(f.alg.name()), CLAIMS);
        let decoded = decode(&token).unwrap();
        match f.key.public_jwk() {
            None => assert!(f.alg.is_hmac(), "{}", f.alg),
            Some(text) => {
                let jwk: Value = serde_json::from_str(text).unwrap();
                assert!(jwk.get("d").is_none() && jwk.get("alg").is_none(), "{text}");
                let again = VerifyingKey::from_jwk(&jwk, f.alg).unwrap();
                assert_eq!(again.algorithm(), f.alg);
                assert_eq!(decoded.verify(&again), Ok(()), "{}", f.alg);
                assert_eq!(decoded.signing_input(), token.rsplit_once('.').unwrap().0.as_bytes());
                assert_eq!(b64(decoded.signature()), token.rsplit_once('.').unwrap().1);
            }
        }
    }
}
