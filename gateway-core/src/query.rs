//! Query-string names as the upstream will read them.
//!
//! A policy that names a query parameter (`deny: ["token"]`, an API key in `?api_key=`) must
//! compare against the *decoded* name: `?tok%65n=x` is `token` to every server framework.

use std::borrow::Cow;

/// The bytes of a `application/x-www-form-urlencoded` component: `%XX` decoded, `+` as a space.
/// A `%` not followed by two hex digits stays literal, as servers keep it.
pub(crate) fn decode(raw: &str) -> Cow<'_, [u8]> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (b, bytes.get(i + 1).and_then(|h| hex(*h)), bytes.get(i + 2).and_then(|l| hex(*l))) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (other, _, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The raw name of a `name=value` pair (the whole pair when it has no `=`).
pub(crate) fn raw_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(name, _)| name)
}

/// Whether a pair's name, decoded, is `name`.
pub(crate) fn name_is(pair: &str, name: &str) -> bool {
    *decode(raw_name(pair)) == *name.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_decoded() {
        for (pair, name, expected) in [
            ("token=x", "token", true),
            ("tok%65n=x", "token", true),
            ("to%6Ben", "token", true),
            ("%74%6F%6B%65%6E=1", "token", true),
            ("api%5Fkey=k", "api_key", true),
            ("a+b=1", "a b", true),
            ("tokens=x", "token", false),
            ("tok%zzn=x", "token", false),
            ("%=x", "%", true),
            ("", "token", false),
        ] {
            assert_eq!(name_is(pair, name), expected, "{pair} vs {name}");
        }
    }
}
