//! The guide's jq recipes (docs/output.md), run as written against the emulator, each with
//! what it must print.

use std::path::Path;

use serde_json::Value;

use crate::support::{Ground, Run};

/// The recipes: each `# comment` line starts one, and the lines after it are its commands.
fn recipes() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/output.md"))
            .expect("docs/output.md");
    let section = readme
        .split("## jq recipes")
        .nth(1)
        .expect("a `## jq recipes` section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh code block in the jq recipes section");
    let mut recipes: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if let Some(title) = line.strip_prefix("# ") {
            recipes.push((title.to_owned(), String::new()));
        } else if let Some((_, body)) = recipes.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    recipes
}

/// Runs a recipe; `must_succeed` for the ones that end in jq (cove's own exit code is 1 when
/// a target failed, as it should be).
fn run_recipe(g: &Ground, dir: &Path, body: &str, must_succeed: bool) -> String {
    let out = g.shell("-c", body, dir);
    assert!(
        out.status.success() || !must_succeed,
        "recipe failed: {body}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn readme_jq_recipes_work_against_the_emulator() {
    let g = Ground::start(&["--deny-assume-names", "sandbox-a"]);
    let dir = tempfile::tempdir().unwrap();
    // A bucket for the "resource exists" recipe, made through cove itself.
    Run::of(g.cove().args([
        "-t",
        &g.account("root-a"),
        "--",
        "aws",
        "s3api",
        "create-bucket",
        "--bucket",
        "audit-root-a",
    ]))
    .expect_code(0);

    let recipes = recipes();
    let titles: Vec<&str> = recipes.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        recipes.len(),
        5,
        "update this test with docs/output.md: {titles:?}"
    );
    let denied = g.account("sandbox-a");

    let failures: Value =
        serde_json::from_str(&run_recipe(&g, dir.path(), &recipes[0].1, true)).unwrap();
    assert_eq!(failures.as_array().unwrap().len(), 1, "{}", recipes[0].0);
    assert_eq!(failures[0]["Id"], denied.as_str());

    let csv = run_recipe(&g, dir.path(), &recipes[1].1, true);
    assert_eq!(csv.lines().count(), 8, "{}: {csv}", recipes[1].0);
    assert!(
        csv.lines()
            .all(|l| l.starts_with('"') && l.split(',').count() >= 3),
        "{csv}"
    );
    assert!(
        csv.contains("\"Account\""),
        "JSON results are kept as JSON text: {csv}"
    );

    let counts: Value =
        serde_json::from_str(&run_recipe(&g, dir.path(), &recipes[2].1, true)).unwrap();
    let count_of = |code: Value| {
        counts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["ExitCode"] == code)
            .map(|c| c["Count"].clone())
    };
    assert_eq!(count_of(Value::Null), Some(1.into()), "{counts}");
    assert_eq!(
        count_of(0.into()),
        Some(1.into()),
        "root-a has a bucket: {counts}"
    );
    assert_eq!(count_of(1.into()), Some(7.into()), "{counts}");

    let found = run_recipe(&g, dir.path(), &recipes[3].1, true);
    assert_eq!(
        found,
        format!("{}\troot-a\n", g.account("root-a")),
        "{}",
        recipes[3].0
    );

    let reruns = run_recipe(&g, dir.path(), &recipes[4].1, false);
    let docs: Vec<Value> = reruns
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{}: {reruns}", recipes[4].0);
    let records = |doc: &Value| {
        ["Results", "Exceptions", "FailedAssumeRole"]
            .iter()
            .map(|l| doc[l].as_array().unwrap().len())
            .sum::<usize>()
    };
    assert_eq!(records(&docs[0]), 8, "every failed account, by ID");
    assert_eq!(records(&docs[1]), 8, "exactly the failed pairs");
}
