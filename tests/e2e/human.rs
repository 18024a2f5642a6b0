//! Output a person can read: one type per command under `Result`, dry runs without a command,
//! `--output text`, and the GitHub Actions step summary.

use serde_json::Value;

use crate::support::{Ground, Run};

#[test]
fn result_keeps_one_type_per_command_with_the_aws_cli() {
    let g = Ground::start(&[]);
    let query = |output: &str| {
        Run::of(g.cove().args([
            "-t",
            &g.ou("Sandbox"),
            "--",
            "aws",
            "sts",
            "get-caller-identity",
            "--query",
            "Account",
            "--output",
            output,
        ]))
    };
    let text = query("text");
    text.expect_code(0);
    let results = text.list("Results");
    assert_eq!(results.len(), 2);
    for r in &results {
        let id = r["Id"].as_str().unwrap();
        assert_eq!(
            r["Result"],
            Value::String(format!("{id}\n")),
            "an account ID printed as text stays a string, exactly as printed: {r}"
        );
    }
    let json = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--",
        "aws",
        "sts",
        "get-caller-identity",
        "--output",
        "json",
    ]));
    json.expect_code(0);
    for r in json.list("Results") {
        assert!(r["Result"].is_object(), "JSON objects nest: {r}");
        assert_eq!(r["Result"]["Account"], r["Id"]);
    }
    let quoted = query("json");
    for r in quoted.list("Results") {
        assert_eq!(r["Result"], r["Id"], "a JSON string nests as that string");
    }
}
