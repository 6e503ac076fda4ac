//! The access-log line: one JSON object per request.

use crate::ports::UnixMillis;

/// What one request did, as logged: serialized by serde_json, fields in this order, `null`
/// where a request has no route or no upstream answer.
#[derive(Debug, serde::Serialize)]
pub(crate) struct AccessRecord<'a> {
    #[serde(serialize_with = "as_rfc3339")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<&'a str>,
    /// When the gateway answered itself: the problem's kind (`upstream-unreachable`)...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'static str>,
    /// ...and whose doing it was (`client`, `upstream`, `gateway`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
}

impl AccessRecord<'_> {
    /// The JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

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
