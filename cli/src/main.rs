//! `edgegate`: check a routes file, print its JSON Schema, keep spin.toml in step, explain a
//! request.

mod explain;

use std::path::PathBuf;
use std::process::ExitCode;

use edgegate_cli::{
    check_spin_manifest, load, repo_root, routes_path, spin_manifest_path, sync_spin_manifest, ROUTES_ENV,
    SPIN_MANIFEST_ENV,
};

const USAGE: &str = "usage: edgegate <command> [routes-file]

commands:
  check [--routes-only] [FILE]
                    validate a routes file (default: $GATEWAY_ROUTES or routes.json) and, unless
                    --routes-only, the Spin manifest ($EDGEGATE_SPIN_MANIFEST or spin.toml) against it
  schema            print the JSON Schema of routes files
  spin-sync [FILE]  set spin.toml allowed_outbound_hosts from the routes file's upstreams
  explain METHOD URL [options]
                    run one request through the gateway without network and print the route,
                    what the upstream gets and what the client gets (explain --help)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root(&std::env::current_dir().unwrap_or_default());
    let file = |arg: Option<&String>| -> PathBuf {
        match arg {
            Some(path) => PathBuf::from(path),
            None => routes_path(&root, std::env::var(ROUTES_ENV).ok().as_deref()),
        }
    };
    let manifest_path = spin_manifest_path(&root, std::env::var(SPIN_MANIFEST_ENV).ok().as_deref());
    match args.first().map(String::as_str) {
        Some("check") => {
            let routes_only = args.get(1).is_some_and(|a| a == "--routes-only");
            let path = file(args.get(if routes_only { 2 } else { 1 }));
            let gateway = match load(&path) {
                Ok((_, gateway)) => gateway,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(manifest) = std::fs::read_to_string(&manifest_path).ok().filter(|_| !routes_only) {
                if let Err(error) = check_spin_manifest(&manifest, &gateway) {
                    eprintln!("{}: {error}", manifest_path.display());
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
                let manifest =
                    std::fs::read_to_string(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
                let synced = sync_spin_manifest(&manifest, &gateway)?;
                std::fs::write(&manifest_path, synced).map_err(|e| format!("{}: {e}", manifest_path.display()))
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("explain") => {
            let rest = args.get(1..).unwrap_or_default();
            if rest.iter().any(|a| a == "--help" || a == "-h") {
                println!("{}", explain::USAGE);
                return ExitCode::SUCCESS;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let ask = match explain::parse(rest, now) {
                Ok(ask) => ask,
                Err(error) => {
                    eprintln!("edgegate explain: {error}\n\n{}", explain::USAGE);
                    return ExitCode::from(2);
                }
            };
            let path = ask.routes.as_ref().map_or_else(|| file(None), PathBuf::from);
            let gateway = match load(&path) {
                Ok((_, gateway)) => gateway,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(2);
                }
            };
            match explain::explain(&gateway, &ask) {
                Ok(explained) => {
                    if ask.json {
                        println!("{}", explained.json());
                    } else {
                        print!("{}", explained.human());
                    }
                    if explained.reached_upstream() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(error) => {
                    eprintln!("edgegate explain: {error}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
