//! Golden routes files: every invalid fixture yields exactly the errors in its `.errors`
//! file (JSON path, reason, hint), and the shipped routes files compile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use gateway_core::Gateway;

#[test]
fn invalid_fixtures_report_every_error_with_its_path() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let expected = std::fs::read_to_string(path.with_extension("errors")).unwrap();
            let errors = Gateway::from_json(&text).expect_err(&path.display().to_string());
            let actual: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert_eq!(actual.join("\n"), expected.trim_end(), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 5);
}

#[test]
fn shipped_routes_files_compile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["routes.json", "tests/conformance/routes.json"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        if let Err(errors) = Gateway::from_json(&text) {
            panic!("{file}: {errors:?}");
        }
    }
}
