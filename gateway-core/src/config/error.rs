//! Configuration errors: what is wrong ([`ConfigErrorKind`]), where (the JSON path, then the
//! line and column the CLI adds), and a hint; `did_you_mean` for names close to a known one.

use std::fmt;

/// What is wrong with a routes file. Every variant names one rule of the file format;
/// the message in [`ConfigError`] says which value broke it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file is not JSON.
    Syntax,
    /// A key the format does not know (often a typo).
    UnknownField,
    /// A required key is missing.
    MissingField,
    /// A value has the wrong JSON type or is outside its allowed range or form.
    InvalidValue,
    /// `version` is not one this gateway reads.
    UnsupportedVersion,
    /// A route names an upstream that is not declared.
    UnknownUpstream,
    /// Two routes share an id.
    DuplicateRouteId,
    /// A path template is not valid.
    InvalidPathTemplate,
    /// Two routes match the same requests, so one could never be taken.
    ConflictingRoutes,
    /// A rewrite template names a parameter the path does not capture.
    UnknownParameter,
    /// A route names an auth scheme that is not declared.
    UnknownScheme,
    /// A route names a rate-limit policy that is not declared.
    UnknownPolicy,
}

/// One error in a routes file: where (a JSON path such as `routes[3].upstream`), why,
/// and, where one can be given, a hint.
///
/// ```
/// let errors = gateway_core::Gateway::from_json(r#"{"version": 1, "upstreams": {"users": {"url": "http://127.0.0.1:9000"}},
///   "routes": [{"id": "u", "match": {"path": "/u"}, "upstream": "user"}]}"#).unwrap_err();
/// assert_eq!(errors[0].to_string(), r#"routes[0].upstream: unknown upstream "user" (did you mean "users"?)"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The rule that was broken.
    pub kind: ConfigErrorKind,
    /// JSON path of the offending value (`$` for the whole file).
    pub path: String,
    /// What is wrong, naming the offending value.
    pub reason: String,
    /// How to fix it, when the gateway can tell.
    pub hint: Option<String>,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { kind, path: path.into(), reason: reason.into(), hint: None }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean \"{c}\"?"))
}

// Indices stay within the two rows by construction; this runs at config time only.
#[allow(clippy::indexing_slicing)]
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_names() {
        let names = ["users", "orders", "billing"];
        let table = [
            ("user", Some("did you mean \"users\"?")),
            ("order", Some("did you mean \"orders\"?")),
            ("biling", Some("did you mean \"billing\"?")),
            ("payments", None),
        ];
        for (word, expected) in table {
            assert_eq!(did_you_mean(word, names).as_deref(), expected, "{word}");
        }
    }
}
