//! Criterion benchmarks of the JWT signature layer: `decode` + `verify` of a realistic token
//! (about 300 bytes of claims) for each algorithm, with keys parsed once beforehand, as the
//! gateway does. Tokens are signed at start-up with jwt-compact / RustCrypto from fixed keys
//! (the RFC 7515 A.2 RSA key, the RFC 7515 A.3 P-256 key, the RFC 8037 Ed25519 key).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use base64ct::{Base64UrlUnpadded, Encoding};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gateway_core::auth::jwt::{decode, Algorithm, VerifyingKey};
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use serde_json::json;

const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const RSA_D: &str = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const RSA_P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const RSA_Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
const P256_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
const ED25519_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    Base64UrlUnpadded::encode_string(bytes.as_ref())
}

fn unb64(text: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(text).unwrap()
}

/// About 300 bytes of JSON: what an OIDC provider's access token carries.
fn claims() -> String {
    let claims = json!({
        "iss": "https://login.example.com/realms/customers",
        "sub": "8f14e45f-ceea-467f-a8b2-c3d2e1f0a9b8",
        "aud": ["edgegate", "orders-api"],
        "exp": 1_900_000_000, "iat": 1_899_996_400, "nbf": 1_899_996_400,
        "jti": "a3f1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8",
        "azp": "web-frontend",
        "scope": "openid profile email orders:read orders:write",
        "email": "alice@example.com",
        "roles": ["customer", "beta"],
        "tenant": "eu-1"
    });
    claims.to_string()
}

fn token(alg: Algorithm, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = json!({"alg": alg.name(), "typ": "JWT", "kid": "2024-key-1"}).to_string();
    let input = format!("{}.{}", b64(header), b64(claims()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn ec_jwk(point: &[u8], crv: &str) -> serde_json::Value {
    let size = (point.len() - 1) / 2;
    json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=size]), "y": b64(&point[1 + size..])})
}

/// (algorithm, token, key) for every algorithm.
fn cases() -> Vec<(Algorithm, String, VerifyingKey)> {
    let mut out = Vec::new();
    out.push((
        Algorithm::Hs256,
        token(Algorithm::Hs256, |m| Hs256.sign(&Hs256Key::new(SECRET), m).as_bytes().into_owned()),
        VerifyingKey::hmac(SECRET, Algorithm::Hs256, None).unwrap(),
    ));
    out.push((
        Algorithm::Hs384,
        token(Algorithm::Hs384, |m| Hs384.sign(&Hs384Key::new(SECRET), m).as_bytes().into_owned()),
        VerifyingKey::hmac(SECRET, Algorithm::Hs384, None).unwrap(),
    ));
    out.push((
        Algorithm::Hs512,
        token(Algorithm::Hs512, |m| Hs512.sign(&Hs512Key::new(SECRET), m).as_bytes().into_owned()),
        VerifyingKey::hmac(SECRET, Algorithm::Hs512, None).unwrap(),
    ));

    let int = |text: &str| rsa::BigUint::from_bytes_be(&unb64(text));
    let private =
        rsa::RsaPrivateKey::from_components(int(RSA_N), int("AQAB"), int(RSA_D), vec![int(RSA_P), int(RSA_Q)]).unwrap();
    for alg in
        [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512, Algorithm::Ps256, Algorithm::Ps384, Algorithm::Ps512]
    {
        let rsa: Rsa = alg.name().parse().unwrap();
        let jwk = json!({"kty": "RSA", "n": RSA_N, "e": "AQAB", "alg": alg.name()});
        out.push((
            alg,
            token(alg, |m| rsa.sign(&private, m).as_bytes().into_owned()),
            VerifyingKey::from_jwk(&jwk, Algorithm::Rs256).unwrap(),
        ));
    }

    let p256 = p256::ecdsa::SigningKey::from_slice(&unb64(P256_D)).unwrap();
    out.push((
        Algorithm::Es256,
        token(Algorithm::Es256, |m| Es256.sign(&p256, m).as_bytes().into_owned()),
        VerifyingKey::from_jwk(
            &ec_jwk(p256.verifying_key().to_encoded_point(false).as_bytes(), "P-256"),
            Algorithm::Rs256,
        )
        .unwrap(),
    ));

    let p384 = p384::ecdsa::SigningKey::from_slice(&[5; 48]).unwrap();
    out.push((
        Algorithm::Es384,
        token(Algorithm::Es384, |m| {
            use p384::ecdsa::signature::Signer as _;
            let signature: p384::ecdsa::Signature = p384.sign(m);
            signature.to_bytes().to_vec()
        }),
        VerifyingKey::from_jwk(
            &ec_jwk(p384.verifying_key().to_encoded_point(false).as_bytes(), "P-384"),
            Algorithm::Rs256,
        )
        .unwrap(),
    ));

    let ed = ed25519_dalek::SigningKey::from_bytes(&<[u8; 32]>::try_from(unb64(ED25519_D)).unwrap());
    out.push((
        Algorithm::EdDsa,
        token(Algorithm::EdDsa, |m| Ed25519.sign(&ed, m).as_bytes().into_owned()),
        VerifyingKey::from_jwk(
            &json!({"kty": "OKP", "crv": "Ed25519", "x": b64(ed.verifying_key().as_bytes())}),
            Algorithm::Rs256,
        )
        .unwrap(),
    ));
    out
}

fn bench_jwt(c: &mut Criterion) {
    let cases = cases();
    let mut group = c.benchmark_group("jwt_decode_verify");
    for (alg, token, key) in &cases {
        // A bench that silently measured a failure would be worthless.
        decode(token).unwrap().verify(key).unwrap();
        group.bench_function(alg.name(), |b| {
            b.iter(|| decode(black_box(token)).and_then(|decoded| decoded.verify(black_box(key))))
        });
    }
    group.finish();

    let (_, token, _) = &cases[0];
    println!("token length: {} bytes (HS256), claims {} bytes", token.len(), claims().len());
    c.bench_function("jwt_decode_only", |b| b.iter(|| decode(black_box(token))));
}

criterion_group!(benches, bench_jwt);
criterion_main!(benches);
