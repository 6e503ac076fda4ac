//! Embeds the routes file, and refuses to build when it is invalid or when spin.toml's
//! `allowed_outbound_hosts` does not match its upstreams.
fn main() {
    let result = edgegate_cli::embed_for_build().and_then(|(root, gateway)| {
        println!("cargo:rerun-if-env-changed={}", edgegate_cli::SPIN_MANIFEST_ENV);
        let manifest_path =
            edgegate_cli::spin_manifest_path(&root, std::env::var(edgegate_cli::SPIN_MANIFEST_ENV).ok().as_deref());
        println!("cargo:rerun-if-changed={}", manifest_path.display());
        let manifest =
            std::fs::read_to_string(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
        for route in gateway.websocket_routes() {
            println!(
                "cargo:warning=route \"{route}\" declares websocket, but Spin cannot pass an upgrade on (wasi-http has none): it answers WebSocket upgrades 501"
            );
        }
        let cloudflare_only = gateway.cloudflare_ratelimit_policies();
        if !cloudflare_only.is_empty() {
            return Err(format!(
                "rate_limits {cloudflare_only:?} use backend cloudflare_ratelimit, which exists only on Workers (use the exact backend for Spin)"
            ));
        }
        edgegate_cli::check_spin_manifest(&manifest, &gateway).map_err(|e| format!("{}: {e}", manifest_path.display()))
    });
    if let Err(errors) = result {
        edgegate_cli::fail_build(&errors);
    }
}
