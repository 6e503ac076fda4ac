//! The access-log line: one JSON object per request.

use std::fmt::Write as _;

use crate::ports::UnixMillis;

/// What one request did, as logged.
#[derive(Debug)]
pub(crate) struct AccessRecord<'a> {
    pub time: UnixMillis,
    pub request_id: &'a str,
    pub route: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub duration_ms: u64,
    pub upstream_ms: Option<u64>,
    /// Who called: a JWT's `sub` or a consumer id; never the credential.
    pub principal: Option<&'a str>,
    /// When the gateway answered itself: the problem's kind, whose doing it was.
    pub problem: Option<crate::problem::ProblemKind>,
}

impl AccessRecord<'_> {
    /// The JSON line. The query string is never logged: it may carry secrets.
    pub fn to_json(&self) -> String {
        let mut line = String::with_capacity(256);
        line.push_str("{\"time\":\"");
        write_rfc3339(&mut line, self.time);
        line.push_str("\",\"request_id\":");
        push_json_string(&mut line, self.request_id);
        line.push_str(",\"route\":");
        match self.route {
            Some(route) => push_json_string(&mut line, route),
            None => line.push_str("null"),
        }
        line.push_str(",\"method\":");
        push_json_string(&mut line, self.method);
        line.push_str(",\"path\":");
        push_json_string(&mut line, self.path);
        line.push_str(",\"status\":");
        push_number(&mut line, u64::from(self.status), 1);
        line.push_str(",\"upstream_status\":");
        match self.upstream_status {
            Some(status) => push_number(&mut line, u64::from(status), 1),
            None => line.push_str("null"),
        }
        line.push_str(",\"duration_ms\":");
        push_number(&mut line, self.duration_ms, 1);
        line.push_str(",\"upstream_ms\":");
        match self.upstream_ms {
            Some(ms) => push_number(&mut line, ms, 1),
            None => line.push_str("null"),
        }
        if let Some(principal) = self.principal {
            line.push_str(",\"principal\":");
            push_json_string(&mut line, principal);
        }
        if let Some(problem) = self.problem {
            line.push_str(",\"problem\":");
            push_json_string(&mut line, problem.name());
            line.push_str(",\"source\":");
            push_json_string(&mut line, problem.source().name());
        }
        line.push('}');
        line
    }
}

fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    if !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(value);
        out.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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

/// `2026-11-22T02:34:21.123Z` for a Unix time in milliseconds.
/// Which requests get an access-log line (`defaults.access_log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessLogMode {
    All,
    /// Status 400 and above.
    Errors,
    Off,
}

impl AccessLogMode {
    pub fn logs(self, status: u16) -> bool {
        match self {
            Self::All => true,
            Self::Errors => status >= 400,
            Self::Off => false,
        }
    }
}

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
    fn escapes_json_strings() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#.replace("\\n", "\\u000a"));
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), "a\"b\\c\nd\u{1}é");
    }

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
