//! Query-string names as the upstream will read them.
//!
//! A policy that names a query parameter (`deny: ["token"]`, an API key in `?api_key=`) must
//! compare against the *decoded* name: `?tok%65n=x` is `token` to every server framework.

use std::borrow::Cow;

/// The bytes of a `application/x-www-form-urlencoded` component: `%XX` decoded, `+` as a space.
/// A `%` not followed by two hex digits stays literal, as servers keep it.
pub(crate) fn decode(raw: &str) -> Cow<'_, [u8]> {
    if !raw.contains('+') {
        return percent_encoding::percent_decode_str(raw).into();
    }
    let spaced = raw.replace('+', " ");
    Cow::Owned(percent_encoding::percent_decode_str(&spaced).collect())
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
