//! `edgegate`: check a routes file, print its JSON Schema, keep spin.toml in step, explain a
//! request, turn an OpenAPI description into routes and the routes into one.

mod explain;
mod openapi;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use edgegate_cli::{
    check_spin_manifest, load, openapi_document, repo_root, routes_path, spin_manifest_path, sync_spin_manifest,
    workers_module, ROUTES_ENV, SPIN_MANIFEST_ENV,
};

const USAGE: &str = "usage: edgegate <command> [routes-file]

commands:
  check [--routes-only] [FILE]
                    validate a routes file (default: $GATEWAY_ROUTES or routes.json) and, unless
                    --routes-only, the Spin manifest ($EDGEGATE_SPIN_MANIFEST or spin.toml) against it
  embed FILE OUT    check FILE (routes only) and write it as the Workers bundle's routes
                    module OUT (scripts/build-worker.sh, wrangler's [build] command)
  schema            print the JSON Schema of routes files
  spin-sync [FILE]  set spin.toml allowed_outbound_hosts from the routes file's upstreams
  explain METHOD URL [options]
                    run one request through the gateway without network and print the route,
                    what the upstream gets and what the client gets (explain --help)
  openapi import SPEC [--upstream NAME] [--upstream-url URL] [--prefix /api] [-o FILE]
                    an OpenAPI 3.0/3.1 description (JSON or YAML) as a routes file
  openapi export [--routes FILE]
                    the gateway's public surface as an OpenAPI 3.1 document, on stdout";

const OPENAPI_USAGE: &str = "usage:
  edgegate openapi import SPEC [--upstream NAME] [--upstream-url URL] [--prefix /api] [-o FILE]
      Paths and methods become routes, JSON request schemas validate_body (keywords the
      gateway does not check are listed with their JSON pointer), security schemes auth stubs
      to complete, servers[0] (variables at their defaults) the upstream. Writes the routes
      file to FILE (default: stdout); warnings and what to fill in go to stderr.
  edgegate openapi export [--routes FILE]
      Prints the OpenAPI 3.1 document of the routes file (default: $GATEWAY_ROUTES or
      routes.json): paths, methods and parameters, security from auth, request schemas from
      validate_body, and the problem+json answers the gateway gives itself.";

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
    let asks_help = args.iter().skip(1).any(|a| a == "--help" || a == "-h");
    match args.first().map(String::as_str) {
        Some("check" | "embed" | "schema" | "spin-sync") if asks_help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
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
        Some("embed") => {
            let (Some(path), Some(out)) = (args.get(1), args.get(2)) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            let module = load(Path::new(path)).and_then(|(text, gateway)| workers_module(&text, &gateway));
            match module.and_then(|module| std::fs::write(out, module).map_err(|e| format!("{out}: {e}"))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(errors) => {
                    eprintln!("{errors}");
                    ExitCode::FAILURE
                }
            }
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
                // As the builds embed it: the document openapi.path serves.
                Ok((text, gateway)) => match gateway.openapi_path() {
                    Some(_) => gateway.with_openapi_document(openapi_document(&text).unwrap_or_default().into()),
                    None => gateway,
                },
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
                        use std::io::IsTerminal as _;
                        let report = explained.human();
                        // Colour for a person at a terminal; plain text for pipes and NO_COLOR.
                        if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
                            print!("{}", explain::coloured(&report));
                        } else {
                            print!("{report}");
                        }
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
        Some("openapi") => openapi_command(args.get(1..).unwrap_or_default(), &file(None)),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The value after `flag` in `args`, and whether the flag was there without one.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Result<Option<&'a String>, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => args.get(i + 1).map(Some).ok_or_else(|| format!("{flag} needs a value")),
    }
}

fn openapi_command(args: &[String], default_routes: &std::path::Path) -> ExitCode {
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{OPENAPI_USAGE}");
        return if args.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    }
    let usage = |error: String| {
        eprintln!("edgegate openapi: {error}\n\n{OPENAPI_USAGE}");
        ExitCode::from(2)
    };
    match args.first().map(String::as_str) {
        Some("export") => {
            let path = match flag_value(args, "--routes") {
                Ok(path) => path.map_or_else(|| default_routes.to_path_buf(), PathBuf::from),
                Err(error) => return usage(error),
            };
            let text = match load(&path) {
                Ok((text, _)) => text,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            match serde_json::from_str::<gateway_core::config::RoutesFile>(&text) {
                Ok(file) => {
                    let document = gateway_core::config::openapi::export(&file);
                    println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{}: {error}", path.display());
                    ExitCode::FAILURE
                }
            }
        }
        Some("import") => {
            let Some(spec) = args.get(1).filter(|a| !a.starts_with('-')) else {
                return usage("import needs the description's file".into());
            };
            let options = match (
                flag_value(args, "--upstream"),
                flag_value(args, "--upstream-url"),
                flag_value(args, "--prefix"),
                flag_value(args, "-o"),
            ) {
                (Ok(upstream), Ok(upstream_url), Ok(prefix), Ok(output)) => (
                    openapi::ImportOptions {
                        upstream: upstream.cloned(),
                        upstream_url: upstream_url.cloned(),
                        prefix: prefix.cloned(),
                    },
                    output,
                ),
                (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return usage(e),
            };
            let text = match std::fs::read_to_string(spec) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("{spec}: cannot read: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let imported = match openapi::import(&text, &options.0) {
                Ok(imported) => imported,
                Err(error) => {
                    eprintln!("{spec}: {error}");
                    return ExitCode::FAILURE;
                }
            };
            for warning in &imported.warnings {
                eprintln!("warning: {warning}");
            }
            for item in &imported.to_fill_in {
                eprintln!("fill in: {item}");
            }
            match options.1 {
                Some(output) => {
                    if let Err(error) = std::fs::write(output, &imported.routes) {
                        eprintln!("{output}: {error}");
                        return ExitCode::FAILURE;
                    }
                    eprintln!("{output}: written; `edgegate check --routes-only {output}` passes");
                }
                None => print!("{}", imported.routes),
            }
            ExitCode::SUCCESS
        }
        Some(other) => usage(format!("unknown subcommand {other}")),
        None => usage("import or export?".into()),
    }
}
