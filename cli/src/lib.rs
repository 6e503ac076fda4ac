//! Tooling around routes.json shared by the `edgegate` command and the adapters' build
//! scripts, so a bad file fails `check`, the Workers build and the Spin build alike.

pub mod locate;

use std::path::{Path, PathBuf};

use gateway_core::Gateway;

/// The environment variable that selects the routes file (default `routes.json`).
pub const ROUTES_ENV: &str = "GATEWAY_ROUTES";

/// The environment variable that selects the Spin manifest checked against the routes
/// file (default `spin.toml`): one manifest per gateway when `GATEWAY_ROUTES` selects another file.
pub const SPIN_MANIFEST_ENV: &str = "EDGEGATE_SPIN_MANIFEST";

/// The Spin manifest to check: `$EDGEGATE_SPIN_MANIFEST` (relative to `root` unless absolute), else `root/spin.toml`.
pub fn spin_manifest_path(root: &Path, env_value: Option<&str>) -> PathBuf {
    match env_value.filter(|v| !v.is_empty()) {
        Some(value) => root.join(value),
        None => root.join("spin.toml"),
    }
}

/// The repository root, from a crate directory inside it.
pub fn repo_root(crate_dir: &Path) -> PathBuf {
    crate_dir
        .ancestors()
        .find(|dir| dir.join("routes.json").is_file() && dir.join("Cargo.toml").is_file())
        .unwrap_or(crate_dir)
        .to_path_buf()
}

/// The routes file to use: `$GATEWAY_ROUTES` (relative to `root` unless absolute), else `root/routes.json`.
pub fn routes_path(root: &Path, env_value: Option<&str>) -> PathBuf {
    match env_value.filter(|v| !v.is_empty()) {
        Some(value) if Path::new(value).is_absolute() => PathBuf::from(value),
        Some(value) => root.join(value),
        None => root.join("routes.json"),
    }
}

/// Reads and compiles a routes file; the error lists every problem, one per line, each
/// prefixed with the file name and, where the JSON path can be followed, the line and column
/// (`routes.json:8:49: routes[3].upstream: ...`).
pub fn load(path: &Path) -> Result<(String, Gateway), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    match Gateway::from_json(&text) {
        Ok(gateway) => Ok((text, gateway)),
        Err(errors) => Err(errors
            .iter()
            .map(|e| match locate::locate(&text, &e.path) {
                Some((line, column)) => format!("{}:{line}:{column}: {e}", path.display()),
                None => format!("{}: {e}", path.display()),
            })
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// The `allowed_outbound_hosts` a Spin manifest must list for this gateway.
pub fn spin_allowed_hosts(gateway: &Gateway) -> Vec<String> {
    gateway.outbound_origins()
}

/// The key-value store label the Spin adapter opens.
pub const SPIN_KV_STORE: &str = "default";

/// Compares a spin.toml with what the gateway needs: `allowed_outbound_hosts` equal to its
/// outbound origins, a variable for every secret, and the `default` key-value store when it
/// uses one. The error names what is missing or extra.
pub fn check_spin_manifest(manifest: &str, gateway: &Gateway) -> Result<(), String> {
    let doc: toml_edit::DocumentMut = manifest.parse::<toml_edit::DocumentMut>().map_err(|e| e.to_string())?;
    let component = doc.get("component").and_then(|c| c.get("edgegate")).ok_or("no [component.edgegate] table")?;
    let mut problems = Vec::new();
    let mut hosts: Vec<String> = string_list(component.get("allowed_outbound_hosts"));
    hosts.sort();
    let wanted = spin_allowed_hosts(gateway);
    if hosts != wanted {
        problems.push(format!("allowed_outbound_hosts is {hosts:?} but the routes file needs {wanted:?}"));
    }
    for name in gateway.secret_names() {
        let declared = doc.get("variables").and_then(|v| v.get(name)).is_some();
        let mapped = component.get("variables").and_then(|v| v.get(name)).is_some();
        if !declared || !mapped {
            problems
                .push(format!("secret \"{name}\" needs [variables].{name} and [component.edgegate.variables].{name}"));
        }
    }
    if gateway.uses_store() && !string_list(component.get("key_value_stores")).iter().any(|s| s == SPIN_KV_STORE) {
        problems.push(format!("key_value_stores must contain \"{SPIN_KV_STORE}\""));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!("[component.edgegate]: {} (run `cargo run -p edgegate-cli -- spin-sync`)", problems.join("; ")))
}

fn string_list(item: Option<&toml_edit::Item>) -> Vec<String> {
    item.and_then(|h| h.as_array())
        .map(|a| a.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The manifest with `allowed_outbound_hosts`, the secret variables and the key-value store
/// set to what the gateway needs; other content is kept.
pub fn sync_spin_manifest(manifest: &str, gateway: &Gateway) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = manifest.parse::<toml_edit::DocumentMut>().map_err(|e| e.to_string())?;
    let secrets = gateway.secret_names();
    if !secrets.is_empty() {
        let variables =
            doc.entry("variables").or_insert(toml_edit::table()).as_table_mut().ok_or("[variables] is not a table")?;
        for name in &secrets {
            if !variables.contains_key(name) {
                let mut declaration = toml_edit::InlineTable::new();
                declaration.insert("required", true.into());
                declaration.insert("secret", true.into());
                variables.insert(name, toml_edit::value(declaration));
            }
        }
    }
    let component = doc
        .get_mut("component")
        .and_then(|c| c.get_mut("edgegate"))
        .and_then(|c| c.as_table_mut())
        .ok_or("no [component.edgegate] table")?;
    let hosts: toml_edit::Array = spin_allowed_hosts(gateway).into_iter().collect();
    component.insert("allowed_outbound_hosts", toml_edit::value(hosts));
    if gateway.uses_store() && !string_list(component.get("key_value_stores")).iter().any(|s| s == SPIN_KV_STORE) {
        let mut stores: toml_edit::Array = string_list(component.get("key_value_stores")).into_iter().collect();
        stores.push(SPIN_KV_STORE);
        component.insert("key_value_stores", toml_edit::value(stores));
    }
    if !secrets.is_empty() {
        let mapped = component
            .entry("variables")
            .or_insert(toml_edit::table())
            .as_table_mut()
            .ok_or("[component.edgegate.variables] is not a table")?;
        for name in &secrets {
            if !mapped.contains_key(name) {
                mapped.insert(name, toml_edit::value(format!("{{{{ {name} }}}}")));
            }
        }
    }
    Ok(doc.to_string())
}

/// The Workers bundle's routes module: the routes file's text and its OpenAPI document (empty
/// when `openapi.path` is not set) as JS string exports, which the Worker's entry hands to the
/// wasm. Keeping them out of the wasm means a routes change rebuilds no Rust.
pub fn workers_module(text: &str, gateway: &Gateway) -> Result<String, String> {
    let document = String::from_utf8(served_openapi_document(text, gateway)?).map_err(|e| e.to_string())?;
    // A JSON string is a JS string literal (U+2028 and U+2029 included, since ES2019).
    let literal = |s: &str| serde_json::to_string(s).map_err(|e| e.to_string());
    Ok(format!(
        "// Generated by `edgegate embed` from the routes file, which it checked first.\n\
         export const routes = {};\nexport const openapi = {};\n",
        literal(text)?,
        literal(&document)?
    ))
}

/// The OpenAPI document `openapi.path` serves, made once at build time; empty when the file
/// does not ask for one.
fn served_openapi_document(text: &str, gateway: &Gateway) -> Result<Vec<u8>, String> {
    match gateway.openapi_path() {
        Some(_) => openapi_document(text),
        None => Ok(Vec::new()),
    }
}

/// For Spin's build script: validates the selected routes file and copies it (and its OpenAPI
/// document) to `OUT_DIR` for `include_str!`. Returns the gateway so a target can check more (e.g. spin.toml).
pub fn embed_for_build() -> Result<(PathBuf, Gateway), String> {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let root = repo_root(&crate_dir);
    let env_value = std::env::var(ROUTES_ENV).ok();
    let path = routes_path(&root, env_value.as_deref());
    println!("cargo:rerun-if-env-changed={ROUTES_ENV}");
    println!("cargo:rerun-if-changed={}", path.display());
    let (text, gateway) = load(&path)?;
    let document = served_openapi_document(&text, &gateway)?;
    std::fs::write(out_dir.join("openapi.json"), document).map_err(|e| e.to_string())?;
    std::fs::write(out_dir.join("routes.json"), text).map_err(|e| e.to_string())?;
    Ok((root, gateway))
}

/// The OpenAPI document of a routes file that compiles, compact.
pub fn openapi_document(text: &str) -> Result<Vec<u8>, String> {
    let file: gateway_core::config::RoutesFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_vec(&gateway_core::config::openapi::export(&file)).map_err(|e| e.to_string())
}

/// Ends a build script with the error list when the routes file is invalid.
pub fn fail_build(message: &str) -> ! {
    eprintln!("\nedgegate: the routes file is invalid; nothing was built.\n{message}\n");
    std::process::exit(1)
}
