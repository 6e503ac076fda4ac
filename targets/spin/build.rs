//! Embeds the routes file, and refuses to build when it is invalid or when spin.toml's
//! `allowed_outbound_hosts` does not match its upstreams.
fn main() {
    let result = edgegate_cli::embed_for_build().and_then(|(root, gateway)| {
        let manifest_path = root.join("spin.toml");
        println!("cargo:rerun-if-changed={}", manifest_path.display());
        let manifest = std::fs::read_to_string(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
        edgegate_cli::check_spin_manifest(&manifest, &gateway)
    });
    if let Err(errors) = result {
        edgegate_cli::fail_build(&errors);
    }
}
