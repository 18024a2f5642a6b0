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

#[test]
fn a_dry_run_needs_no_command_but_a_run_still_does() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["--dry-run", "-t", &g.ou("Sandbox")]));
    run.expect_code(0);
    let targets = run.doc()["Targets"].as_array().unwrap().clone();
    assert_eq!(targets.len(), 2, "{}", run.stdout);
    assert_eq!(g.calls("sts:AssumeRole"), 0);

    let missing = Run::of(g.cove().args(["-t", &g.ou("Sandbox")]));
    missing.expect_code(2);
    assert!(missing.stdout.is_empty());
    assert!(
        missing
            .stderr
            .contains("the following required arguments were not provided"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("<COMMAND>"), "{}", missing.stderr);

    let misspelt = Run::of(g.cove().args(["--dry-run", "--", "echo", "{acount_id}"]));
    misspelt.expect_code(2);
    assert!(misspelt.stderr.contains("acount_id"), "{}", misspelt.stderr);
    assert_eq!(
        g.calls("sts:GetCallerIdentity"),
        1,
        "only the dry run reached AWS"
    );
}
