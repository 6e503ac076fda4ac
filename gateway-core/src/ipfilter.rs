//! IP allow and deny lists: CIDR ranges of IPv4 and IPv6 addresses.
//!
//! * A range is written `10.0.0.0/8`, `2001:db8::/32`, or as a bare address (`192.168.1.7`
//!   is `/32`, `::1` is `/128`). Host bits below the prefix are a configuration error
//!   (`10.0.0.1/8` is refused with "did you mean 10.0.0.0/8?"), as are zone ids, brackets,
//!   whitespace and prefix lengths out of range.
//! * IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are IPv4: a client seen as
//!   `::ffff:10.1.2.3` matches `10.0.0.0/8`, and a range written inside `::ffff:0:0/96`
//!   (`::ffff:10.0.0.0/104`) is stored as the IPv4 range it denotes (`10.0.0.0/8`).
//!   Every other IPv6 range matches IPv6 clients only: `::/0` is "every IPv6 client",
//!   not every client.
//! * [`IpFilter::permits`]: deny wins over allow; a non-empty allow list lets only the
//!   addresses it lists through; with no list configured everything passes. An unknown
//!   client address (`None`) passes only when both lists are empty: with any list configured
//!   it is refused (fail closed), because the filter cannot tell whether it is denied.
//!
//! ```
//! use gateway_core::ipfilter::{Cidr, IpFilter};
//! let filter = IpFilter {
//!     allow: vec![Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("2001:db8::/32").unwrap()],
//!     deny: vec![Cidr::parse("10.0.0.13").unwrap()],
//! };
//! assert!(filter.permits(Some("10.1.2.3".parse().unwrap())));
//! assert!(filter.permits(Some("::ffff:10.1.2.3".parse().unwrap())));
//! assert!(!filter.permits(Some("10.0.0.13".parse().unwrap())));
//! assert!(!filter.permits(Some("192.168.0.1".parse().unwrap())));
//! assert!(!filter.permits(None));
//! assert_eq!(Cidr::parse("10.0.0.1/8").unwrap_err(), "host bits set; did you mean 10.0.0.0/8?");
//! ```

use std::fmt;
use std::net::IpAddr;

/// An IPv4 or IPv6 network: an address whose bits below the prefix are zero, and the
/// prefix length (0–32 for IPv4, 0–128 for IPv6). Built by [`Cidr::parse`]; displayed as
/// `network/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `192.168.1.7` (= `/32`), `2001:db8::/32` or `::1` (= `/128`).
    ///
    /// Host bits set below the prefix are an error (`10.0.0.1/8`: "host bits set; did you
    /// mean 10.0.0.0/8?"). A range inside `::ffff:0:0/96` becomes the IPv4 range it maps.
    /// The error is a reason for a configuration message.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty IP address or CIDR range".to_owned());
        }
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            format!("`{address}` is not an IP address (expected e.g. `10.0.0.0/8`, `192.168.1.7` or `2001:db8::/32`)")
        })?;
        let max = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => max,
            Some(digits) => parse_prefix(digits, max)?,
        };
        let network = mask(address, prefix);
        if network != address {
            return Err(format!("host bits set; did you mean {network}/{prefix}?"));
        }
        // A range inside `::ffff:0:0/96` is the IPv4 range it maps.
        Ok(match network {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr { network: IpAddr::V4(v4), prefix: prefix - 96 },
                None => Cidr { network, prefix },
            },
            network => Cidr { network, prefix },
        })
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length: 0–32 for an IPv4 network, 0–128 for IPv6.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this network. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// match IPv4 ranges; an IPv4 address never matches an IPv6 range, nor the reverse.
    pub fn contains(&self, ip: IpAddr) -> bool {
        // `IpNet::contains` is false across families, as wanted: `::/0` is not every client.
        ipnet::IpNet::new(self.network, self.prefix).is_ok_and(|net| net.contains(&ip.to_canonical()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A prefix length: plain decimal (no sign, spaces or leading zero), at most `max`.
fn parse_prefix(digits: &str, max: u8) -> Result<u8, String> {
    let error = || format!("prefix length `/{digits}` must be a number from 0 to {max}");
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty() || digits.len() > 3 || leading_zero || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    match digits.parse::<u8>() {
        Ok(prefix) if prefix <= max => Ok(prefix),
        _ => Err(error()),
    }
}

/// `ip` with every bit below `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    ipnet::IpNet::new(ip, prefix).map_or(ip, |net| net.network())
}

/// Allow and deny lists of networks.
///
/// Deny wins over allow; with a non-empty allow list only listed addresses pass; with both
/// lists empty every client passes. An unknown client address (`None`) passes only when both
/// lists are empty: with any list configured it is refused (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpFilter {
    /// When non-empty, only addresses in one of these networks pass.
    pub allow: Vec<Cidr>,
    /// Addresses in any of these networks are refused, even when allowed.
    pub deny: Vec<Cidr>,
}

impl IpFilter {
    /// Whether the client at `ip` may pass (`None`: the platform did not say who the client is).
    pub fn permits(&self, ip: Option<IpAddr>) -> bool {
        if self.allow.is_empty() && self.deny.is_empty() {
            return true;
        }
        let Some(ip) = ip else {
            return false;
        };
        !self.deny.iter().any(|cidr| cidr.contains(ip))
            && (self.allow.is_empty() || self.allow.iter().any(|cidr| cidr.contains(ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidrs(texts: &[&str]) -> Vec<Cidr> {
        texts.iter().map(|t| Cidr::parse(t).unwrap()).collect()
    }

    #[test]
    fn parse_accepts_and_normalises() {
        let cases = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.168.1.7", "192.168.1.7/32"),
            ("192.168.1.7/32", "192.168.1.7/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::1", "::1/128"),
            ("::/0", "::/0"),
            ("fe80::/10", "fe80::/10"),
            ("2001:DB8::/48", "2001:db8::/48"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:1.2.3.4", "1.2.3.4/32"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::fffe:0:0/96", "::fffe:0:0/96"),
            ("::/95", "::/95"),
        ];
        for (text, shown) in cases {
            let cidr = Cidr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(cidr.to_string(), shown, "{text}");
        }
        let cidr = Cidr::parse("10.0.0.0/8").unwrap();
        assert_eq!((cidr.network(), cidr.prefix()), (ip("10.0.0.0"), 8));
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("", "empty IP address or CIDR range"),
            ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8?"),
            ("192.168.1.7/24", "host bits set; did you mean 192.168.1.0/24?"),
            ("2001:db8::1/32", "host bits set; did you mean 2001:db8::/32?"),
            ("::1/0", "host bits set; did you mean ::/0?"),
            ("::ffff:10.0.0.1/104", "host bits set; did you mean ::ffff:10.0.0.0/104?"),
            ("10.0.0.0/33", "prefix length `/33` must be a number from 0 to 32"),
            ("::/129", "prefix length `/129` must be a number from 0 to 128"),
            ("10.0.0.0/", "prefix length `/` must be a number from 0 to 32"),
            ("10.0.0.0/+8", "prefix length `/+8` must be a number from 0 to 32"),
            ("10.0.0.0/-1", "prefix length `/-1` must be a number from 0 to 32"),
            ("10.0.0.0/8/8", "prefix length `/8/8` must be a number from 0 to 32"),
            ("10.0.0.0/ 8", "prefix length `/ 8` must be a number from 0 to 32"),
            ("10.0.0.0/0008", "prefix length `/0008` must be a number from 0 to 32"),
            ("10.0.0.0/08", "prefix length `/08` must be a number from 0 to 32"),
            ("::/00", "prefix length `/00` must be a number from 0 to 128"),
            ("10.0.0.0/256", "prefix length `/256` must be a number from 0 to 32"),
        ];
        for (text, reason) in cases {
            assert_eq!(Cidr::parse(text).unwrap_err(), reason, "{text}");
        }
        for text in [
            "10.0.0",
            "10.0.0.256",
            "010.0.0.0",
            " 10.0.0.0",
            "10.0.0.0 ",
            "[::1]",
            "fe80::1%eth0",
            "/8",
            "example.com",
        ] {
            let reason = Cidr::parse(text).unwrap_err();
            assert!(reason.contains("is not an IP address"), "{text}: {reason}");
        }
    }

    #[test]
    fn contains() {
        // (range, address, expected)
        let cases = [
            ("10.0.0.0/8", "10.0.0.0", true),
            ("10.0.0.0/8", "10.255.255.255", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("10.0.0.0/8", "9.255.255.255", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7/32", "192.168.1.8", false),
            ("192.168.1.7", "192.168.1.6", false),
            ("0.0.0.0/0", "1.2.3.4", true),
            ("0.0.0.0/0", "255.255.255.255", true),
            ("0.0.0.0/0", "::1", false),
            ("0.0.0.0/0", "::ffff:1.2.3.4", true),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
            // IPv4-mapped IPv6 clients match IPv4 ranges.
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "::ffff:11.1.2.3", false),
            ("10.0.0.0/8", "::ffff:a01:203", true),
            ("::ffff:10.0.0.0/104", "10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true),
            ("::ffff:1.2.3.4", "1.2.3.4", true),
            // IPv4-compatible (deprecated) addresses are not mapped ones.
            ("10.0.0.0/8", "::10.1.2.3", false),
            // IPv6 ranges match IPv6 clients only.
            ("::/0", "::1", true),
            ("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("::/0", "1.2.3.4", false),
            ("::/0", "::ffff:1.2.3.4", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::1", "::1", true),
            ("::1/128", "::2", false),
            ("::1", "0.0.0.1", false),
            ("2001:db8::1/128", "2001:db8::1", true),
            ("2001:db8::/127", "2001:db8::1", true),
            ("2001:db8::/127", "2001:db8::2", false),
            ("fe80::/10", "febf::1", true),
            ("fe80::/10", "fec0::1", false),
        ];
        for (range, address, expected) in cases {
            assert_eq!(Cidr::parse(range).unwrap().contains(ip(address)), expected, "{range} ∋ {address}");
        }
    }

    #[test]
    fn permits() {
        // (allow, deny, client, expected)
        type Case<'a> = (&'a [&'a str], &'a [&'a str], Option<&'a str>, bool);
        let cases: &[Case] = &[
            // No list: everyone, even an unknown client.
            (&[], &[], Some("1.2.3.4"), true),
            (&[], &[], Some("::1"), true),
            (&[], &[], None, true),
            // Allow list only.
            (&["10.0.0.0/8"], &[], Some("10.1.1.1"), true),
            (&["10.0.0.0/8"], &[], Some("11.1.1.1"), false),
            (&["10.0.0.0/8"], &[], Some("::ffff:10.1.1.1"), true),
            (&["10.0.0.0/8"], &[], Some("2001:db8::1"), false),
            (&["10.0.0.0/8", "2001:db8::/32"], &[], Some("2001:db8::1"), true),
            (&["10.0.0.0/8"], &[], None, false),
            // Deny list only.
            (&[], &["10.0.0.0/8"], Some("10.1.1.1"), false),
            (&[], &["10.0.0.0/8"], Some("::ffff:10.1.1.1"), false),
            (&[], &["10.0.0.0/8"], Some("11.1.1.1"), true),
            (&[], &["10.0.0.0/8"], Some("::1"), true),
            (&[], &["10.0.0.0/8"], None, false),
            (&[], &["0.0.0.0/0", "::/0"], Some("::1"), false),
            // Deny wins over allow.
            (&["10.0.0.0/8"], &["10.0.0.13"], Some("10.0.0.13"), false),
            (&["10.0.0.0/8"], &["10.0.0.13"], Some("10.0.0.14"), true),
            (&["10.0.0.13"], &["10.0.0.0/8"], Some("10.0.0.13"), false),
            (&["0.0.0.0/0"], &["0.0.0.0/0"], Some("1.1.1.1"), false),
            (&["::/0"], &["2001:db8::/32"], Some("2001:db8::5"), false),
            (&["::/0"], &["2001:db8::/32"], Some("2001:db9::5"), true),
            (&["::/0"], &["2001:db8::/32"], Some("1.2.3.4"), false),
            (&["::/0"], &["2001:db8::/32"], None, false),
        ];
        for &(allow, deny, client, expected) in cases {
            let filter = IpFilter { allow: cidrs(allow), deny: cidrs(deny) };
            assert_eq!(filter.permits(client.map(ip)), expected, "allow {allow:?} deny {deny:?} client {client:?}");
        }
        assert!(IpFilter::default().permits(None));
    }
}
