//! The json document is kept in a spool, not in memory: an unlinked file in `--output-dir`, or
//! else in the system's temporary directory. It leaves nothing behind, gives the document
//! byte for byte, and a spool that cannot be created loses no target.

use std::path::Path;

use serde_json::Value;

use crate::support::{Ground, Run};

/// Prints the target's account ID and region.
const SCRIPT: &str = "echo \"out $COVE_ACCOUNT_ID $COVE_REGION\"";

fn json_run(g: &Ground, tmpdir: &Path, extra: &[&str]) -> Run {
    Run::of(
        g.cove()
            .env("TMPDIR", tmpdir)
            .args(["-t", &g.ou("Sandbox"), "--region", "us-east-1,eu-west-1"])
            .args(extra)
            .args(["--", "sh", "-c", SCRIPT]),
    )
}

fn expect_every_target(g: &Ground, run: &Run) {
    let mut expected = Vec::new();
    for id in g.ids(&["sandbox-a", "sandbox-b"]) {
        for region in ["eu-west-1", "us-east-1"] {
            expected.push(format!("out {id} {region}\n"));
        }
    }
    expected.sort();
    let got: Vec<String> = run
        .list("Results")
        .iter()
        .map(|r| r["Result"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        got, expected,
        "every target, in order\nstderr: {}",
        run.stderr
    );
}

#[test]
fn a_json_run_leaves_nothing_in_the_temporary_directory() {
    let g = Ground::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let run = json_run(&g, tmp.path(), &[]);
    run.expect_code(0);
    expect_every_target(&g, &run);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the spool is unlinked: {left:?}");
}

#[test]
fn an_empty_tmpdir_counts_as_unset() {
    let g = Ground::start(&[]);
    let run = json_run(&g, Path::new(""), &[]);
    run.expect_code(0);
    expect_every_target(&g, &run);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn stdout_and_results_json_are_the_same_document_compact_and_pretty() {
    let g = Ground::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = json_run(&g, tmp.path(), &["--output-dir", out.to_str().unwrap()]);
    run.expect_code(0);
    expect_every_target(&g, &run);
    let saved = std::fs::read_to_string(out.join("results.json")).unwrap();
    let doc: Value = serde_json::from_str(&saved).unwrap();
    // serde_json's own layouts of the same document, both ways.
    assert_eq!(
        run.stdout,
        format!("{}\n", serde_json::to_string(&doc).unwrap())
    );
    assert_eq!(
        saved,
        format!("{}\n", serde_json::to_string_pretty(&doc).unwrap())
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        names.is_empty(),
        "no spool left in the output directory: {names:?}"
    );
}

#[test]
fn a_temporary_directory_that_cannot_hold_the_spool_loses_no_target() {
    let g = Ground::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let run = json_run(&g, &missing, &[]);
    run.expect_code(0);
    expect_every_target(&g, &run);
    let warning = format!(
        "could not create a temporary file in `{}`",
        missing.display()
    );
    assert_eq!(
        run.stderr.matches(&warning).count(),
        1,
        "said once, naming the directory: {}",
        run.stderr
    );
}
