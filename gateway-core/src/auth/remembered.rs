//! Verified tokens remembered across requests. A repeated token skips the signature check
//! (its claims are still checked against the clock every time), for at most
//! [`VERIFIED_TTL_MS`] after it was verified.
//!
//! An isolate that lives on (Workers) remembers in memory (the gateway's key cache). Where every request
//! runs in a fresh instance (Spin, [`Store::FRESH_INSTANCE_PER_REQUEST`]) memory is gone with
//! the request, so the token is remembered in the shared store as well: a fixed table of
//! [`STORED_SLOTS`] slots chosen by the token's SHA-256, so the store never holds more than
//! that many entries and never the token itself. A slot holds one token (a later one replaces
//! it), and is only believed by a gateway compiled from the same routes file.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jwks::{KeyCache, VerifiedToken, VERIFIED_TTL_MS};
use crate::ports::{Platform, Store, UnixMillis};
use crate::Gateway;

/// How many tokens the store remembers at most.
const STORED_SLOTS: u16 = 4096;

/// One slot as stored.
#[derive(Serialize, Deserialize)]
struct StoredToken {
    /// The routes file's fingerprint, hex.
    config: String,
    /// SHA-256 of the token, hex.
    token: String,
    issuer: usize,
    verified_at: UnixMillis,
    claims: Map<String, Value>,
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    crate::hygiene::push_hex(&mut out, bytes);
    out
}

/// The slot key and the token's digest.
fn slot(token: &str) -> (String, String) {
    let digest = Sha256::digest(token.as_bytes());
    let index = digest.iter().take(2).fold(0u16, |n, byte| (n << 8) | u16::from(*byte)) % STORED_SLOTS;
    (format!("edgegate:verified:{index}"), hex(&digest))
}

/// The token, if it was verified within [`VERIFIED_TTL_MS`]: from memory, else (on a platform
/// whose instances live one request) from the store.
pub(crate) async fn recall<P: Platform>(
    gateway: &Gateway,
    keys: &KeyCache,
    platform: &P,
    token: &str,
    now: UnixMillis,
) -> Option<VerifiedToken> {
    if let Some(hit) = keys.verified(token, now) {
        return Some(hit);
    }
    if !<P as Store>::FRESH_INSTANCE_PER_REQUEST {
        return None;
    }
    let config = hex(&gateway.fingerprint?);
    let (key, digest) = slot(token);
    // A store that fails is a miss: the signature is checked instead.
    let bytes = platform.get(&key).await.ok()??;
    let stored: StoredToken = serde_json::from_slice(&bytes).ok()?;
    let fresh = now.saturating_sub(stored.verified_at) < VERIFIED_TTL_MS && stored.verified_at <= now;
    (fresh && stored.config == config && stored.token == digest).then(|| VerifiedToken {
        issuer: stored.issuer,
        claims: Arc::new(stored.claims),
        verified_at: stored.verified_at,
    })
}

/// Remembers a token whose signature was just verified, where [`recall`] looks.
pub(crate) async fn keep<P: Platform>(
    gateway: &Gateway,
    keys: &KeyCache,
    platform: &P,
    token: &str,
    verified: VerifiedToken,
) {
    if <P as Store>::FRESH_INSTANCE_PER_REQUEST {
        if let Some(fingerprint) = gateway.fingerprint {
            let (key, digest) = slot(token);
            let stored = StoredToken {
                config: hex(&fingerprint),
                token: digest,
                issuer: verified.issuer,
                verified_at: verified.verified_at,
                claims: (*verified.claims).clone(),
            };
            if let Ok(bytes) = serde_json::to_vec(&stored) {
                // Best effort: a store that fails only means the next instance verifies again.
                let _ = platform.put(&key, Bytes::from(bytes)).await;
            }
        }
    }
    keys.remember(token, verified);
}
