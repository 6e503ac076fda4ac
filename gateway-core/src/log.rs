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
        let _ = write!(line, ",\"status\":{},\"upstream_status\":", self.status);
        match self.upstream_status {
            Some(status) => {
                let _ = write!(line, "{status}");
            }
            None => line.push_str("null"),
        }
        let _ = write!(line, ",\"duration_ms\":{},\"upstream_ms\":", self.duration_ms);
        match self.upstream_ms {
            Some(ms) => {
                let _ = write!(line, "{ms}");
            }
            None => line.push_str("null"),
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
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis % 1000
    );
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
