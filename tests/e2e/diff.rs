//! `cove diff OLD NEW` over real AWS CLI outputs of two runs against the ground, between which
//! a tag was added to one account's IAM user and another account left the organization; in
//! every input form (json, jsonl, --output-dir, merged, standard input), with --ignore-path,
//! -o text (colored only on a terminal) and diff(1)'s exit codes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};

use crate::support::{Ground, Run};

/// The command both runs ask every account: the tags of its IAM user `ops`.
fn tags(format: &str) -> [&str; 7] {
    [
        "aws",
        "iam",
        "list-user-tags",
        "--user-name",
        "ops",
        "--output",
        format,
    ]
}

struct Runs {
    dir: tempfile::TempDir,
    sandbox_a: String,
    sandbox_b: String,
    root_a: String,
}

impl Runs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn save(path: &Path, run: &Run) {
    run.expect_code(0);
    std::fs::write(path, &run.stdout).unwrap();
}

/// Two runs in each form, before and after the ground changed.
fn capture(g: &Ground) -> Runs {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox_a, sandbox_b, root_a) = (
        g.account("sandbox-a"),
        g.account("sandbox-b"),
        g.account("root-a"),
    );
    let targets = format!("{},{root_a}", g.ou("Sandbox"));
    let cove = |args: &[&str], command: &[&str]| {
        Run::of(
            g.cove()
                .args(["--target", &targets])
                .args(args)
                .arg("--")
                .args(command),
        )
    };
    cove(
        &["-o", "jsonl"],
        &["aws", "iam", "create-user", "--user-name", "ops"],
    )
    .expect_code(0);
    let out_dir = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    save(
        &dir.path().join("old.jsonl"),
        &cove(
            &["-o", "jsonl", "--output-dir", &out_dir("old-dir")],
            &tags("json"),
        ),
    );
    save(&dir.path().join("old-text.json"), &cove(&[], &tags("text")));

    Run::of(
        g.cove()
            .args(["--target", &sandbox_a, "--", "aws", "iam", "tag-user"])
            .args(["--user-name", "ops", "--tags", "Key=team,Value=blue"]),
    )
    .expect_code(0);
    let removed = g.shell(
        "-c",
        &format!(
            "aws --region us-east-1 organizations remove-account-from-organization --account-id {sandbox_b}"
        ),
        dir.path(),
    );
    assert!(removed.status.success(), "{removed:?}");

    save(
        &dir.path().join("new.json"),
        &cove(&["--output-dir", &out_dir("new-dir")], &tags("json")),
    );
    save(&dir.path().join("new-text.json"), &cove(&[], &tags("text")));
    let merged = Run::of(g.cove().arg("merge").arg(dir.path().join("old.jsonl")));
    save(&dir.path().join("old-merged.json"), &merged);
    Runs {
        dir,
        sandbox_a,
        sandbox_b,
        root_a,
    }
}

fn diff(g: &Ground, args: &[&Path]) -> Run {
    Run::of(g.cove().arg("diff").args(args))
}

/// One pair of runs (they take a while) for the JSON and the text checks.
#[test]
fn two_runs_with_a_tag_added_and_an_account_removed_between_them() {
    let g = Ground::start(&[]);
    let runs = capture(&g);
    every_input_form_gives_the_same_document(&g, &runs);
    text_results_as_a_unified_diff_and_the_text_summary(&g, &runs);
}

fn every_input_form_gives_the_same_document(g: &Ground, runs: &Runs) {
    let p = |name: &str| runs.path(name);

    let main = diff(g, &[&p("old.jsonl"), &p("new.json")]);
    main.expect_code(1);
    assert_eq!(
        main.stdout.trim_end().lines().count(),
        1,
        "compact off a terminal"
    );
    let doc = main.doc();
    assert_eq!(doc["Added"], json!([]));
    assert_eq!(
        doc["Removed"],
        json!([{"Id": runs.sandbox_b, "Region": "us-east-1", "Name": "sandbox-b",
                "Outcome": "Result", "ExitCode": 0}])
    );
    assert_eq!(doc["Unchanged"], 1, "root-a did not change: {doc}");
    let tag = json!({"Key": "team", "Value": "blue"});
    assert_eq!(
        doc["Changed"],
        json!([{
            "Id": runs.sandbox_a, "Region": "us-east-1", "Name": "sandbox-a",
            "Before": {"Outcome": "Result", "ExitCode": 0, "Result": {"Tags": []}},
            "After": {"Outcome": "Result", "ExitCode": 0, "Result": {"Tags": [tag]}},
            "Paths": [{"Path": ".Tags[0]", "After": tag}],
        }])
    );

    // The same comparison from the --output-dir directories, from a merged output, and with
    // NEW on standard input.
    let dirs = diff(g, &[&p("old-dir"), &p("new-dir")]);
    dirs.expect_code(1);
    assert_eq!(dirs.doc(), doc);
    let results_json = diff(g, &[&p("old-dir/results.json"), &p("new.json")]);
    assert_eq!(results_json.doc(), doc);
    let stdin = Run::of(
        g.cove()
            .arg("diff")
            .arg(p("old-merged.json"))
            .arg("-")
            .stdin(Stdio::from(std::fs::File::open(p("new.json")).unwrap())),
    );
    stdin.expect_code(1);
    assert_eq!(stdin.doc(), doc);

    // --ignore-path leaves the tags out: only the removed account is left.
    let ignored = Run::of(
        g.cove()
            .args(["diff", "--ignore-path", ".Tags[]"])
            .arg(p("old.jsonl"))
            .arg(p("new.json")),
    );
    ignored.expect_code(1);
    let ignored = ignored.doc();
    assert_eq!(ignored["Changed"], json!([]));
    assert_eq!(ignored["Unchanged"], 2);
    assert_eq!(ignored["Removed"][0]["Id"], runs.sandbox_b.as_str());

    // A run against itself, in two forms: equal, exit 0.
    let same = diff(g, &[&p("new-dir"), &p("new.json")]);
    same.expect_code(0);
    assert_eq!(
        same.doc(),
        json!({"Added": [], "Removed": [], "Changed": [], "Unchanged": 2})
    );
    assert!(!main.stdout.contains(runs.root_a.as_str()));
}

fn text_results_as_a_unified_diff_and_the_text_summary(g: &Ground, runs: &Runs) {
    let p = |name: &str| runs.path(name);

    let text = diff(g, &[&p("old-text.json"), &p("new-text.json")]);
    text.expect_code(1);
    let doc = text.doc();
    let changed = &doc["Changed"][0];
    assert_eq!(changed["Id"], runs.sandbox_a.as_str());
    assert_eq!(
        changed["Diff"],
        json!(["@@ -0,0 +1 @@", "+TAGS\tteam\tblue"])
    );
    assert_eq!(changed["DiffCapped"], false);
    assert_eq!(changed["Before"]["Result"], "");
    assert!(changed.get("Paths").is_none());

    let summary = Run::of(
        g.cove()
            .args(["diff", "-o", "text"])
            .arg(p("old.jsonl"))
            .arg(p("new.json")),
    );
    summary.expect_code(1);
    let (a, b, root) = (&runs.sandbox_a, &runs.sandbox_b, &runs.root_a);
    assert_eq!(
        summary.stdout,
        format!(
            "0 added, 1 removed, 1 changed, 1 unchanged\n\
             - {b} sandbox-b us-east-1 \"Result\" exit 0\n\
             ~ {a} sandbox-a us-east-1\n    \
             .Tags[0]: (missing) -> {{\"Key\":\"team\",\"Value\":\"blue\"}}\n"
        ),
        "no color off a terminal"
    );
    assert!(!summary.stdout.contains(root.as_str()));
    let lines = Run::of(
        g.cove()
            .args(["diff", "--output", "text"])
            .arg(p("old-text.json"))
            .arg(p("new-text.json")),
    );
    assert!(
        lines.stdout.ends_with(&format!(
            "~ {a} sandbox-a us-east-1\n    @@ -0,0 +1 @@\n    +TAGS\tteam\tblue\n"
        )),
        "{}",
        lines.stdout
    );

    #[cfg(target_os = "linux")]
    {
        let (old, new) = (p("old.jsonl"), p("new.json"));
        let args = [
            "diff",
            "-o",
            "text",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
        ];
        let (code, screen) = crate::support::under_pty(g, &[], &args);
        assert_eq!(code, 1, "{screen}");
        assert!(
            screen.contains(&format!("\x1b[33m~ {a} sandbox-a us-east-1\x1b[0m")),
            "{screen:?}"
        );
        assert!(
            screen.contains(&format!("\x1b[31m- {b} sandbox-b")),
            "{screen:?}"
        );
        let (_, plain) = crate::support::under_pty(g, &[("NO_COLOR", "1")], &args);
        assert!(
            !plain.contains('\x1b') && plain.contains("1 changed"),
            "{plain:?}"
        );
        let (_, pretty) = crate::support::under_pty(
            g,
            &[],
            &args[..1]
                .iter()
                .chain(&args[3..])
                .copied()
                .collect::<Vec<_>>(),
        );
        assert!(
            pretty.contains("\"Added\": []"),
            "pretty on a terminal: {pretty:?}"
        );
    }
}

#[test]
fn errors_exit_2_with_an_empty_stdout() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let good = write(
        "good.json",
        r#"{"Results": [], "Exceptions": [], "FailedAssumeRole": []}"#,
    );
    let foreign = write("foreign.json", r#"{"Items": []}"#);
    let deep = write(
        "deep.json",
        &format!(
            r#"{{"Results": [{{"Id": "1", "Region": "r", "Result": {}}}], "Exceptions": [], "FailedAssumeRole": []}}"#,
            "[".repeat(200_000)
        ),
    );
    let cut = write(
        "cut.jsonl",
        "{\"Id\": \"1\", \"Region\": \"r\", \"Outcome\": \"Result\"}\n",
    );
    let missing = dir.path().join("missing.json");
    let empty_dir = dir.path().join("empty-dir");
    std::fs::create_dir(&empty_dir).unwrap();
    for (args, expected) in [
        (vec![good.clone(), foreign.clone()], "foreign.json"),
        (vec![deep.clone(), good.clone()], "recursion limit"),
        (vec![good.clone(), cut.clone()], "no Summary line"),
        (vec![missing.clone(), good.clone()], "missing.json"),
        (vec![empty_dir.clone(), good.clone()], "results.json"),
        (vec!["-".into(), "-".into()], "both `-`"),
    ] {
        let run = Run::of(g.cove().arg("diff").args(&args));
        run.expect_code(2);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    let bad_path = Run::of(
        g.cove()
            .args(["diff", "--ignore-path", ".Tags[x]"])
            .arg(&good)
            .arg(&good),
    );
    bad_path.expect_code(2);
    assert!(bad_path.stdout.is_empty());
    assert!(
        bad_path.stderr.contains("`.Tags[x]`") && bad_path.stderr.contains("expected a JSON path"),
        "{}",
        bad_path.stderr
    );
    let same = Run::of(g.cove().arg("diff").arg(&good).arg(&good));
    same.expect_code(0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_hostile_file_draws_nothing_on_a_terminal() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let record = |result: Value| {
        json!({"Results": [{"Id": "1\u{1b}]0;pwned\u{7}", "Region": "r\u{202e}",
                            "Name": "evil\u{1b}[2J", "ExitCode": 0, "Result": result}],
               "Exceptions": [], "FailedAssumeRole": []})
    };
    let old = dir.path().join("old.json");
    let new = dir.path().join("new.json");
    std::fs::write(&old, record(json!({"k\u{1b}[2J": "a\u{9b}1m"})).to_string()).unwrap();
    std::fs::write(&new, record(json!({"k\u{1b}[2J": "b"})).to_string()).unwrap();
    let args = [
        "diff",
        "-o",
        "text",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ];
    let (code, screen) = crate::support::under_pty(&g, &[("NO_COLOR", "1")], &args);
    assert_eq!(code, 1, "{screen:?}");
    assert!(
        !screen.contains('\x1b') && !screen.contains('\u{9b}'),
        "{screen:?}"
    );
    assert!(
        !screen.contains('\u{202e}') && !screen.contains('\u{7}'),
        "{screen:?}"
    );
    assert!(screen.contains("evil\\u{1b}[2J"), "{screen:?}");
}
