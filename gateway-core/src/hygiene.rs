//! Header hygiene between client, gateway and upstream: hop-by-hop headers, forwarding
//! headers, request ids and W3C trace context.

use http::header::{CONNECTION, HOST, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::ports::{Client, Entropy};

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub(crate) static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Removes hop-by-hop headers: `Connection` and every header it names, `Keep-Alive`, `TE`,
/// `Trailer`, `Transfer-Encoding`, `Proxy-*`, and `Upgrade` unless this is a WebSocket
/// upgrade (then `Upgrade: websocket` and `Connection: upgrade` are kept).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let websocket = headers.contains_key(UPGRADE) && is_websocket_upgrade(headers);
    if headers.contains_key(CONNECTION) {
        strip_connection_listed(headers, websocket);
    }
    // One scan with string comparisons: cheaper than hashing every name for a removal
    // when, as usual, none of them is present.
    remove_where(headers, |name| {
        matches!(name.as_str(), "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade")
            || name.as_str().starts_with("proxy-")
    });
    if websocket {
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes every header whose name is `doomed`, in one scan.
pub(crate) fn remove_where(headers: &mut HeaderMap, mut doomed: impl FnMut(&HeaderName) -> bool) {
    // An empty Vec does not allocate.
    let names: Vec<HeaderName> = headers.keys().filter(|name| doomed(name)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

fn strip_connection_listed(headers: &mut HeaderMap, websocket: bool) {
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
}

/// `Upgrade: websocket`, with a `Connection` that lists `upgrade` or none at all: workerd hides
/// the client's `Connection` header from the worker, and an upgrade only happens if the
/// upstream answers 101 to it anyway.
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let upgrade = headers.get(UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let mut connection = headers.get_all(CONNECTION).iter().peekable();
    let connection = connection.peek().is_none()
        || connection
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    upgrade && connection
}

/// Headers a client sends to make a server believe something about the connection or the
/// URL: every `X-Forwarded-*`, `Forwarded`, the client-address headers CDNs and proxies set,
/// and the URL-override headers some frameworks honour. Only the gateway may set them.
fn is_forwarding_header(name: &str) -> bool {
    name.starts_with("x-forwarded-")
        || matches!(
            name,
            "forwarded"
                | "x-forwarded"
                | "x-real-ip"
                | "true-client-ip"
                | "x-client-ip"
                | "x-cluster-client-ip"
                | "x-original-forwarded-for"
                | "x-originating-ip"
                | "x-remote-ip"
                | "x-remote-addr"
                | "client-ip"
                | "cf-connecting-ip"
                | "cf-connecting-ipv6"
                | "fastly-client-ip"
                | "x-host"
                | "x-original-host"
        )
}

/// Headers some frameworks (Symfony, IIS, Zend) route by instead of the request line: never
/// the client's to send, whoever is trusted for addresses.
fn is_url_override_header(name: &str) -> bool {
    matches!(name, "x-original-url" | "x-original-uri" | "x-rewrite-url")
}

/// Headers that change the method a framework dispatches on; a route must opt in.
pub(crate) const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// The first step of every request, before routing: removes what a client must never be able
/// to tell the upstream. Identity headers (every name any auth scheme forwards) always go;
/// forwarding headers go unless `trust`. Returns whether a method-override header came, for
/// the route to remove unless it opts in.
pub(crate) fn sanitize_inbound(headers: &mut HeaderMap, identity: &[HeaderName], trust: bool) -> bool {
    let mut method_override = false;
    remove_where(headers, |name| {
        method_override |= METHOD_OVERRIDE_HEADERS.contains(&name.as_str());
        identity.contains(name)
            || is_url_override_header(name.as_str())
            || (!trust && is_forwarding_header(name.as_str()))
    });
    method_override
}

/// Sets `X-Forwarded-For/-Proto/-Host` from what the runtime says. Without `trust` the
/// client's copies are already gone ([`sanitize_inbound`]); with it the client IP is appended
/// to the incoming chain and incoming proto/host are kept.
pub(crate) fn set_forwarding(headers: &mut HeaderMap, client: &Client, original_host: Option<&str>, trust: bool) {
    if let Some(ip) = client.ip {
        // With trust, the client's chain (only then still present) comes first.
        let mut chain = String::with_capacity(15);
        for hop in headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()) {
            chain.push_str(hop);
            chain.push_str(", ");
        }
        push_ip(&mut chain, ip);
        if let Ok(value) = HeaderValue::try_from(chain) {
            headers.insert(&X_FORWARDED_FOR, value);
        }
    }
    // Without trust the client's copies are gone, so these always take the runtime's word.
    if !trust || !headers.contains_key(&X_FORWARDED_PROTO) {
        let proto = if client.https { "https" } else { "http" };
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !trust || !headers.contains_key(&X_FORWARDED_HOST) {
        if let Some(host) = original_host.and_then(|h| HeaderValue::try_from(h).ok()) {
            headers.insert(&X_FORWARDED_HOST, host);
        }
    }
    headers.remove(HOST);
}

/// `Display` for addresses goes through the formatting machinery; IPv4, the common case,
/// is four numbers and three dots.
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                crate::log::push_number(out, u64::from(octet), 1);
            }
        }
        std::net::IpAddr::V6(v6) => out.push_str(&v6.to_string()),
    }
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
    let mut hex = String::with_capacity(32);
    push_hex(&mut hex, &bytes);
    let mut id = String::with_capacity(36);
    for (i, part) in [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)].into_iter().enumerate() {
        if i > 0 {
            id.push('-');
        }
        id.push_str(hex.get(part.0..part.1).unwrap_or_default());
    }
    HeaderValue::try_from(id).unwrap_or(HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
}

/// The trace context to send upstream: the incoming trace continued with a new parent id
/// (and its `tracestate` kept), or a new trace when the incoming `traceparent` is absent
/// or invalid (then any `tracestate` is dropped).
pub(crate) fn propagate_trace(headers: &mut HeaderMap, entropy: &impl Entropy) {
    let mut span = [0u8; 8];
    entropy.fill(&mut span);
    if span == [0; 8] {
        span[7] = 1;
    }
    let mut value = String::with_capacity(55);
    value.push_str("00-");
    let continued = headers.get(&TRACEPARENT).and_then(|v| parse_traceparent(v.as_bytes())).map(|(trace_id, flags)| {
        value.push_str(trace_id);
        u8::from_str_radix(flags, 16).unwrap_or(0)
    });
    let flags = match continued {
        Some(flags) => flags,
        None => {
            headers.remove(&TRACESTATE);
            let mut trace = [0u8; 16];
            entropy.fill(&mut trace);
            if trace == [0; 16] {
                trace[15] = 1;
            }
            push_hex(&mut value, &trace);
            0
        }
    };
    value.push('-');
    push_hex(&mut value, &span);
    value.push('-');
    push_hex(&mut value, &[flags]);
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

/// Appends `bytes` with everything but RFC 3986 unreserved ASCII percent-escaped: an injective spelling of any bytes, for keys the gateway builds (cache keys, their
/// Vary records, rate-limit counters), where no value may spell a separator.
pub(crate) fn push_escaped(out: &mut String, bytes: &[u8]) {
    out.extend(percent_encoding::percent_encode(bytes, NOT_UNRESERVED));
}

/// Everything but RFC 3986 unreserved characters.
const NOT_UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |nibble: u8| DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
    for chunk in bytes.chunks(16) {
        let mut buf = [0u8; 32];
        for (pair, byte) in buf.chunks_exact_mut(2).zip(chunk) {
            if let [high, low] = pair {
                *high = digit(byte >> 4);
                *low = digit(byte & 0x0f);
            }
        }
        let text = buf.get(..chunk.len() * 2).and_then(|hex| std::str::from_utf8(hex).ok());
        out.push_str(text.unwrap_or_default());
    }
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
    fn inbound_sanitizing() {
        let client_sent = [
            ("x-user-id", "victim"),
            ("x-consumer-id", "acme"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("x-forwarded-server", "evil"),
            ("x-forwarded-scheme", "https"),
            ("x-forwarded-ssl", "on"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-real-ip", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
            ("true-client-ip", "1.2.3.4"),
            ("x-client-ip", "1.2.3.4"),
            ("x-http-method-override", "DELETE"),
            ("accept", "*/*"),
        ];
        let identity = [HeaderName::from_static("x-user-id"), HeaderName::from_static("x-consumer-id")];
        let build = || {
            let mut headers = HeaderMap::new();
            for (name, value) in client_sent {
                headers.append(name, HeaderValue::from_static(value));
            }
            headers
        };
        let mut untrusted = build();
        assert!(sanitize_inbound(&mut untrusted, &identity, false), "a method override is reported");
        let mut left: Vec<&str> = untrusted.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-http-method-override"]);

        let mut trusted = build();
        sanitize_inbound(&mut trusted, &identity, true);
        assert!(!trusted.contains_key("x-user-id"), "identity headers go even from a trusted proxy");
        assert!(trusted.contains_key("x-forwarded-prefix") && trusted.contains_key("forwarded"));
        assert!(
            !trusted.contains_key("x-original-url") && !trusted.contains_key("x-rewrite-url"),
            "URL overrides never"
        );
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
