//! What both adapters do the same way with what their runtime hands them: take out the headers
//! the runtime added to the incoming request (one of them names the client; none is forwarded),
//! build the request's URL from its parts, and carry a head across a boundary as one string.
//!
//! ```
//! use gateway_core::runtime::{pack_headers, unpack_headers, Runtime};
//! let mut headers = unpack_headers("accept\n*/*\ncf-connecting-ip\n203.0.113.7\ncf-ray\n8f1\n".split('\n'));
//! let client = Runtime::Workers.take_client(&mut headers, true);
//! assert_eq!(client.ip.unwrap().to_string(), "203.0.113.7");
//! assert_eq!(pack_headers(&headers), "accept\n*/*\n", "the runtime's own headers are gone");
//! ```

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::ports::Client;

/// The runtime a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Runtime {
    /// Cloudflare Workers: `CF-Connecting-IP` names the client; Cloudflare also adds
    /// `CF-IPCountry`, `CF-Ray`, `CF-Visitor`, `CF-Worker` and `X-Real-IP`.
    Workers,
    /// Fermyon Spin: `spin-client-addr` names the client; every `spin-*` header is the host's.
    Spin,
}

/// The headers Cloudflare adds to a Worker's incoming request.
const WORKERS_HEADERS: [&str; 6] =
    ["cf-connecting-ip", "cf-ipcountry", "cf-ray", "cf-visitor", "cf-worker", "x-real-ip"];

impl Runtime {
    /// Takes the headers this runtime added out of `headers` (the gateway sets its own
    /// forwarding headers; the upstream sees none of the runtime's) and returns the client they
    /// name (see [`Client::from_runtime_header`]). `https`: whether the client connected over TLS.
    ///
    /// ```
    /// use gateway_core::runtime::{unpack_headers, Runtime};
    /// let mut headers = unpack_headers("spin-client-addr\n127.0.0.1:5123\nspin-path-info\n/x\nx-a\n1\n".split('\n'));
    /// let client = Runtime::Spin.take_client(&mut headers, false);
    /// assert_eq!(client.ip.unwrap().to_string(), "127.0.0.1");
    /// assert_eq!(headers.len(), 1);
    /// ```
    pub fn take_client(self, headers: &mut HeaderMap, https: bool) -> Client {
        let named = match self {
            Self::Workers => "cf-connecting-ip",
            Self::Spin => "spin-client-addr",
        };
        let client = Client::from_runtime_header(headers.get_all(named).iter().map(HeaderValue::as_bytes), https);
        match self {
            Self::Workers => {
                for name in WORKERS_HEADERS {
                    headers.remove(name);
                }
            }
            Self::Spin => crate::hygiene::remove_where(headers, |name| name.as_str().starts_with("spin-")),
        }
        client
    }
}

/// The request's absolute URL from the parts a runtime reports separately: the authority, or
/// failing that the `Host` header; without either, the path alone.
///
/// ```
/// use gateway_core::runtime::request_url;
/// let host = gateway_core::runtime::unpack_headers("host\nexample.com\n".split('\n'));
/// assert_eq!(request_url(true, Some("api.example.com"), &host, Some("/a?b")), "https://api.example.com/a?b");
/// assert_eq!(request_url(false, None, &host, None), "http://example.com/");
/// assert_eq!(request_url(false, None, &http::HeaderMap::new(), Some("/a")), "/a");
/// ```
pub fn request_url(https: bool, authority: Option<&str>, headers: &HeaderMap, path: Option<&str>) -> String {
    let path = path.unwrap_or("/");
    let authority = authority.or_else(|| headers.get(http::header::HOST).and_then(|h| h.to_str().ok()));
    match authority {
        Some(authority) => format!("{}://{authority}{path}", if https { "https" } else { "http" }),
        None => path.to_owned(),
    }
}

/// Header pairs from their packed form (`name\nvalue\n` …: names and values never hold a
/// newline); pairs that are not valid HTTP are dropped.
pub fn unpack_headers<'a>(mut pairs: impl Iterator<Item = &'a str>) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(16);
    while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            map.append(name, value);
        }
    }
    map
}

/// Header pairs as a runtime lists them (name, value bytes); pairs that are not valid HTTP are
/// dropped.
pub fn header_map<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (N, V)>) -> HeaderMap {
    let pairs = pairs.into_iter();
    let mut map = HeaderMap::with_capacity(pairs.size_hint().0);
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_ref()), HeaderValue::from_bytes(value.as_ref()))
        {
            map.append(name, value);
        }
    }
    map
}

/// Header pairs packed as one string, in order, repeats kept.
pub fn pack_headers(map: &HeaderMap) -> String {
    let mut packed = String::with_capacity(map.len() * 32);
    for (name, value) in map {
        packed.push_str(name.as_str());
        packed.push('\n');
        packed.push_str(&header_text(value));
        packed.push('\n');
    }
    packed
}

/// A header value as text: borrowed when it is UTF-8, which it always is when it came from
/// workerd. workerd decodes received header bytes as UTF-8 and encodes JS header strings as
/// UTF-8 on the wire (not the Fetch standard's Latin-1 ByteString: workerd's headers.c++,
/// cloudflare/workerd#6927), so the bytes of a value are its UTF-8 text; a Latin-1 mapping
/// would send `c3 a9` (é) out as `c3 83 c2 a9`. Other bytes cannot cross unchanged; they become
/// U+FFFD, as workerd itself does with such bytes when it receives them.
pub fn header_text(value: &HeaderValue) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn utf8_header_bytes_cross_unchanged_in_both_directions() {
        let bytes = "café 日本 €".as_bytes();
        let value = HeaderValue::from_bytes(bytes).unwrap();
        let text = header_text(&value);
        assert!(matches!(text, Cow::Borrowed(_)), "no copy on the way out");
        assert_eq!(text.as_bytes(), bytes, "the text is the UTF-8, not one char per byte");
        let mut map = HeaderMap::new();
        map.insert("x-name", value);
        let back = unpack_headers(pack_headers(&map).split('\n'));
        assert_eq!(back["x-name"].as_bytes(), bytes);
    }

    #[test]
    fn packed_heads_keep_order_and_repeats() {
        let map = unpack_headers("accept\n*/*\nset-cookie\na=1\nset-cookie\nb=2\n".split('\n'));
        assert_eq!(map.get_all("set-cookie").iter().collect::<Vec<_>>(), ["a=1", "b=2"]);
        assert_eq!(pack_headers(&map), "accept\n*/*\nset-cookie\na=1\nset-cookie\nb=2\n");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let value = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        assert_eq!(header_text(&value), "caf\u{fffd}");
    }

    #[test]
    fn invalid_header_text_is_dropped() {
        assert_eq!(unpack_headers("bad name\nx\nx-ok\n1\nx-nul\na\0b\n".split('\n')).len(), 1);
        let pairs: [(&str, &[u8]); 3] = [("bad name", b"x"), ("x-ok", b"1"), ("x-nul", b"a\0b")];
        assert_eq!(header_map(pairs).len(), 1);
    }

    /// Every header a runtime adds is taken out, whatever the client sent beside it; a client's
    /// own copy of the address header makes the address unknown rather than the client's.
    #[test]
    fn the_runtimes_headers_never_pass_and_a_spoofed_copy_is_not_believed() {
        let table: [(Runtime, &str, Option<&str>); 4] = [
            (Runtime::Workers, "cf-connecting-ip\n198.51.100.1\ncf-ipcountry\nXX\ncf-ray\n1\ncf-visitor\n{}\ncf-worker\nw\nx-real-ip\n1.1.1.1\n", Some("198.51.100.1")),
            (Runtime::Workers, "cf-connecting-ip\n198.51.100.1\ncf-connecting-ip\n10.0.0.1\n", None),
            (Runtime::Spin, "spin-client-addr\n127.0.0.1:1\nspin-full-url\nhttp://x/\nspin-matched-route\n/...\n", Some("127.0.0.1")),
            (Runtime::Spin, "spin-client-addr\n127.0.0.1:1\nspin-client-addr\n10.0.0.1:2\n", None),
        ];
        for (runtime, packed, ip) in table {
            let text = format!("{packed}accept\n*/*\n");
            let mut headers = unpack_headers(text.split('\n'));
            let client = runtime.take_client(&mut headers, false);
            assert_eq!(client.ip.map(|ip| ip.to_string()).as_deref(), ip, "{runtime:?} {packed:?}");
            assert_eq!(pack_headers(&headers), "accept\n*/*\n", "{runtime:?}");
        }
    }
}
