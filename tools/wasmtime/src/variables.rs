//! `fermyon:spin/variables@2.0.0`: `--var NAME=VALUE` flags first, then the
//! environment variable `SPIN_VARIABLE_<NAME uppercased>` (like Spin's env
//! provider); otherwise `error::undefined`.

use crate::bindings::fermyon::spin::variables::{self, Error};
use crate::State;

/// Spin's variable-name rules: non-empty; only `a-z`, `0-9` and `_`; starts
/// with a letter; ends with a letter or digit; no `__`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let (Some(first), Some(last)) = (name.bytes().next(), name.bytes().last()) else {
        return Err("must not be empty".to_string());
    };
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return Err(format!(
            "invalid character {c:?}; variable names may contain only lower-case letters, numbers and underscores"
        ));
    }
    if !first.is_ascii_lowercase() {
        return Err("must start with a lowercase ASCII letter".to_string());
    }
    if !last.is_ascii_alphanumeric() {
        return Err("must end with a lowercase ASCII letter or digit".to_string());
    }
    if name.contains("__") {
        return Err("must not contain multiple consecutive underscores".to_string());
    }
    Ok(())
}

impl variables::Host for State {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if let Err(reason) = validate_name(&name) {
            return Ok(Err(Error::InvalidName(format!("{name:?}: {reason}"))));
        }
        if let Some(v) = self.shared.vars.get(&name) {
            return Ok(Ok(v.clone()));
        }
        let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
        match std::env::var(&env_name) {
            Ok(v) => Ok(Ok(v)),
            Err(_) => {
                Ok(Err(Error::Undefined(format!("no variable {name:?} (pass --var {name}=VALUE or set {env_name})"))))
            }
        }
    }
}
