//! Header edits and the query-string policy: plain data compiled from routes.json, each with
//! an `apply` that takes the request's context (parameters, identity, client) as input.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::body::{ConsumerField, Placeholder, Template};
use crate::auth::policy::{claim_header_text, ClaimPath};
use crate::auth::Identity;

/// What templates can refer to.
pub(crate) struct Context<'a> {
    pub params: &'a [(&'a str, &'a str)],
    pub identity: &'a Identity,
    pub client_ip: Option<std::net::IpAddr>,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The client's request headers, before any edit.
    pub headers: &'a HeaderMap,
}

impl Context<'_> {
    pub fn lookup(&self, placeholder: &Placeholder) -> Option<String> {
        match placeholder {
            Placeholder::Param(name) => self.params.iter().find(|(n, _)| n == name).map(|(_, v)| (*v).to_owned()),
            Placeholder::Claim(path) => match self.identity {
                Identity::Token { claims } => ClaimPath::parse(path)?.lookup(claims).and_then(claim_header_text),
                _ => None,
            },
            Placeholder::Consumer(field) => match self.identity {
                Identity::Consumer(consumer) => match field {
                    ConsumerField::Id => Some(consumer.id.clone()),
                    ConsumerField::Name => consumer.name.clone(),
                    ConsumerField::Tags => Some(consumer.tags.join(",")),
                },
                _ => None,
            },
            Placeholder::RequestIp => self.client_ip.map(|ip| ip.to_string()),
            Placeholder::RequestId => Some(self.request_id.to_owned()),
            Placeholder::RequestMethod => Some(self.method.to_owned()),
            Placeholder::RequestPath => Some(self.path.to_owned()),
            Placeholder::Header(name) => self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned),
        }
    }
}

/// Compiled header edits, applied in order: remove, rename, set, add.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderEdits {
    pub remove: Box<[HeaderName]>,
    pub rename: Box<[(HeaderName, HeaderName)]>,
    pub set: Box<[(HeaderName, Template)]>,
    pub add: Box<[(HeaderName, Template)]>,
}

impl HeaderEdits {
    /// A `set` whose template cannot be rendered (no such claim, parameter or header) removes
    /// the header: the upstream must never mistake a client's copy for the gateway's word. An
    /// `add` with a missing value adds nothing.
    pub fn apply(&self, headers: &mut HeaderMap, context: &Context<'_>) {
        for name in self.remove.iter() {
            headers.remove(name);
        }
        for (from, to) in self.rename.iter() {
            let values: Vec<HeaderValue> = headers.get_all(from).iter().cloned().collect();
            if values.is_empty() {
                continue;
            }
            headers.remove(from);
            headers.remove(to);
            for value in values {
                headers.append(to, value);
            }
        }
        for (name, template) in self.set.iter() {
            match render_header(template, context) {
                Some(value) => headers.insert(name, value),
                None => headers.remove(name),
            };
        }
        for (name, template) in self.add.iter() {
            if let Some(value) = render_header(template, context) {
                headers.append(name, value);
            }
        }
    }
}

fn render_header(template: &Template, context: &Context<'_>) -> Option<HeaderValue> {
    let (text, missing) = template.render(|p| context.lookup(p));
    if missing {
        return None;
    }
    HeaderValue::try_from(text).ok()
}

/// Which client query parameters pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryMode {
    Pass,
    Allow(Box<[Box<str>]>),
    Deny(Box<[Box<str>]>),
}

/// The query-string policy of a route.
#[derive(Debug, Clone)]
pub(crate) struct QueryPlan {
    pub mode: QueryMode,
    pub add: Box<[(Box<str>, Template)]>,
}

impl QueryPlan {
    /// The query string to forward (without `?`), or `None` for none.
    pub fn apply(&self, query: Option<&str>, context: &Context<'_>) -> Option<String> {
        let mut out = String::new();
        for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            // Compared decoded: `tok%65n` is `token` to the upstream.
            let keep = match &self.mode {
                QueryMode::Pass => true,
                QueryMode::Allow(names) => names.iter().any(|n| crate::query::name_is(pair, n)),
                QueryMode::Deny(names) => !names.iter().any(|n| crate::query::name_is(pair, n)),
            };
            if keep {
                if !out.is_empty() {
                    out.push('&');
                }
                out.push_str(pair);
            }
        }
        for (name, template) in self.add.iter() {
            let (value, missing) = template.render(|p| context.lookup(p));
            if missing {
                continue;
            }
            if !out.is_empty() {
                out.push('&');
            }
            push_encoded(&mut out, name);
            out.push('=');
            push_encoded(&mut out, &value);
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn push_encoded(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX.get(usize::from(byte >> 4)).copied().unwrap_or(b'0')));
            out.push(char::from(HEX.get(usize::from(byte & 0xf)).copied().unwrap_or(b'0')));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn context<'a>(headers: &'a HeaderMap, identity: &'a Identity) -> Context<'a> {
        Context {
            params: &[("id", "42")],
            identity,
            client_ip: Some("203.0.113.9".parse().unwrap()),
            request_id: "rid",
            method: "GET",
            path: "/users/42",
            headers,
        }
    }

    #[test]
    fn query_policies() {
        let headers = HeaderMap::new();
        let identity = Identity::Anonymous;
        let ctx = context(&headers, &identity);
        let plan = |mode, add: Vec<(&str, &str)>| QueryPlan {
            mode,
            add: add.into_iter().map(|(n, t)| (n.into(), Template::parse(t).unwrap())).collect(),
        };
        let allow = plan(QueryMode::Allow(["page".into()].into()), vec![]);
        assert_eq!(allow.apply(Some("page=2&debug=1&page=3"), &ctx).as_deref(), Some("page=2&page=3"));
        let deny = plan(QueryMode::Deny(["debug".into()].into()), vec![("src", "edge {params.id}")]);
        assert_eq!(deny.apply(Some("debug=1&q=x"), &ctx).as_deref(), Some("q=x&src=edge%2042"));
        // Names are compared as the upstream decodes them.
        assert_eq!(deny.apply(Some("d%65bug=1&%64ebug=2&q=x"), &ctx).as_deref(), Some("q=x&src=edge%2042"));
        assert_eq!(allow.apply(Some("p%61ge=2&debug=1"), &ctx).as_deref(), Some("p%61ge=2"));
        let pass = plan(QueryMode::Pass, vec![("u", "{claims.sub}")]);
        assert_eq!(pass.apply(None, &ctx), None, "a missing value adds nothing");
    }

    #[test]
    fn header_edits() {
        let mut client = HeaderMap::new();
        client.insert("x-old", HeaderValue::from_static("v"));
        client.insert("x-debug", HeaderValue::from_static("1"));
        let identity = Identity::Anonymous;
        let snapshot = client.clone();
        let ctx = context(&snapshot, &identity);
        let edits = HeaderEdits {
            remove: [HeaderName::from_static("x-debug")].into(),
            rename: [(HeaderName::from_static("x-old"), HeaderName::from_static("x-new"))].into(),
            set: [(HeaderName::from_static("x-user"), Template::parse("{params.id}@{request.ip}").unwrap())].into(),
            add: [(HeaderName::from_static("x-sub"), Template::parse("{claims.sub}").unwrap())].into(),
        };
        edits.apply(&mut client, &ctx);
        assert!(client.get("x-debug").is_none() && client.get("x-old").is_none());
        assert_eq!(client["x-new"], "v");
        assert_eq!(client["x-user"], "42@203.0.113.9");
        assert!(client.get("x-sub").is_none());
    }
}
