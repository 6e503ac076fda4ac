//! Route matching: a pure function of the compiled routes and the request line.
//!
//! Priority, highest first:
//! 1. the path: a literal segment beats a `{param}`, which beats a `{*catch_all}`;
//! 2. among routes with the same path template: an exact `host` beats a wildcard host
//!    (the longer wildcard first), which beats no host;
//! 3. then the route with more header conditions;
//! 4. then the route written first.
//!
//! Two routes with the same path template, host and headers whose methods overlap would
//! shadow each other; that is a configuration error, not a tie-break.

use http::{HeaderMap, Method};

use crate::route::{CompiledRoute, HostPattern};

#[derive(Debug, Default)]
pub(crate) struct Router {
    paths: matchit::Router<usize>,
    /// Per path template, route indices in priority order.
    candidates: Box<[Box<[usize]>]>,
    /// Each route's path template, by route index (for [`Router::near_misses`]).
    templates: Box<[Box<str>]>,
}

/// Why routes cannot be built as written; config turns each into a located `ConfigError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouterError {
    /// Route `route`'s path template conflicts with another (`with`, as matchit names it;
    /// `other`: the route that holds it, when known).
    Conflict { route: usize, template: String, with: String, other: Option<usize> },
    /// Route `route`'s path template is not a template matchit accepts.
    InvalidTemplate { route: usize, template: String, reason: String },
    /// Route `route` matches the same requests as the earlier route `first`.
    Shadowed { route: usize, first: usize },
}

/// The outcome of matching one request.
#[derive(Debug)]
pub(crate) enum RouteMatch<'r, 'p> {
    Found {
        route: usize,
        params: matchit::Params<'r, 'p>,
    },
    /// The path matched but no route accepts the method; the methods that would.
    MethodNotAllowed {
        allow: Vec<Method>,
    },
    NotFound,
}

impl Router {
    /// The router for `routes`, given each route's path template; with it, every route that
    /// cannot be matched as written.
    pub fn build(routes: &[CompiledRoute], templates: &[(String, usize)]) -> (Self, Vec<RouterError>) {
        let mut errors = Vec::new();
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (template, index) in templates {
            match groups.iter_mut().find(|(t, _)| *t == template.as_str()) {
                Some((_, members)) => members.push(*index),
                None => groups.push((template, vec![*index])),
            }
        }
        let mut paths = matchit::Router::new();
        let mut candidates = Vec::with_capacity(groups.len());
        for (template, mut members) in groups {
            let first = members.first().copied().unwrap_or_default();
            if let Err(error) = paths.insert(template, candidates.len()) {
                errors.push(match error {
                    matchit::InsertError::Conflict { with } => {
                        let other = templates.iter().find(|(t, _)| *t == with).map(|(_, i)| *i);
                        RouterError::Conflict { route: first, template: template.to_owned(), with, other }
                    }
                    other => RouterError::InvalidTemplate {
                        route: first,
                        template: template.to_owned(),
                        reason: other.to_string(),
                    },
                });
                continue;
            }
            // Stable sort keeps file order as the last tie-break.
            members.sort_by_key(|&i| {
                routes.get(i).map(|r| {
                    (std::cmp::Reverse(HostPattern::specificity(r.host.as_ref())), std::cmp::Reverse(r.headers.len()))
                })
            });
            report_shadowing(routes, &members, &mut errors);
            candidates.push(members.into_boxed_slice());
        }
        let mut by_route = vec![Box::<str>::from(""); routes.len()];
        for (template, index) in templates {
            if let Some(slot) = by_route.get_mut(*index) {
                *slot = template.as_str().into();
            }
        }
        (Self { paths, candidates: candidates.into(), templates: by_route.into() }, errors)
    }

    /// For a request no route takes: each route that fails at most one of its conditions, and
    /// what that condition asks for (the path first, then host, headers, method). Diagnostics
    /// only (`edgegate explain`): it builds a matcher per route.
    pub fn near_misses(
        &self,
        routes: &[CompiledRoute],
        method: &Method,
        host: Option<&str>,
        headers: &HeaderMap,
        path: &str,
    ) -> Vec<(usize, Vec<String>)> {
        let mut misses = Vec::new();
        for (index, (route, template)) in routes.iter().zip(self.templates.iter()).enumerate() {
            let mut reasons = Vec::new();
            let mut single = matchit::Router::new();
            if single.insert(&**template, ()).is_err() || single.at(path).is_err() {
                reasons.push(format!("the path {path} does not fit {template}"));
            }
            if let Some(pattern) = &route.host {
                if !host.is_some_and(|h| pattern.matches(h)) {
                    let wanted = match pattern {
                        HostPattern::Exact(exact) => exact.to_string(),
                        HostPattern::Suffix(suffix) => format!("*{suffix}"),
                    };
                    reasons.push(format!("the host {} is not {wanted}", host.unwrap_or("(none)")));
                }
            }
            for (name, value) in route.headers.iter() {
                if !headers.get_all(name).iter().any(|v| v == value) {
                    reasons.push(format!("the header {name} must be {}", String::from_utf8_lossy(value.as_bytes())));
                }
            }
            if !route.accepts_method(method) {
                let allowed: Vec<&str> = route.methods.iter().flatten().map(Method::as_str).collect();
                reasons.push(format!("the method {method} is not one of {}", allowed.join(", ")));
            }
            if reasons.len() == 1 {
                misses.push((index, reasons));
            }
        }
        // A route that only misses on the path is worth naming when no route fits the path,
        // and then only if it starts like the request (the same first segment).
        let fits_some = misses.iter().any(|(_, reasons)| reasons.iter().all(|r| !r.starts_with("the path")));
        let first = |p: &str| p.trim_start_matches('/').split('/').next().unwrap_or_default().to_owned();
        let request_first = first(path);
        misses.retain(|(i, reasons)| {
            let path_only = reasons.iter().any(|r| r.starts_with("the path"));
            !path_only || (!fits_some && self.templates.get(*i).is_some_and(|t| first(t) == request_first))
        });
        misses
    }

    /// Finds the route for a request. `path` is the raw (percent-encoded) path; `host` has no port.
    pub fn find<'r, 'p>(
        &'r self,
        routes: &[CompiledRoute],
        method: &Method,
        host: Option<&str>,
        headers: &HeaderMap,
        path: &'p str,
    ) -> RouteMatch<'r, 'p> {
        let Ok(matched) = self.paths.at(path) else {
            return RouteMatch::NotFound;
        };
        let Some(members) = self.candidates.get(*matched.value) else {
            return RouteMatch::NotFound;
        };
        let mut any_conditions_met = false;
        for &index in members.iter() {
            let Some(route) = routes.get(index) else { continue };
            if !route.accepts_host_and_headers(host, headers) {
                continue;
            }
            if route.accepts_method(method) {
                return RouteMatch::Found { route: index, params: matched.params };
            }
            any_conditions_met = true;
        }
        if !any_conditions_met {
            return RouteMatch::NotFound;
        }
        let mut allow: Vec<Method> = Vec::new();
        for route in members.iter().filter_map(|&i| routes.get(i)) {
            if route.accepts_host_and_headers(host, headers) {
                for method in route.methods.iter().flatten() {
                    if !allow.contains(method) {
                        allow.push(method.clone());
                    }
                }
            }
        }
        RouteMatch::MethodNotAllowed { allow }
    }
}

fn report_shadowing(routes: &[CompiledRoute], members: &[usize], errors: &mut Vec<RouterError>) {
    for (position, &later) in members.iter().enumerate() {
        for &earlier in members.iter().take(position) {
            let (Some(a), Some(b)) = (routes.get(earlier), routes.get(later)) else { continue };
            let overlap = match (&a.methods, &b.methods) {
                (Some(x), Some(y)) => x.iter().any(|m| y.contains(m)),
                _ => true,
            };
            if a.host == b.host && a.headers == b.headers && overlap {
                let (first, second) = if earlier < later { (earlier, later) } else { (later, earlier) };
                errors.push(RouterError::Shadowed { route: second, first });
            }
        }
    }
}
