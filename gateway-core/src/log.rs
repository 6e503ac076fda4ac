//! The access-log line: one JSON object per request.

use crate::ports::UnixMillis;

/// What one request did, as logged: one JSON object, fields in this order, `null` where a
/// request has no route or no upstream answer.
#[derive(Debug)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(crate) struct AccessRecord<'a> {
    #[cfg_attr(test, serde(serialize_with = "as_rfc3339"))]
    pub time: UnixMillis,
    pub request_id: &'a str,
    pub route: Option<&'a str>,
    pub method: &'a str,
    /// The path only: the query string is never logged, it may carry secrets.
    pub path: &'a str,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub duration_ms: u64,
    pub upstream_ms: Option<u64>,
    /// Who called: a JWT's `sub` or a consumer id; never the credential.
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub principal: Option<&'a str>,
    /// When the gateway answered itself: the problem's kind (`upstream-unreachable`)...
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub problem: Option<&'static str>,
    /// ...and whose doing it was (`client`, `upstream`, `gateway`).
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub source: Option<&'static str>,
}

impl AccessRecord<'_> {
    /// The JSON line: written directly (the keys are fixed, only values are escaped) into one
    /// buffer sized for a typical line; serde_json took about a tenth of the plain route's
    /// instructions in the core for it (callgrind). Tests hold it to serde_json's output.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"time\":\"");
        write_rfc3339(&mut out, self.time);
        out.push_str("\",\"request_id\":");
        push_json_str(&mut out, self.request_id);
        out.push_str(",\"route\":");
        push_json_opt_str(&mut out, self.route);
        out.push_str(",\"method\":");
        push_json_str(&mut out, self.method);
        out.push_str(",\"path\":");
        push_json_str(&mut out, self.path);
        out.push_str(",\"status\":");
        push_number(&mut out, u64::from(self.status), 1);
        out.push_str(",\"upstream_status\":");
        push_json_opt_number(&mut out, self.upstream_status.map(u64::from));
        out.push_str(",\"duration_ms\":");
        push_number(&mut out, self.duration_ms, 1);
        out.push_str(",\"upstream_ms\":");
        push_json_opt_number(&mut out, self.upstream_ms);
        for (key, value) in [("principal", self.principal), ("problem", self.problem), ("source", self.source)] {
            if let Some(value) = value {
                out.push_str(",\"");
                out.push_str(key);
                out.push_str("\":");
                push_json_str(&mut out, value);
            }
        }
        out.push('}');
        out
    }
}

/// `value` as a JSON string: runs that need no escape are copied whole; `"`, `\\` and control
/// characters are escaped as serde_json escapes them.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    let mut start = 0;
    for (at, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(value.get(start..at).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            for nibble in [byte >> 4, byte & 0xf] {
                out.push(char::from(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0')));
            }
        } else {
            out.push_str(escape);
        }
        start = at + 1;
    }
    out.push_str(value.get(start..).unwrap_or_default());
    out.push('"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_json_opt_str(out: &mut String, value: Option<&str>) {
    match value {
        Some(value) => push_json_str(out, value),
        None => out.push_str("null"),
    }
}

fn push_json_opt_number(out: &mut String, value: Option<u64>) {
    match value {
        Some(value) => push_number(out, value, 1),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
fn as_rfc3339<S: serde::Serializer>(millis: &UnixMillis, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = String::with_capacity(24);
    write_rfc3339(&mut text, *millis);
    serializer.serialize_str(&text)
}

/// Appends `value` in decimal, zero-padded to at least `width` digits.
pub(crate) fn push_number(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while value > 0 || digits.len() - start < width.max(1) {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            *slot = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if start == 0 {
            break;
        }
    }
    out.push_str(digits.get(start..).and_then(|d| std::str::from_utf8(d).ok()).unwrap_or("0"));
}

/// Which requests get an access-log line (`defaults.access_log`, `access_log_sample`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessLogMode {
    All,
    /// Every answer of 400 and above, and the others when a draw falls below this threshold
    /// (the share of the 2^64 draws).
    Sampled(u64),
    /// Status 400 and above.
    Errors,
    Off,
}

impl AccessLogMode {
    /// `share` of the answers below 400 (0 < share ≤ 1).
    pub fn sampled(share: f64) -> Self {
        if share >= 1.0 {
            Self::All
        } else {
            // Exact enough: a share is a rate, not a count.
            Self::Sampled((share * 18_446_744_073_709_551_616.0) as u64)
        }
    }

    /// Whether an answer of `status` gets a line; `draw` is asked for a random number only
    /// when the mode samples.
    pub fn logs(self, status: u16, draw: impl FnOnce() -> u64) -> bool {
        match self {
            Self::All => true,
            Self::Sampled(threshold) => status >= 400 || draw() < threshold,
            Self::Errors => status >= 400,
            Self::Off => false,
        }
    }
}

/// `2026-11-22T02:34:21.123Z` for a Unix time in milliseconds.
#[cfg(test)]
fn rfc3339(millis: UnixMillis) -> String {
    let mut out = String::new();
    write_rfc3339(&mut out, millis);
    out
}

fn write_rfc3339(out: &mut String, millis: UnixMillis) {
    let seconds = millis / 1000;
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Manual digits: `write!` formatting costs more than the rest of the line.
    push_number(out, u64::try_from(year).unwrap_or(0), 4);
    out.push('-');
    push_number(out, u64::try_from(month).unwrap_or(0), 2);
    out.push('-');
    push_number(out, u64::try_from(day).unwrap_or(0), 2);
    out.push('T');
    push_number(out, rem / 3600, 2);
    out.push(':');
    push_number(out, rem % 3600 / 60, 2);
    out.push(':');
    push_number(out, rem % 60, 2);
    out.push('.');
    push_number(out, millis % 1000, 3);
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        for (value, width, expected) in [
            (0, 1, "0"),
            (7, 2, "07"),
            (2026, 4, "2026"),
            (123, 1, "123"),
            (5, 3, "005"),
            (u64::MAX, 1, "18446744073709551615"),
        ] {
            let mut out = String::new();
            push_number(&mut out, value, width);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn the_line_is_what_serde_json_writes() {
        let awkward = "quote \" backslash \\ newline \n tab \t cr \r bell \u{7} nul \u{0} bs \u{8} ff \u{c} us \u{1f} del \u{7f} é 日本 😀";
        let full = AccessRecord {
            time: 1_795_314_861_123,
            request_id: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
            route: Some("users-api"),
            method: "GET",
            path: "/api/users/42",
            status: 200,
            upstream_status: Some(200),
            duration_ms: 12,
            upstream_ms: Some(9),
            principal: Some("user-1"),
            problem: Some("upstream-unreachable"),
            source: Some("upstream"),
        };
        let bare = AccessRecord {
            time: 0,
            request_id: "",
            route: None,
            method: "PATCH",
            path: "/",
            status: 404,
            upstream_status: None,
            duration_ms: 0,
            upstream_ms: None,
            principal: None,
            problem: None,
            source: None,
        };
        let hostile = AccessRecord { route: Some(awkward), path: awkward, principal: Some(awkward), ..bare };
        let large = AccessRecord { duration_ms: u64::MAX, upstream_ms: Some(u64::MAX), status: 599, ..full };
        for record in [full, bare, hostile, large] {
            let line = record.to_json();
            assert_eq!(line, serde_json::to_string(&record).unwrap());
            assert!(serde_json::from_str::<serde_json::Value>(&line).is_ok(), "{line}");
        }
    }

    #[test]
    fn formats_times() {
        for (millis, expected) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_795_314_861_123, "2026-11-22T02:34:21.123Z"),
        ] {
            assert_eq!(rfc3339(millis), expected);
        }
    }
}
