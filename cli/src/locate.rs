//! Where a JSON path (`routes[3].match.path`, as config errors name them) stands in the file's
//! text, as a 1-based line and column, so that an error reads `routes.json:8:49: routes[3]...`
//! and a terminal or editor jumps there. A small scanner over the text: the routes file is
//! already known to be JSON when a semantic error is reported.

/// The line and column of the member or element `path` names: for an object member, its key
/// (so an unknown field points at itself); for an array element, the element. `None` when the
/// path is `$` or cannot be followed.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut at = skip_ws(bytes, 0);
    let mut target = None;
    for segment in segments(path)? {
        let (found, value) = match segment {
            Segment::Key(key) => member(bytes, at, key)?,
            Segment::Index(index) => element(bytes, at, index).map(|start| (start, start))?,
        };
        target = Some(found);
        at = value;
    }
    let offset = target?;
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    Some((line, column))
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[2].c` as keys and indexes; `None` for `$` or an empty path.
fn segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(key, rest)| (key, rest));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']')?;
            out.push(Segment::Index(index.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    (!out.is_empty() && path != "$").then_some(out)
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The end of the string starting at `at` (its opening quote), after the closing quote.
fn skip_string(bytes: &[u8], mut at: usize) -> Option<usize> {
    at += 1;
    loop {
        match bytes.get(at)? {
            b'\\' => at += 2,
            b'"' => return Some(at + 1),
            _ => at += 1,
        }
    }
}

/// The end of the value starting at `at`.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => skip_string(bytes, at),
        open @ (b'{' | b'[') => {
            let close = if *open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b if *b == *open => depth += 1,
                    b if *b == close => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while bytes.get(i).is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace()) {
                i += 1;
            }
            Some(i)
        }
    }
}

/// In the object at `at`: the member `key`'s key position and its value's start.
fn member(bytes: &[u8], at: usize, key: &str) -> Option<(usize, usize)> {
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(bytes, at + 1);
    while bytes.get(i) == Some(&b'"') {
        let end = skip_string(bytes, i)?;
        let name = bytes.get(i + 1..end - 1)?;
        let value = skip_ws(bytes, skip_ws(bytes, end) + 1);
        if name == key.as_bytes() {
            return Some((i, value));
        }
        i = skip_ws(bytes, skip_value(bytes, value)?);
        if bytes.get(i) == Some(&b',') {
            i = skip_ws(bytes, i + 1);
        }
    }
    None
}

/// In the array at `at`: the start of element `index`.
fn element(bytes: &[u8], at: usize, index: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let mut i = skip_ws(bytes, at + 1);
    for _ in 0..index {
        i = skip_ws(bytes, skip_value(bytes, i)?);
        if bytes.get(i) != Some(&b',') {
            return None;
        }
        i = skip_ws(bytes, i + 1);
    }
    matches!(bytes.get(i), Some(b) if *b != b']').then_some(i)
}

#[cfg(test)]
mod tests {
    use super::locate;

    const FILE: &str = r#"{
  "version": 1,
  "upstreams": { "users": { "url": "http://a" } },
  "routes": [
    { "id": "a", "match": { "path": "/a", "methods": ["GET", "get"] }, "upstream": "users" },
    { "id": "b,]}\"x", "match": { "path": "/b" }, "upstream": "user" }
  ]
}"#;

    #[test]
    fn paths_point_at_their_member_or_element() {
        for (path, at) in [
            ("version", Some((2, 3))),
            ("upstreams.users.url", Some((3, 29))),
            ("routes[0]", Some((5, 5))),
            ("routes[0].match.methods[1]", Some((5, 62))),
            ("routes[1].upstream", Some((6, 51))),
            ("routes[1].nope", None),
            ("routes[2]", None),
            ("$", None),
        ] {
            assert_eq!(locate(FILE, path), at, "{path}");
        }
    }
}
