//! Hostile account names: an account's admin chooses its name, so `{account_name}` must never
//! become code, a path outside its folder, an option, or a terminal escape.

use serde_json::{Value, json};

use crate::support::{Ground, Run};

/// The shell forms that reach `sh -c`'s script with the name in it: all refused.
fn shell_forms(script: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["sh", "-c", script],
        vec!["/bin/sh", "-c", script],
        vec!["env", "FOO=1", "bash", "-c", script],
        vec!["env", "-i", "sh", "-c", script],
        vec![
            "/usr/bin/env",
            "-u",
            "HOME",
            "--",
            "/bin/bash",
            "-c",
            script,
        ],
        vec!["bash", "-ec", script],
        vec!["sh", "-xc", script],
        vec!["bash", "-lc", script],
        vec!["bash", "-o", "pipefail", "-c", script],
        vec!["sh", "-c", "--", script],
        vec!["dash", "-c", script],
        vec!["timeout", "60", "sh", "-c", script],
        vec![
            "python3",
            "-c",
            "import os; os.system('true {account_name}')",
        ],
    ]
}

#[test]
fn the_account_name_in_a_shell_script_is_refused_before_any_aws_call() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("PWNED");
    let name = format!("x$(touch {})", pwned.display());
    let g = Ground::start(&["--rename", &format!("prod-a={name}")]);
    let prod = g.account("prod-a");
    for form in shell_forms("echo \"report for {account_name}\"") {
        let run = Run::of(g.cove().args(["-t", &prod, "--"]).args(&form));
        run.expect_code(2);
        assert!(
            run.stderr.contains("\"$COVE_ACCOUNT_NAME\"") && run.stderr.contains("as code"),
            "{form:?}: the message says why and shows the safe form: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{form:?}: {}", run.stdout);
        assert!(!pwned.exists(), "{form:?} ran the account name as code");
    }
    assert_eq!(g.all_calls(), json!({}), "a refused command reached AWS");

    // The safe forms: the variable, or the name as an argument after the script.
    let safe: [&[&str]; 2] = [
        &["sh", "-c", "echo \"report for $COVE_ACCOUNT_NAME\""],
        &["sh", "-c", "echo \"report for $1\"", "sh", "{account_name}"],
    ];
    for form in safe {
        let run = Run::of(g.cove().args(["-t", &prod, "--"]).args(form));
        run.expect_code(0);
        let results = run.list("Results");
        assert_eq!(
            results[0]["Result"],
            Value::String(format!("report for {name}\n")),
            "{form:?}"
        );
        assert!(!pwned.exists(), "{form:?} ran the account name as code");
    }
    // The other placeholders are checked values: allowed in a script.
    let run = Run::of(g.cove().args([
        "-t",
        &prod,
        "--",
        "sh",
        "-c",
        "echo {account_id} {region} {partition}",
    ]));
    run.expect_code(0);
    assert_eq!(
        run.list("Results")[0]["Result"],
        Value::String(format!("{prod} us-east-1 aws\n"))
    );
}

#[test]
fn hostile_names_fail_their_target_and_never_become_paths_outside_or_options() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("a/b/reports");
    std::fs::create_dir_all(&reports).unwrap();
    let absolute = dir.path().join("absolute");
    let g = Ground::start(&[
        "--rename",
        "core-a=../../escape",
        "--rename",
        "deep-a=--version",
        "--rename",
        &format!("deep-b={}", absolute.display()),
        "--rename",
        r"sandbox-a=bell\u0007\u001b]0;title\u0007",
        "--rename",
        "sandbox-b=Prod (EU) $x;`y` | [a](b)",
    ]);
    let hostile = [
        ("core-a", "`..`"),
        ("deep-a", "an option"),
        ("deep-b", "absolute path"),
        ("sandbox-a", "control character"),
    ];
    let mut cove = g.cove();
    for (account, _) in &hostile {
        cove.args(["-t", &g.account(account)]);
    }
    let run = Run::of(
        cove.args([
            "-t",
            &g.account("sandbox-b"),
            "--",
            "touch",
            "{account_name}",
        ])
        .current_dir(&reports),
    );
    run.expect_code(1);

    assert!(
        !dir.path().join("a/escape").exists(),
        "`..` left the folder"
    );
    assert!(!absolute.exists(), "a name became an absolute path");
    let made: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        made,
        ["Prod (EU) $x;`y` | [a](b)"],
        "only the ordinary name made its file"
    );
    assert_eq!(run.ids("Results"), [g.account("sandbox-b")]);

    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), hostile.len(), "{}", run.stdout);
    for (account, why) in hostile {
        let r = exceptions
            .iter()
            .find(|r| r["Id"] == g.account(account))
            .unwrap_or_else(|| panic!("{account} is not in Exceptions: {}", run.stdout));
        let details = r["ExceptionDetails"].as_str().unwrap();
        assert!(
            details.contains(why) && details.contains("the command did not run"),
            "{account}: {details}"
        );
        assert_eq!(r["ExitCode"], Value::Null, "{account} ran: {r}");
        assert_eq!(r["Result"], Value::Null, "{account} ran: {r}");
        assert_eq!(r["AssumeRoleSuccess"], true, "{r}");
    }
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
        "a name's control characters reached the terminal: {:?}",
        run.stderr
    );
}

#[test]
fn ids_and_regions_read_back_from_files_reach_the_terminal_escaped() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, id: &str, region: &str| {
        let record = json!({"Id": id, "Region": region, "ExitCode": 1});
        let doc = json!({"Results": [], "Exceptions": [record], "FailedAssumeRole": []});
        let path = dir.path().join(name);
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    };
    let esc = "\u{1b}]0;owned\u{7}\u{1b}[2J";
    // Overlapping shards: the message names the account and region.
    let shard = write("shard.json", &format!("1{esc}"), &format!("r{esc}"));
    let merged = Run::of(g.cove().arg("merge").arg(&shard).arg(&shard));
    merged.expect_code(2);
    assert!(
        merged
            .stderr
            .contains(r"1\u{1b}]0;owned\u{7}\u{1b}[2J in r\u{1b}"),
        "{:?}",
        merged.stderr
    );
    // --rerun: an ID that is no account ID, then a region that is no region.
    let bad_id = write("bad-id.json", &format!("1{esc}"), "us-east-1");
    let bad_region = write("bad-region.json", "111111111111", &format!("us{esc}"));
    for (path, shown) in [
        (&bad_id, r"`1\u{1b}]0;owned"),
        (&bad_region, r"`us\u{1b}]0;owned"),
    ] {
        let run = Run::of(g.cove().arg("--rerun").arg(path).args(["--", "true"]));
        run.expect_code(2);
        assert!(run.stderr.contains(shown), "{:?}", run.stderr);
        assert!(
            !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
            "{:?}",
            run.stderr
        );
    }
    assert!(
        !merged.stderr.contains('\u{1b}') && !merged.stderr.contains('\u{7}'),
        "{:?}",
        merged.stderr
    );
    assert_eq!(g.all_calls(), json!({}), "bad rerun files reached AWS");
}
