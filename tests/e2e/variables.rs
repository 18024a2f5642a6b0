//! Per-account variables and tags: `{var.NAME}` and `COVE_VAR_NAME` from the config files'
//! `[vars]` and `[accounts."ID"]`, `{tag.KEY}` from Organizations, a target that lacks one
//! (an Exceptions record, no AssumeRole), the input errors, hostile tag values, and the dry
//! run's `Vars` and `Missing`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::{
    Ground, Run, STARTING_KEY_ID, STARTING_SECRET, STARTING_SESSION_TOKEN, python,
};

/// A config file in a folder of its own, for `--config`.
struct Config {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn config(text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cove.toml");
    std::fs::write(&path, text).unwrap();
    Config { _dir: dir, path }
}

/// The records of one list, by account ID (one region each in these runs, unless said).
fn by_id(run: &Run, list: &str) -> Vec<(String, Value)> {
    let mut records: Vec<(String, Value)> = run
        .list(list)
        .into_iter()
        .map(|r| (r["Id"].as_str().unwrap().to_owned(), r))
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records
}

/// Sets tag `key` on each account of `pairs` (account ID, value) through the ground.
fn tag(g: &Ground, key: &str, pairs: &[(&str, &str)]) {
    let script = r#"
import boto3, json, sys
org = boto3.client("organizations", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
                   aws_session_token=sys.argv[4])
for account, value in json.loads(sys.argv[6]):
    org.tag_resource(ResourceId=account, Tags=[{"Key": sys.argv[5], "Value": value}])
"#;
    let pairs = serde_json::to_string(pairs).unwrap();
    python(
        script,
        &[
            &g.endpoint,
            STARTING_KEY_ID,
            STARTING_SECRET,
            STARTING_SESSION_TOKEN,
            key,
            &pairs,
        ],
    );
}

/// The child prints `COVE_VAR_TEAM` and its argument as one JSON string.
const TEAM_TWICE: [&str; 5] = [
    "sh",
    "-c",
    "printf '\"%s/%s\"' \"$COVE_VAR_TEAM\" \"$1\"",
    "sh",
    "{var.team}",
];

#[test]
fn defaults_and_account_variables_reach_the_argument_and_the_environment() {
    let g = Ground::start(&[]);
    let (prod, root) = (g.account("prod-a"), g.account("root-a"));
    let c = config(&format!(
        "[vars]\nteam = \"platform\"\nsize = 3\n\n[accounts.\"{prod}\".vars]\nteam = \"core\"\n"
    ));
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&c.path)
            .args([
                "-q",
                "--region",
                "us-east-1",
                "-t",
                &prod,
                "-t",
                &root,
                "--",
            ])
            .args(TEAM_TWICE),
    );
    run.expect_code(0);
    let results = by_id(&run, "Results");
    let got: Vec<(&str, &Value)> = results
        .iter()
        .map(|(id, r)| (id.as_str(), &r["Result"]))
        .collect();
    let mut want = [
        (prod.as_str(), json!("core/core")),
        (root.as_str(), json!("platform/platform")),
    ];
    want.sort_by(|a, b| a.0.cmp(b.0));
    let want: Vec<(&str, &Value)> = want.iter().map(|(id, v)| (*id, v)).collect();
    assert_eq!(got, want, "the account's value beats the default");

    // Every variable of the target is in the environment, not only those the command names.
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&c.path)
            .args(["-q", "--region", "us-east-1", "-t", &prod, "--"])
            .args(["sh", "-c", "printf '\"%s\"' \"$COVE_VAR_SIZE\""]),
    );
    run.expect_code(0);
    assert_eq!(run.list("Results")[0]["Result"], "3");
}

#[test]
fn a_target_lacking_a_variable_fails_naming_it_and_never_assumes_its_role() {
    let g = Ground::start(&[]);
    let (prod, root) = (g.account("prod-a"), g.account("root-a"));
    let c = config(&format!("[accounts.\"{prod}\".vars]\ndb = \"main\"\n"));
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&c.path)
            .args([
                "-q",
                "--region",
                "us-east-1,eu-west-1",
                "-t",
                &prod,
                "-t",
                &root,
            ])
            .args(["--", "sh", "-c", "printf '\"%s\"' \"$1\"", "sh", "{var.db}"]),
    );
    run.expect_code(1);
    let results = by_id(&run, "Results");
    assert_eq!(results.len(), 2, "both regions of the account that has it");
    assert!(
        results
            .iter()
            .all(|(id, r)| *id == prod && r["Result"] == "main")
    );
    let failed = by_id(&run, "Exceptions");
    assert_eq!(failed.len(), 2, "{}", run.stdout);
    for (id, r) in &failed {
        assert_eq!(*id, root);
        assert!(
            r["ExitCode"].is_null() && r["AssumeRoleSuccess"] == false,
            "{r}"
        );
        let details = r["ExceptionDetails"].as_str().unwrap();
        assert!(
            details.contains(&format!("variable `db` is not defined for account {root}")),
            "{details}"
        );
    }
    assert_eq!(
        g.calls("sts:AssumeRole"),
        1,
        "only the account that has the variable"
    );
}

#[test]
fn a_variable_defined_nowhere_is_an_input_error_before_any_aws_call() {
    let g = Ground::start(&[]);
    let c = config("[vars]\nteam = \"platform\"\n");
    let run = Run::of(g.cove().arg("--config").arg(&c.path).args([
        "-t",
        &g.account("prod-a"),
        "--",
        "echo",
        "{var.nope}",
    ]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("`nope`") && run.stderr.contains("`team`"),
        "{}",
        run.stderr
    );
    let run = Run::of(g.cove().args(["--no-config", "--", "echo", "{var.team}"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("no variable is defined"),
        "{}",
        run.stderr
    );
    assert_eq!(g.all_calls(), json!({}));
}

#[test]
fn a_project_file_variable_never_becomes_code_or_an_option() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let c = config(&format!(
        "[vars]\nteam = \"x; touch {}\"\nflag = \"--help\"\n",
        pwned.display()
    ));
    // In a shell's script: refused before any AWS call.
    let run = Run::of(g.cove().arg("--config").arg(&c.path).args([
        "-t",
        &g.account("prod-a"),
        "--",
        "sh",
        "-c",
        "echo {var.team}",
    ]));
    assert!(!pwned.exists(), "the variable's value ran as code");
    run.expect_code(2);
    assert!(run.stderr.contains("COVE_VAR_TEAM"), "{}", run.stderr);
    assert_eq!(g.all_calls(), json!({}));
    // As an option of the command: the target fails without running.
    let run = Run::of(g.cove().arg("--config").arg(&c.path).args([
        "-t",
        &g.account("prod-a"),
        "-r",
        "us-east-1",
        "--",
        "echo",
        "{var.flag}",
    ]));
    run.expect_code(1);
    let details = run.records()[0]["ExceptionDetails"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        details.contains("variable `flag`") && details.contains("option"),
        "{details}"
    );
}

#[test]
fn tags_are_read_once_per_account_and_an_untagged_account_fails_naming_the_tag() {
    let g = Ground::start(&[]);
    let (prod, bare) = (g.account("prod-a"), g.account("deep-b"));
    let run = Run::of(
        g.cove()
            .args([
                "-q",
                "--region",
                "us-east-1,eu-west-1",
                "-t",
                &prod,
                "-t",
                &bare,
            ])
            .args([
                "--",
                "sh",
                "-c",
                "printf '\"%s\"' \"$1\"",
                "sh",
                "{tag.env}",
            ]),
    );
    run.expect_code(1);
    let results = by_id(&run, "Results");
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|(id, r)| *id == prod && r["Result"] == "prod")
    );
    let failed = by_id(&run, "Exceptions");
    assert_eq!(failed.len(), 2);
    for (id, r) in &failed {
        assert_eq!(*id, bare);
        let details = r["ExceptionDetails"].as_str().unwrap();
        assert!(
            details.contains(&format!("tag `env` is not set on account {bare}")),
            "{details}"
        );
    }
    assert_eq!(
        g.calls("organizations:ListTagsForResource"),
        2,
        "one per account, not per region"
    );
    assert_eq!(
        g.calls("sts:AssumeRole"),
        1,
        "the untagged account's role is not assumed"
    );

    // No tag is read when the command uses none.
    let run = Run::of(
        g.cove()
            .args(["-q", "--region", "us-east-1", "-t", &prod, "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(g.calls("organizations:ListTagsForResource"), 2);
}

#[test]
fn a_streamed_run_reads_tags_as_accounts_arrive() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["-q", "--region", "us-east-1"]).args([
        "--",
        "sh",
        "-c",
        "printf '\"%s\"' \"$1\"",
        "sh",
        "{tag.env}",
    ]));
    run.expect_code(1);
    let tagged: Vec<(String, Value)> = by_id(&run, "Results")
        .into_iter()
        .map(|(id, r)| (id, r["Result"].clone()))
        .collect();
    let mut want: Vec<(String, Value)> = [
        ("prod-a", "prod"),
        ("core-a", "prod"),
        ("deep-a", "dev"),
        ("sandbox-a", "dev"),
    ]
    .iter()
    .map(|(name, env)| (g.account(name), json!(env)))
    .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(tagged, want);
    let untagged = run.list("Exceptions").len();
    assert_eq!(untagged + 4, g.active_ids().len(), "{}", run.stdout);
    assert_eq!(g.calls("sts:AssumeRole"), 4);
}

#[test]
fn a_tag_in_a_shell_script_is_refused_before_any_aws_call() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["--", "sh", "-c", "echo {tag.env}"]));
    run.expect_code(2);
    assert!(run.stderr.contains("{tag.env}"), "{}", run.stderr);
    assert!(
        run.stderr.contains("sh -c 'echo \"$1\"' sh {tag.env}"),
        "{}",
        run.stderr
    );
    assert_eq!(g.all_calls(), json!({}));
}

#[test]
fn a_hostile_tag_value_fails_its_target_and_its_command_never_runs() {
    let g = Ground::start(&[]);
    let hostile = [
        (g.account("root-a"), "../x", "`..`"),
        (g.account("root-b"), "-rf", "option"),
        (g.account("deep-b"), "/etc/passwd", "absolute path"),
    ];
    let pairs: Vec<(&str, &str)> = hostile.iter().map(|(id, v, _)| (id.as_str(), *v)).collect();
    tag(&g, "env", &pairs);
    let marker = tempfile::tempdir().unwrap();
    let mut cmd = g.cove();
    cmd.args(["-q", "--region", "us-east-1"]);
    for (id, _, _) in &hostile {
        cmd.args(["-t", id]);
    }
    let script = format!("touch {}/ran-$COVE_ACCOUNT_ID", marker.path().display());
    let run = Run::of(cmd.args(["--", "sh", "-c", &script, "sh", "{tag.env}"]));
    run.expect_code(1);
    let failed = by_id(&run, "Exceptions");
    assert_eq!(failed.len(), 3, "{}", run.stdout);
    for (id, value, why) in &hostile {
        let (_, r) = failed.iter().find(|(i, _)| i == id).unwrap();
        let details = r["ExceptionDetails"].as_str().unwrap();
        assert!(
            details.contains("tag `env`") && details.contains(value) && details.contains(why),
            "{details}"
        );
    }
    assert_eq!(
        std::fs::read_dir(marker.path()).unwrap().count(),
        0,
        "nothing ran"
    );
}

#[test]
fn a_dry_run_shows_each_targets_variables_and_what_it_lacks_and_a_plan_of_it_runs() {
    let g = Ground::start(&[]);
    let (prod, root) = (g.account("prod-a"), g.account("root-a"));
    let c = config(&format!(
        "[vars]\nteam = \"platform\"\n\n[accounts.\"{prod}\".vars]\ndb = \"main\"\n"
    ));
    let dry = |command: &[&str]| {
        Run::of(
            g.cove()
                .arg("--config")
                .arg(&c.path)
                .args([
                    "--dry-run",
                    "--region",
                    "us-east-1",
                    "-t",
                    &prod,
                    "-t",
                    &root,
                ])
                .args(command),
        )
    };
    let run = dry(&["--", "echo", "{var.db}", "{tag.team}"]);
    run.expect_code(0);
    let targets = by_id(&run, "Targets");
    let entry = |id: &str| &targets.iter().find(|(i, _)| i == id).unwrap().1;
    assert_eq!(
        entry(&prod)["Vars"],
        json!({"team": "platform", "db": "main"})
    );
    assert!(entry(&prod).get("Missing").is_none(), "{}", run.stdout);
    assert_eq!(entry(&root)["Vars"], json!({"team": "platform"}));
    assert_eq!(entry(&root)["Missing"], json!(["var.db", "tag.team"]));
    assert!(
        run.stderr.contains("1 of the targets lack"),
        "{}",
        run.stderr
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0);
    assert_eq!(g.calls("organizations:ListTagsForResource"), 2);

    // Without a command: the variables, and nothing is missing.
    let run = dry(&[]);
    run.expect_code(0);
    assert!(
        run.list("Targets")
            .iter()
            .all(|t| t.get("Missing").is_none())
    );
    assert_eq!(by_id(&run, "Targets")[0].1["Vars"]["team"], "platform");

    // A plan that holds Vars and Missing still runs, with the variables of the config files.
    let plan = dry(&["--", "true"]);
    let mut doc = plan.doc();
    doc["Targets"][0]["Missing"] = json!(["var.x"]);
    doc["Targets"][0]["Vars"] = json!({"team": "from-the-plan"});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&c.path)
            .arg("--plan")
            .arg(&path)
            .args(["-q", "--"])
            .args(TEAM_TWICE),
    );
    run.expect_code(0);
    let results = run.list("Results");
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|r| r["Result"] == "platform/platform"),
        "{results:?}"
    );
}

#[test]
fn with_region_all_an_account_lacking_a_variable_is_not_asked_for_its_regions() {
    let g = Ground::start(&[]);
    let (prod, root) = (g.account("prod-a"), g.account("root-a"));
    let c = config(&format!("[accounts.\"{prod}\".vars]\ndb = \"main\"\n"));
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&c.path)
            .args(["-q", "--region", "all", "-t", &prod, "-t", &root])
            .args(["--", "sh", "-c", "printf '\"%s\"' \"$1\"", "sh", "{var.db}"]),
    );
    run.expect_code(1);
    assert!(run.ids("Results") == [prod.clone()], "{}", run.stdout);
    let failed = run.list("Exceptions");
    assert_eq!(
        failed.len(),
        1,
        "one record for the account: {}",
        run.stdout
    );
    assert_eq!(
        (&failed[0]["Id"], &failed[0]["Region"]),
        (&json!(root), &json!("all"))
    );
    let details = failed[0]["ExceptionDetails"].as_str().unwrap();
    assert!(
        details.contains("variable `db` is not defined"),
        "{details}"
    );
    assert_eq!(
        g.calls("sts:AssumeRole"),
        1,
        "only the account that has the variable"
    );
}

#[test]
fn with_a_tag_filter_the_tags_it_read_serve_the_placeholder_too() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-q",
        "--filter-tag",
        "env=prod",
        "--",
        "sh",
        "-c",
        "printf '\"%s\"' \"$1\"",
        "sh",
        "{tag.env}",
    ]));
    run.expect_code(0);
    let mut ran: Vec<String> = run.ids("Results");
    ran.sort();
    let mut prod = g.ids(&["prod-a", "core-a"]);
    prod.sort();
    assert_eq!(ran, prod);
    assert!(run.list("Results").iter().all(|r| r["Result"] == "prod"));
    let listed = g
        .active_ids()
        .iter()
        .filter(|id| **id != g.caller())
        .count() as u64;
    assert_eq!(
        g.calls("organizations:ListTagsForResource"),
        listed,
        "one read per account: the filter's, which the placeholder reuses"
    );
}
