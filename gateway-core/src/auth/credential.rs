//! Finding a credential in a request, and removing it before the request goes upstream.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue, Uri};

use super::policy::CredentialSource;

/// A credential is present but cannot be read (two copies, a wrong scheme, bad bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// The credential a source names, if the request carries one.
pub(crate) fn find(source: &CredentialSource, headers: &HeaderMap, uri: &Uri) -> Result<Option<String>, Malformed> {
    match source {
        CredentialSource::Bearer => {
            let Some(value) = single_header(headers, &AUTHORIZATION)? else { return Ok(None) };
            let (scheme, token) = value.split_once(' ').ok_or(Malformed)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                // Another scheme (Basic, ...) is not this scheme's credential.
                return Ok(None);
            }
            let token = token.trim_start_matches(' ');
            if token.is_empty() {
                return Err(Malformed);
            }
            Ok(Some(token.to_owned()))
        }
        CredentialSource::Header(name) => match single_header(headers, name)? {
            Some("") => Err(Malformed),
            other => Ok(other.map(str::to_owned)),
        },
        CredentialSource::Cookie(name) => {
            let mut found = None;
            for value in headers.get_all(COOKIE) {
                let value = value.to_str().map_err(|_| Malformed)?;
                for pair in value.split(';') {
                    if let Some((key, cookie)) = pair.trim().split_once('=') {
                        if key == &**name {
                            if found.is_some() {
                                return Err(Malformed);
                            }
                            found = Some(cookie.trim_matches('"').to_owned());
                        }
                    }
                }
            }
            Ok(found)
        }
        CredentialSource::Query(name) => {
            let mut found = None;
            for pair in uri.query().unwrap_or_default().split('&') {
                let value = pair.split_once('=').map_or("", |(_, value)| value);
                if crate::query::name_is(pair, name) {
                    if found.is_some() {
                        return Err(Malformed);
                    }
                    found = Some(percent_decode(value).ok_or(Malformed)?);
                }
            }
            Ok(found)
        }
    }
}

fn single_header<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Result<Option<&'a str>, Malformed> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Malformed);
    }
    first.to_str().map(|s| Some(s.trim())).map_err(|_| Malformed)
}

/// A query value decoded (`%XX`, `+` as a space); `None` when an escape is malformed or the
/// result is not UTF-8: a credential that cannot be read exactly is refused, not guessed.
fn percent_decode(text: &str) -> Option<String> {
    let malformed = text
        .match_indices('%')
        .any(|(at, _)| text.get(at + 1..at + 3).is_none_or(|hex| !hex.bytes().all(|b| b.is_ascii_hexdigit())));
    if malformed {
        return None;
    }
    String::from_utf8(crate::query::decode(text).into_owned()).ok()
}

/// Removes the credential a header-borne source names, so the upstream never sees it
/// (a query credential is removed with [`strip_query_param`]).
pub(crate) fn strip(source: &CredentialSource, headers: &mut HeaderMap) {
    match source {
        CredentialSource::Bearer => {
            let is_bearer = headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().split_once(' '))
                .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
            if is_bearer {
                headers.remove(AUTHORIZATION);
            }
        }
        CredentialSource::Header(name) => {
            headers.remove(name);
        }
        CredentialSource::Cookie(name) => {
            let kept: Vec<String> = headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .filter(|pair| !pair.is_empty() && pair.split_once('=').is_none_or(|(key, _)| key != &**name))
                .map(str::to_owned)
                .collect();
            headers.remove(COOKIE);
            if !kept.is_empty() {
                if let Ok(value) = HeaderValue::try_from(kept.join("; ")) {
                    headers.insert(COOKIE, value);
                }
            }
        }
        CredentialSource::Query(_) => {}
    }
}

pub(crate) fn strip_query_param(uri: &mut Uri, name: &str) {
    let Some(query) = uri.query() else { return };
    let kept: Vec<&str> = query.split('&').filter(|pair| !crate::query::name_is(pair, name)).collect();
    let mut path_and_query = uri.path().to_owned();
    if !kept.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&kept.join("&"));
    }
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = http::uri::PathAndQuery::try_from(path_and_query) {
        parts.path_and_query = Some(pq);
        if let Ok(stripped) = Uri::from_parts(parts) {
            *uri = stripped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], uri: &str) -> (HeaderMap, Uri) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::try_from(*k).unwrap(), HeaderValue::try_from(*v).unwrap());
        }
        (map, uri.parse().unwrap())
    }

    #[test]
    fn finding_table() {
        let bearer = CredentialSource::Bearer;
        let header = CredentialSource::Header(http::HeaderName::from_static("x-token"));
        let cookie = CredentialSource::Cookie("session".into());
        let query = CredentialSource::Query("access_token".into());
        type Row<'a> = (&'a CredentialSource, Vec<(&'a str, &'a str)>, &'a str, Result<Option<&'a str>, Malformed>);
        let table: Vec<Row> = vec![
            (&bearer, vec![("authorization", "Bearer abc")], "/", Ok(Some("abc"))),
            (&bearer, vec![("authorization", "bearer   abc")], "/", Ok(Some("abc"))),
            (&bearer, vec![("authorization", "Basic dXNlcg==")], "/", Ok(None)),
            (&bearer, vec![("authorization", "Bearer")], "/", Err(Malformed)),
            (&bearer, vec![("authorization", "Bearer a"), ("authorization", "Bearer b")], "/", Err(Malformed)),
            (&bearer, vec![], "/", Ok(None)),
            (&header, vec![("x-token", "t1")], "/", Ok(Some("t1"))),
            (&cookie, vec![("cookie", "a=1; session=tok; b=2")], "/", Ok(Some("tok"))),
            (&cookie, vec![("cookie", "a=1"), ("cookie", "session=x")], "/", Ok(Some("x"))),
            (&cookie, vec![("cookie", "session=x; session=y")], "/", Err(Malformed)),
            (&query, vec![], "/p?x=1&access_token=t%2B1", Ok(Some("t+1"))),
            (&query, vec![], "/p?access_token=a&access_token=b", Err(Malformed)),
            (&query, vec![], "/p?x=1", Ok(None)),
            (&query, vec![], "/p?access%5Ftoken=t", Ok(Some("t"))),
            (&query, vec![], "/p?access_token=a&acc%65ss_token=b", Err(Malformed)),
        ];
        for (source, headers, uri, expected) in table {
            let (map, uri) = request(&headers, uri);
            assert_eq!(find(source, &map, &uri), expected.map(|o| o.map(str::to_owned)), "{source:?} {headers:?}");
        }
    }

    #[test]
    fn stripping() {
        let (mut headers, mut uri) =
            request(&[("cookie", "a=1; session=tok"), ("authorization", "Basic x")], "/p?a=1&access_token=t&b=2");
        strip(&CredentialSource::Cookie("session".into()), &mut headers);
        assert_eq!(headers.get(COOKIE).unwrap(), "a=1");
        strip(&CredentialSource::Bearer, &mut headers);
        assert_eq!(headers.get(AUTHORIZATION).unwrap(), "Basic x", "another scheme's credential stays");
        strip_query_param(&mut uri, "access_token");
        assert_eq!(uri.to_string(), "/p?a=1&b=2");
        let mut encoded = "/p?a=1&access%5Ftoken=t&%61ccess_token=u".parse().unwrap();
        strip_query_param(&mut encoded, "access_token");
        assert_eq!(encoded.to_string(), "/p?a=1", "an encoded name is the same parameter");
        let mut only = "/p?access_token=t".parse().unwrap();
        strip_query_param(&mut only, "access_token");
        assert_eq!(only.to_string(), "/p");
    }
}
