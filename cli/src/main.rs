//! `edgegate`: check a routes file, print its JSON Schema, keep spin.toml in step.

use std::path::PathBuf;
use std::process::ExitCode;

use edgegate_cli::{check_spin_manifest, load, repo_root, routes_path, sync_spin_manifest, ROUTES_ENV};

const USAGE: &str = "usage: edgegate <command> [routes-file]

commands:
  check [FILE]      validate a routes file (default: $GATEWAY_ROUTES or routes.json) and spin.toml
  schema            print the JSON Schema of routes files
  spin-sync [FILE]  set spin.toml allowed_outbound_hosts from the routes file's upstreams";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root(&std::env::current_dir().unwrap_or_default());
    let file = |arg: Option<&String>| -> PathBuf {
        match arg {
            Some(path) => PathBuf::from(path),
            None => routes_path(&root, std::env::var(ROUTES_ENV).ok().as_deref()),
        }
    };
    let manifest_path = root.join("spin.toml");
    match args.first().map(String::as_str) {
        Some("check") => {
            let path = file(args.get(1));
            let gateway = match load(&path) {
                Ok((_, gateway)) => gateway,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            if let Ok(manifest) = std::fs::read_to_string(&manifest_path) {
                if let Err(error) = check_spin_manifest(&manifest, &gateway) {
                    eprintln!("{error}");
                    return ExitCode::FAILURE;
                }
            }
            println!("{}: ok ({} routes)", path.display(), gateway.route_ids().count());
            ExitCode::SUCCESS
        }
        Some("schema") => {
            print!("{}", gateway_core::config::json_schema());
            ExitCode::SUCCESS
        }
        Some("spin-sync") => {
            let path = file(args.get(1));
            let result = load(&path).and_then(|(_, gateway)| {
                let manifest = std::fs::read_to_string(&manifest_path).map_err(|e| format!("spin.toml: {e}"))?;
                let synced = sync_spin_manifest(&manifest, &gateway)?;
                std::fs::write(&manifest_path, synced).map_err(|e| format!("spin.toml: {e}"))
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
