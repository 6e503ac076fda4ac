//! Compiles a route's `ip` lists into an [`IpFilter`].

use super::compile::Compiler;
use super::error::ConfigErrorKind as Kind;
use super::model::IpLists;
use crate::ipfilter::{Cidr, IpFilter};

pub(super) fn ip_filter(c: &mut Compiler, at: &str, lists: &IpLists) -> IpFilter {
    let mut parse = |key: &str, list: &[String]| -> Vec<Cidr> {
        let mut out = Vec::new();
        for (i, text) in list.iter().enumerate() {
            match Cidr::parse(text) {
                Ok(cidr) => out.push(cidr),
                Err(reason) => {
                    c.error(Kind::InvalidValue, format!("{at}.{key}[{i}]"), format!("\"{text}\": {reason}")).hint =
                        Some("write an address or a range: \"10.0.0.0/8\", \"2001:db8::/32\", \"203.0.113.7\"".into());
                }
            }
        }
        out
    };
    let allow = parse("allow", &lists.allow);
    let deny = parse("deny", &lists.deny);
    IpFilter { allow, deny }
}
