//! Header hygiene between client, gateway and upstream: hop-by-hop headers, forwarding
//! headers, request ids and W3C trace context.

use std::fmt::Write as _;

use http::header::{CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::ports::{Client, Entropy};

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub(crate) static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub(crate) static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// Removes hop-by-hop headers: `Connection` and every header it names, `Keep-Alive`, `TE`,
/// `Trailer`, `Transfer-Encoding`, `Proxy-*`, and `Upgrade` unless this is a WebSocket
/// upgrade (then `Upgrade: websocket` and `Connection: upgrade` are kept).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let websocket = is_websocket_upgrade(headers);
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in listed {
        if !(websocket && name == UPGRADE) {
            headers.remove(name);
        }
    }
    for name in [&CONNECTION, &KEEP_ALIVE, &TE, &TRAILER, &TRANSFER_ENCODING, &UPGRADE] {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers.keys().filter(|n| n.as_str().starts_with("proxy-")).cloned().collect();
    for name in proxy {
        headers.remove(name);
    }
    if websocket {
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let upgrade = headers.get(UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let connection = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    upgrade && connection
}

/// Sets `X-Forwarded-For/-Proto/-Host` from what the runtime says. Client-sent copies (and
/// `Forwarded`, `X-Real-IP`) are dropped unless `trust` is set, in which case the client IP
/// is appended to the incoming chain and incoming proto/host are kept.
pub(crate) fn set_forwarding(headers: &mut HeaderMap, client: &Client, original_host: Option<&str>, trust: bool) {
    if !trust {
        for name in [&X_FORWARDED_FOR, &X_FORWARDED_PROTO, &X_FORWARDED_HOST, &FORWARDED, &X_REAL_IP] {
            headers.remove(name);
        }
    }
    if let Some(ip) = client.ip {
        let chain =
            headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(", ");
        let value = if chain.is_empty() { ip.to_string() } else { format!("{chain}, {ip}") };
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(&X_FORWARDED_FOR, value);
        }
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        let proto = if client.https { "https" } else { "http" };
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !headers.contains_key(&X_FORWARDED_HOST) {
        if let Some(host) = original_host.and_then(|h| HeaderValue::try_from(h).ok()) {
            headers.insert(&X_FORWARDED_HOST, host);
        }
    }
    headers.remove(HOST);
}

/// A client-sent request id is kept when it is 1 to 128 characters of `[A-Za-z0-9._:+=@/-]`.
pub(crate) fn is_well_formed_request_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len()) && value.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:+=@/".contains(b))
}

/// A random UUID v4, the request id the gateway makes when none usable arrived.
pub(crate) fn new_request_id(entropy: &impl Entropy) -> HeaderValue {
    let mut bytes = [0u8; 16];
    entropy.fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        let _ = write!(id, "{byte:02x}");
    }
    HeaderValue::try_from(id).unwrap_or(HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
}

/// The trace context to send upstream: the incoming trace continued with a new parent id
/// (and its `tracestate` kept), or a new trace when the incoming `traceparent` is absent
/// or invalid (then any `tracestate` is dropped).
pub(crate) fn propagate_trace(headers: &mut HeaderMap, entropy: &impl Entropy) {
    let incoming = headers.get(&TRACEPARENT).and_then(|v| parse_traceparent(v.as_bytes()));
    let mut span = [0u8; 8];
    entropy.fill(&mut span);
    if span == [0; 8] {
        span[7] = 1;
    }
    let value = match incoming {
        Some((trace_id, flags)) => format!("00-{trace_id}-{}-{flags}", hex(&span)),
        None => {
            headers.remove(&TRACESTATE);
            let mut trace = [0u8; 16];
            entropy.fill(&mut trace);
            if trace == [0; 16] {
                trace[15] = 1;
            }
            format!("00-{}-{}-00", hex(&trace), hex(&span))
        }
    };
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(&TRACEPARENT, value);
    }
}

/// `(trace-id, flags)` of a valid `traceparent` (W3C Trace Context level 1).
fn parse_traceparent(value: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let is_hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = is_hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && is_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && is_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && is_hex(flags, 2);
    valid.then_some((trace_id, flags))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// True when a raw path has a `.` or `..` segment, literally or percent-encoded: such a
/// path could climb out of a stripped prefix at the upstream.
pub(crate) fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        let decoded = lower.replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_validation() {
        let table: [(&str, Option<(&str, &str)>); 7] = [
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Some(("4bf92f3577b34da6a3ce929d0e0e4736", "01")),
            ),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
            ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", None),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                Some(("4bf92f3577b34da6a3ce929d0e0e4736", "01")),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(parse_traceparent(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn dot_segments() {
        for (path, expected) in [
            ("/a/b", false),
            ("/a/../b", true),
            ("/a/%2e%2E/b", true),
            ("/a/./b", true),
            ("/a/.well-known", false),
            ("/..", true),
            ("/a..b", false),
        ] {
            assert_eq!(has_dot_segment(path), expected, "{path}");
        }
    }

    #[test]
    fn hop_by_hop() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "5"),
            ("te", "trailers"),
            ("proxy-authorization", "x"),
            ("upgrade", "h2c"),
            ("accept", "*/*"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);

        let mut ws = HeaderMap::new();
        ws.insert("connection", HeaderValue::from_static("Upgrade"));
        ws.insert("upgrade", HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut ws);
        assert_eq!(ws.get("upgrade").unwrap(), "websocket");
        assert_eq!(ws.get("connection").unwrap(), "upgrade");
    }
}
