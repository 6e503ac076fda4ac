//! The README's routes.json examples compile (as matchit doctests its README): whole files as
//! they are, and fragments (a top-level member such as `"auth": {...}`, or one route) inside a
//! minimal file that supplies the upstreams and schemes they name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use gateway_core::Gateway;
use serde_json::{json, Map, Value};

fn json_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        if line.trim() == "```json" {
            let block: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| l.trim() != "```").collect();
            blocks.push((number + 1, block.join("\n")));
        }
    }
    blocks
}

/// A fragment as a file: members merged into a minimal file, a route as its only route, and
/// every upstream or auth scheme a route names that the fragment does not define, stubbed.
fn as_file(value: Value) -> Option<Value> {
    let mut file = match value {
        Value::Object(map) if map.contains_key("version") => return Some(Value::Object(map)),
        Value::Object(map) if map.contains_key("match") => {
            json!({"version": 1, "upstreams": {}, "routes": [Value::Object(map)]})
        }
        Value::Object(map) if map.contains_key("type") && map.contains_key("status") => return None,
        Value::Object(members) => {
            let mut file = json!({"version": 1, "upstreams": {}, "routes": []});
            for (key, member) in members {
                file[key.as_str()] = member;
            }
            file
        }
        _ => return None,
    };
    let routes = file["routes"].as_array().cloned().unwrap_or_default();
    if routes.is_empty() {
        let upstream = file["upstreams"].as_object().and_then(|u| u.keys().next().cloned());
        let upstream = upstream.unwrap_or_else(|| "stub".to_owned());
        file["routes"] = json!([{"id": "stub", "match": {"path": "/stub"}, "upstream": upstream}]);
    }
    let named: Vec<String> =
        file["routes"].as_array().unwrap().iter().filter_map(|r| r["upstream"].as_str().map(str::to_owned)).collect();
    let upstreams = file["upstreams"].as_object_mut().unwrap();
    for name in named {
        upstreams.entry(name).or_insert_with(|| json!({"url": "http://stub.internal"}));
    }
    let schemes: Vec<String> = file["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["auth"]["any_of"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let defined = |file: &Value, name: &str| {
        file["auth"]["jwt"].get(name).is_some() || file["auth"]["api_keys"].get(name).is_some()
    };
    for scheme in schemes {
        if !defined(&file, &scheme) {
            if file.get("auth").is_none() {
                file["auth"] = Value::Object(Map::new());
            }
            if file["auth"].get("api_keys").is_none() {
                file["auth"]["api_keys"] = Value::Object(Map::new());
            }
            file["auth"]["api_keys"][scheme.as_str()] = json!({"store": true});
        }
    }
    Some(file)
}

#[test]
fn the_readme_routes_examples_compile() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (line, block) in json_blocks(&readme) {
        // A fragment may be one or more members without their braces.
        let parsed = serde_json::from_str::<Value>(&block).or_else(|_| serde_json::from_str(&format!("{{{block}}}")));
        let Ok(value) = parsed else {
            failures.push(format!("README.md:{line}: not JSON, nor JSON members"));
            continue;
        };
        let Some(file) = as_file(value) else { continue };
        checked += 1;
        if let Err(errors) = Gateway::from_json(&file.to_string()) {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            failures.push(format!("README.md:{line}: {}", errors.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 5, "only {checked} examples were found");
}

#[test]
fn the_example_files_compile() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(errors) = Gateway::from_json(&text) {
                panic!("{}: {errors:?}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} examples");
}
