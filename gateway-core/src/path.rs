//! One request, one meaning: the path policy applied before routing.
//!
//! A gateway that routes on one reading of a path while the upstream acts on another can be
//! walked past: `/pub/..;/admin` is `/admin` to Tomcat, `/pub/..%2fadmin` to a server that
//! decodes before resolving dots. So every path is first brought to one canonical form, and
//! refused when no canonical form is safe:
//!
//! - percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2: `%2e` is `.`,
//!   `%41` is `A`), other escapes get upper-case hex (§6.2.2.1);
//! - duplicate slashes are merged (unless the gateway says not to);
//! - refused (400, the detail names the reason): a path that is not absolute, dot segments
//!   (`.`, `..`, also `%2e`-encoded, also followed by `;` parameters as in `..;`, also between
//!   encoded slashes), an encoded backslash or a backslash, double encoding of `.`, `/` or `\`
//!   (`%252e`), control characters (raw or encoded), non-ASCII look-alikes of the dot
//!   (`．`, `。`, `․`, …), malformed escapes; and an encoded slash (`%2F`) on a route that does
//!   not allow them ([`Normalized::encoded_slash`] tells the pipeline after routing).
//!
//! The upstream receives the normalized path.

use std::borrow::Cow;

/// Why a path is refused. The description is safe to show to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathRefusal {
    NotAbsolute,
    DotSegment,
    DotSegmentWithParameters,
    SegmentParameters,
    EncodedSlash,
    Backslash,
    DoubleEncoded,
    ControlCharacter,
    LookalikeDot,
    MalformedEscape,
}

impl PathRefusal {
    pub fn description(self) -> &'static str {
        match self {
            Self::NotAbsolute => "The path must start with '/'.",
            Self::DotSegment => "The path must not contain '.' or '..' segments (also percent-encoded).",
            Self::DotSegmentWithParameters => "The path must not contain dot segments with ';' parameters ('..;').",
            Self::SegmentParameters => {
                "The path must not contain ';' segment parameters (Tomcat and Spring drop them: /admin;x is /admin)."
            }
            Self::EncodedSlash => "The path must not contain an encoded '/' (%2F) on this route.",
            Self::Backslash => "The path must not contain a backslash, literal or encoded (%5C).",
            Self::DoubleEncoded => "The path must not contain a double-encoded '.', '/' or '\\' (%252e).",
            Self::ControlCharacter => "The path must not contain control characters.",
            Self::LookalikeDot => "The path must not contain characters that look like a dot.",
            Self::MalformedEscape => "The path contains a malformed percent-encoding.",
        }
    }
}

/// A path in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Normalized<'a> {
    pub path: Cow<'a, str>,
    /// The path keeps an encoded slash (`%2F`): only a route that allows them may take it.
    pub encoded_slash: bool,
}

/// UTF-8 of characters that some servers or file systems fold into `.`.
const LOOKALIKE_DOTS: [&[u8]; 7] = [
    "\u{FF0E}".as_bytes(), // fullwidth full stop
    "\u{3002}".as_bytes(), // ideographic full stop
    "\u{FF61}".as_bytes(), // halfwidth ideographic full stop
    "\u{FE52}".as_bytes(), // small full stop
    "\u{2024}".as_bytes(), // one dot leader
    "\u{2025}".as_bytes(), // two dot leader
    "\u{2026}".as_bytes(), // horizontal ellipsis
];

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn upper_hex(nibble: u8) -> u8 {
    b"0123456789ABCDEF".get(usize::from(nibble)).copied().unwrap_or(b'0')
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Brings `raw` to its canonical form, or says why it cannot be forwarded safely.
pub(crate) fn normalize(raw: &str, merge_slashes: bool) -> Result<Normalized<'_>, PathRefusal> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathRefusal::NotAbsolute);
    }
    if is_plain(bytes, merge_slashes) {
        return Ok(Normalized { path: Cow::Borrowed(raw), encoded_slash: false });
    }
    let Decoded { canonical, decoded, encoded_slash } = decode(bytes, merge_slashes)?;
    refuse_lookalike_dots(&decoded)?;
    let path = String::from_utf8(canonical).map_err(|_| PathRefusal::MalformedEscape)?;
    refuse_dot_segments(&path)?;
    let path = if path == raw { Cow::Borrowed(raw) } else { Cow::Owned(path) };
    Ok(Normalized { path, encoded_slash })
}

/// The usual path has nothing to decode, merge or inspect: one scan, no allocation.
fn is_plain(bytes: &[u8], merge_slashes: bool) -> bool {
    let mut previous = 0u8;
    for &byte in bytes {
        let suspicious = matches!(byte, b'%' | b'\\' | b';')
            || !(0x20..0x7f).contains(&byte)
            || (byte == b'.' && previous == b'/')
            || (byte == b'/' && previous == b'/' && merge_slashes);
        if suspicious {
            return false;
        }
        previous = byte;
    }
    true
}

/// A path with its escapes read.
struct Decoded {
    /// Unreserved characters decoded, other escapes in upper case, `/` merged where asked.
    canonical: Vec<u8>,
    /// Every escape decoded, to look for look-alike dots.
    decoded: Vec<u8>,
    encoded_slash: bool,
}

fn decode(bytes: &[u8], merge_slashes: bool) -> Result<Decoded, PathRefusal> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut encoded_slash = false;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex_value);
                let low = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else { return Err(PathRefusal::MalformedEscape) };
                let value = high << 4 | low;
                decoded.push(value);
                match value {
                    _ if is_unreserved(value) => out.push(value),
                    b'/' => {
                        encoded_slash = true;
                        out.extend_from_slice(b"%2F");
                    }
                    b'\\' => return Err(PathRefusal::Backslash),
                    // Double encoding is judged on the normalized form (`refuse_dot_segments`).
                    b'%' => out.extend_from_slice(b"%25"),
                    _ if value < 0x20 || value == 0x7f => return Err(PathRefusal::ControlCharacter),
                    _ => {
                        out.extend_from_slice(&[b'%', upper_hex(high), upper_hex(low)]);
                    }
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(PathRefusal::Backslash),
            _ if byte < 0x20 || byte == 0x7f => return Err(PathRefusal::ControlCharacter),
            b'/' if merge_slashes && out.last() == Some(&b'/') => {}
            _ => out.push(byte),
        }
        decoded.push(byte);
        i += 1;
    }
    Ok(Decoded { canonical: out, decoded, encoded_slash })
}

/// A segment of nothing but dots and their look-alikes is a dot segment to some servers;
/// the same characters inside a word (`こんにちは。`, `wait…what`) are just text.
fn refuse_lookalike_dots(decoded: &[u8]) -> Result<(), PathRefusal> {
    for segment in decoded.split(|b| *b == b'/') {
        let mut rest = segment;
        let mut lookalike = false;
        while !rest.is_empty() {
            if let Some(tail) = rest.strip_prefix(b".") {
                rest = tail;
            } else if let Some(dot) = LOOKALIKE_DOTS.iter().find(|dot| rest.starts_with(dot)) {
                rest = rest.get(dot.len()..).unwrap_or_default();
                lookalike = true;
            } else {
                break;
            }
        }
        if rest.is_empty() && lookalike {
            return Err(PathRefusal::LookalikeDot);
        }
    }
    Ok(())
}

/// Dot segments, segment parameters and double encoding, on the normalized form.
fn refuse_dot_segments(path: &str) -> Result<(), PathRefusal> {
    // Double encoding, also spelled with escaped hex digits (`%25%32%65` is `%252e` once the
    // unreserved escapes are decoded).
    let lower = path.to_ascii_lowercase();
    if ["%252e", "%252f", "%255c", "%2525"].iter().any(|double| lower.contains(double)) {
        return Err(PathRefusal::DoubleEncoded);
    }
    // Segments, also between encoded slashes, as a server that decodes them would see them.
    for segment in path.split('/').flat_map(|s| s.split("%2F")) {
        let (name, parameters) = match segment.split_once(';') {
            Some((name, _)) => (name, true),
            None => (segment, false),
        };
        if name == "." || name == ".." {
            return Err(if parameters { PathRefusal::DotSegmentWithParameters } else { PathRefusal::DotSegment });
        }
        if parameters {
            // Tomcat and Spring drop `;...` from every segment: `/admin;x/y` is `/admin/y` there.
            return Err(PathRefusal::SegmentParameters);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathRefusal::*;

    #[test]
    fn canonical_forms() {
        let table: [(&str, bool, &str, bool); 12] = [
            ("/a/b", true, "/a/b", false),
            ("/users/%41%62c", true, "/users/Abc", false),
            ("/a/%7e%2D%5f", true, "/a/~-_", false),
            ("/a/%c3%a9", true, "/a/%C3%A9", false),
            ("/a//b///c", true, "/a/b/c", false),
            ("/a//b", false, "/a//b", false),
            ("/ids/a%2fb", true, "/ids/a%2Fb", true),
            ("/a/.well-known/x", true, "/a/.well-known/x", false),
            ("/a/b.c/..d", true, "/a/b.c/..d", false),
            ("/files/100%25", true, "/files/100%25", false),
            ("/wiki/%e3%81%93%e3%80%82", true, "/wiki/%E3%81%93%E3%80%82", false),
            ("/", true, "/", false),
        ];
        for (raw, merge, path, encoded_slash) in table {
            let normalized = normalize(raw, merge).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            assert_eq!((&*normalized.path, normalized.encoded_slash), (path, encoded_slash), "{raw}");
        }
        assert!(matches!(normalize("/a/b", true).unwrap().path, Cow::Borrowed(_)), "no allocation for plain paths");
    }

    #[test]
    fn hostile_paths_are_refused_with_their_reason() {
        let table: [(&str, PathRefusal); 32] = [
            ("pub/x", NotAbsolute),
            ("/pub/../admin/x", DotSegment),
            ("/pub/./x", DotSegment),
            ("/pub/%2e%2e/admin", DotSegment),
            ("/pub/%2E./admin", DotSegment),
            ("/pub/.%2e/admin", DotSegment),
            ("/pub/..", DotSegment),
            ("/pub/..;/admin/x", DotSegmentWithParameters),
            ("/pub/.;x/admin", DotSegmentWithParameters),
            ("/pub/%2e%2e;jsessionid=1/admin", DotSegmentWithParameters),
            ("/pub/..%2fadmin/x", DotSegment),
            ("/pub/%2e%2e%2fadmin/x", DotSegment),
            ("/pub/x%2f..%2fadmin", DotSegment),
            ("/pub/..%5cadmin/x", Backslash),
            ("/pub/..\\admin/x", Backslash),
            ("/pub\\admin", Backslash),
            ("/pub/%252e%252e/admin", DoubleEncoded),
            ("/pub/%252f", DoubleEncoded),
            ("/pub/%255c", DoubleEncoded),
            ("/pub/%25252e", DoubleEncoded),
            ("/pub/%00/x", ControlCharacter),
            ("/pub/%0a/x", ControlCharacter),
            ("/pub/\u{1}", ControlCharacter),
            ("/pub/%ef%bc%8e%ef%bc%8e/admin", LookalikeDot),
            ("/pub/\u{FF0E}\u{FF0E}/admin", LookalikeDot),
            ("/pub/%e3%80%82/x", LookalikeDot),
            ("/pub/%zz", MalformedEscape),
            ("/pub/%25%32%65%25%32%65/admin", DoubleEncoded),
            ("/pub/%25%32e", DoubleEncoded),
            ("/pub/%25%32%66admin", DoubleEncoded),
            ("/admin;x=1/secret", SegmentParameters),
            ("/pub/.%e2%80%a6/x", LookalikeDot),
        ];
        for (raw, reason) in table {
            assert_eq!(normalize(raw, true).map(|n| n.path), Err(reason), "{raw}");
        }
    }
}
