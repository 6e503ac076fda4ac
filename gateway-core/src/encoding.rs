//! Content codings of bodies a policy reads (response-body transforms, aggregation legs, body
//! validation). Workers' fetch decodes gzip and br itself; Spin hands over the bytes as sent.
//! So the gateway asks upstreams for `identity` where it reads the body, and decodes gzip
//! and deflate where it gets them anyway; anything else it cannot read.

use std::io::Read;

use http::header::CONTENT_ENCODING;
use http::HeaderMap;

/// The content coding of a body, as far as the gateway can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Identity,
    Gzip,
    /// `deflate`: zlib (RFC 1950), or raw deflate as some servers send it.
    Deflate,
    /// br, zstd, compress, a chain of codings...
    Unreadable,
}

/// The coding `Content-Encoding` declares.
pub(crate) fn coding(headers: &HeaderMap) -> Coding {
    let mut codings = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("unreadable").split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
    let first = codings.next();
    if codings.next().is_some() {
        return Coding::Unreadable;
    }
    match first {
        None => Coding::Identity,
        Some(c) if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") => Coding::Gzip,
        Some(c) if c.eq_ignore_ascii_case("deflate") => Coding::Deflate,
        Some(_) => Coding::Unreadable,
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Decoded, it is larger than the limit.
    TooLarge,
    /// Not valid data of its coding, or a coding the gateway cannot read.
    Invalid,
}

/// The decoded bytes, at most `limit` of them.
pub(crate) fn decode(coding: Coding, bytes: &[u8], limit: u64) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let read = |reader: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), DecodeError> {
        let mut limited = reader.take(limit.saturating_add(1));
        limited.read_to_end(out).map_err(|_| DecodeError::Invalid)?;
        if out.len() as u64 > limit {
            return Err(DecodeError::TooLarge);
        }
        Ok(())
    };
    match coding {
        Coding::Identity => {
            if bytes.len() as u64 > limit {
                return Err(DecodeError::TooLarge);
            }
            out.extend_from_slice(bytes);
        }
        Coding::Gzip => read(&mut flate2::read::MultiGzDecoder::new(bytes), &mut out)?,
        Coding::Deflate => {
            if read(&mut flate2::read::ZlibDecoder::new(bytes), &mut out).is_err() {
                out.clear();
                read(&mut flate2::read::DeflateDecoder::new(bytes), &mut out)?;
            }
        }
        Coding::Unreadable => return Err(DecodeError::Invalid),
    }
    Ok(out)
}

/// `parse` of a body as received, or of its decoded bytes when that fails and the body says
/// it is gzip or deflate: Workers' fetch has decoded such a body already (and may keep the
/// header), Spin hands it over as the upstream sent it. The error is `parse`'s.
pub(crate) fn parse_decoded<T, E>(
    coding: Coding,
    bytes: &[u8],
    limit: u64,
    parse: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<T, E> {
    parse(bytes).or_else(|error| match coding {
        Coding::Gzip | Coding::Deflate => parse(&decode(coding, bytes, limit).map_err(|_| error)?),
        Coding::Identity | Coding::Unreadable => Err(error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn codings_from_headers() {
        for (value, expected) in [
            (None, Coding::Identity),
            (Some("identity"), Coding::Identity),
            (Some("GZIP"), Coding::Gzip),
            (Some("x-gzip"), Coding::Gzip),
            (Some("deflate"), Coding::Deflate),
            (Some("br"), Coding::Unreadable),
            (Some("gzip, br"), Coding::Unreadable),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(CONTENT_ENCODING, value.parse().unwrap());
            }
            assert_eq!(coding(&headers), expected, "{value:?}");
        }
    }

    #[test]
    fn decoding_is_bounded() {
        let json = br#"{"data":{"keep":1,"secret":"x"}}"#;
        assert_eq!(decode(Coding::Gzip, &gzip(json), 1024).unwrap(), json);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(json).unwrap();
        assert_eq!(decode(Coding::Deflate, &zlib.finish().unwrap(), 1024).unwrap(), json);
        let bomb = gzip(&vec![b'a'; 1 << 20]);
        assert_eq!(decode(Coding::Gzip, &bomb, 4096), Err(DecodeError::TooLarge), "a gzip bomb stops at the limit");
        assert_eq!(decode(Coding::Gzip, json, 1024), Err(DecodeError::Invalid));
        assert_eq!(decode(Coding::Unreadable, json, 1024), Err(DecodeError::Invalid));
    }
}
