//! `--plan FILE`: plan once with `--dry-run`, then run exactly that plan (or a shard of it)
//! without listing the organization again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::support::{Ground, Run, WHO_AM_I};

/// The organization calls that reached the ground, by operation.
fn organization_calls(g: &Ground) -> u64 {
    let calls = g.all_calls();
    calls
        .as_object()
        .unwrap()
        .iter()
        .filter(|(op, _)| op.starts_with("organizations:"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum()
}

/// A dry run's document, written to `dir/name`.
fn plan(g: &Ground, dir: &Path, name: &str, args: &[&str]) -> (PathBuf, Value) {
    let run = Run::of(g.cove().arg("--dry-run").args(args));
    run.expect_code(0);
    let path = dir.join(name);
    std::fs::write(&path, &run.stdout).unwrap();
    (path, run.doc())
}

fn write_doc(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    path
}

/// Each planned target's (Id, Region, Name, Email), sorted.
fn planned(doc: &Value) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = doc["Targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
            (s("Id"), s("Region"), s("Name"), s("Email"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_plan_runs_its_targets_with_no_organizations_call_and_names_from_the_plan() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--region",
        "us-east-1,eu-west-1",
        "--filter-tag",
        "env=prod",
    ];
    let (_, mut doc) = plan(&g, dir.path(), "made.json", &args);
    assert_eq!(doc["Caller"], g.caller().as_str(), "{doc}");
    let created = doc["Created"].as_str().unwrap();
    let made = humantime::parse_rfc3339(created).unwrap();
    assert!(made.elapsed().unwrap().as_secs() < 3600, "{created}");
    assert_eq!(
        doc["Roles"],
        serde_json::json!(["OrganizationAccountAccessRole"])
    );
    let pairs: Vec<(String, String)> = planned(&doc)
        .into_iter()
        .map(|(id, region, ..)| (id, region))
        .collect();
    assert_eq!(pairs.len(), 4, "prod-a and core-a in two regions: {doc}");
    // Names and emails come from the plan, not from a listing.
    for target in doc["Targets"].as_array_mut().unwrap() {
        target["Name"] = format!("planned-{}", target["Name"].as_str().unwrap()).into();
        target["Email"] = "planned@example.com".into();
    }
    let path = write_doc(dir.path(), "plan.json", &doc);

    let org_before = organization_calls(&g);
    let ids_before = g.calls("sts:GetCallerIdentity");
    let assume_before = g.calls("sts:AssumeRole");
    let run = Run::of(g.cove().arg("--plan").arg(&path).arg("--").args(WHO_AM_I));
    run.expect_code(0);
    assert_eq!(organization_calls(&g), org_before, "{}", g.all_calls());
    assert_eq!(
        g.calls("sts:AssumeRole") - assume_before,
        2,
        "one per account"
    );
    // cove's own identity call, and one per child (the AWS CLI's get-caller-identity).
    assert_eq!(g.calls("sts:GetCallerIdentity") - ids_before, 1 + 4);
    assert_eq!(run.targets("Results"), pairs);
    for record in run.list("Results") {
        assert!(
            record["Name"].as_str().unwrap().starts_with("planned-"),
            "{record}"
        );
        assert_eq!(record["Email"], "planned@example.com");
        assert_eq!(record["Result"]["Account"], record["Id"], "{record}");
    }

    // The same plan from standard input, and from COVE_PLAN.
    for (how, value) in [("flag", "@-"), ("flag", "-"), ("variable", "@-")] {
        let mut cmd = g.cove();
        match how {
            "flag" => cmd.args(["--plan", value]),
            _ => cmd.env("COVE_PLAN", value),
        };
        let mut child = cmd
            .args(["--", "true"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(&path).unwrap())
            .unwrap();
        let run = Run::from_output(child.wait_with_output().unwrap());
        run.expect_code(0);
        assert_eq!(run.targets("Results"), pairs, "{how} {value}");
    }
    assert_eq!(organization_calls(&g), org_before);
}

#[test]
fn shards_of_a_plan_are_the_shards_of_a_listing() {
    let g = Ground::start(&["--extra-root-accounts", "9"]);
    let dir = tempfile::tempdir().unwrap();
    let regions = ["--region", "us-east-1,eu-west-1"];
    let (path, whole) = plan(&g, dir.path(), "plan.json", &regions);
    let org_before = organization_calls(&g);
    let mut covered = Vec::new();
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let listed = Run::of(
            g.cove()
                .args(["--dry-run", "--shard", &shard])
                .args(regions),
        );
        listed.expect_code(0);
        let before = organization_calls(&g);
        let from_plan = Run::of(
            g.cove()
                .env("COVE_SHARD", &shard)
                .args(["--dry-run", "--plan"])
                .arg(&path),
        );
        from_plan.expect_code(0);
        assert_eq!(organization_calls(&g), before, "no listing for a plan");
        assert_eq!(
            planned(&from_plan.doc()),
            planned(&listed.doc()),
            "shard {shard}"
        );
        assert!(
            from_plan
                .stderr
                .contains(&format!("shard {shard} of the plan"))
        );
        covered.extend(planned(&from_plan.doc()));
    }
    covered.sort();
    assert_eq!(
        covered,
        planned(&whole),
        "the shards cover the plan exactly"
    );
    assert!(organization_calls(&g) > org_before, "the listings did list");

    // A shard of the plan runs what its dry run shows.
    let shown = Run::of(
        g.cove()
            .args(["--dry-run", "--shard", "3/4", "--plan"])
            .arg(&path),
    );
    let run = Run::of(
        g.cove()
            .args(["--shard", "3/4", "--plan"])
            .arg(&path)
            .args(["--", "true"]),
    );
    run.expect_code(0);
    let ran: Vec<(String, String)> = run.targets("Results");
    let wanted: Vec<(String, String)> = planned(&shown.doc())
        .into_iter()
        .map(|(id, region, ..)| (id, region))
        .collect();
    assert_eq!(ran, wanted);
}

#[test]
fn options_that_choose_targets_are_refused_with_a_plan_before_any_aws_call() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = plan(&g, dir.path(), "plan.json", &[]);
    let path = path.to_str().unwrap();
    let calls = g.all_calls();
    let flags: [&[&str]; 6] = [
        &["--target", "111111111111"],
        &["--ignore", "111111111111"],
        &["--region", "eu-west-1"],
        &["--exclude-region", "eu-west-1"],
        &["--filter-tag", "env=prod"],
        &["--filter-name", "^prod"],
    ];
    for flag in flags {
        let run = Run::of(
            g.cove()
                .args(["--plan", path])
                .args(flag)
                .args(["--", "true"]),
        );
        run.expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("--plan cannot be combined with {}", flag[0])),
            "{flag:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    for (var, value, flag) in [
        ("COVE_TARGETS", "111111111111", "--target"),
        ("COVE_REGIONS", "eu-west-1", "--region"),
        ("COVE_FILTER_TAGS", "env=prod", "--filter-tag"),
        ("COVE_FILTER_EMAIL", "x", "--filter-email"),
    ] {
        let run = Run::of(
            g.cove()
                .env(var, value)
                .env("COVE_PLAN", path)
                .args(["--", "true"]),
        );
        run.expect_code(2);
        let expected = format!(
            "the environment variable COVE_PLAN (--plan) cannot be combined with the environment variable {var} ({flag})"
        );
        assert!(run.stderr.contains(&expected), "{var}: {}", run.stderr);
    }
    assert_eq!(g.all_calls(), calls, "no AWS call at all");
    let run =
        Run::of(
            g.cove()
                .env("COVE_INCLUDE_CALLER", "true")
                .args(["--dry-run", "--plan", path]),
        );
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("COVE_INCLUDE_CALLER (--include-caller)"),
        "{}",
        run.stderr
    );
    // A variable that asks for nothing, as a CI system may set for every job, is no conflict.
    let run =
        Run::of(
            g.cove()
                .env("COVE_INCLUDE_CALLER", "false")
                .args(["--dry-run", "--plan", path]),
        );
    run.expect_code(0);
}

#[test]
fn a_hostile_or_broken_plan_is_refused_and_never_becomes_an_option_or_a_path() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (_, doc) = plan(
        &g,
        dir.path(),
        "made.json",
        &["--target", &g.account("prod-a")],
    );
    let calls = g.all_calls();
    let with = |key: &str, value: Value| {
        let mut d = doc.clone();
        d["Targets"][0][key] = value;
        d
    };
    let cases = [
        (
            with("Id", "--profile=evil".into()),
            "Id `--profile=evil` is not an account ID",
        ),
        (
            with("Region", "us-east-1\u{1b}]0;owned\u{7}".into()),
            "us-east-1\\u{1b}]0;owned\\u{7}",
        ),
        (with("Region", "all".into()), "--region all"),
        (with("Name", "n".repeat(5000).into()), "longer than 256"),
        (serde_json::json!({"Targets": []}), "holds no targets"),
        (
            serde_json::json!({"Results": [], "Exceptions": []}),
            "not a cove plan",
        ),
    ];
    for (n, (bad, expected)) in cases.iter().enumerate() {
        let path = write_doc(dir.path(), &format!("bad-{n}.json"), bad);
        let run = Run::of(g.cove().arg("--plan").arg(&path).args(["--", "true"]));
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "case {n}: {}", run.stderr);
        assert!(!run.stderr.contains('\u{1b}'), "case {n}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    let zero = Run::of(g.cove().args(["--plan", "/dev/zero", "--", "true"]));
    zero.expect_code(2);
    assert!(
        zero.stderr.contains("larger than 128 MiB"),
        "{}",
        zero.stderr
    );
    let missing = Run::of(g.cove().args(["--plan", "no-such-plan.json", "--", "true"]));
    missing.expect_code(2);
    assert!(
        missing.stderr.contains("no-such-plan.json"),
        "{}",
        missing.stderr
    );
    assert_eq!(g.all_calls(), calls, "refused before any AWS call");

    // A region of another partition is refused once the caller's partition is known, before
    // any role is assumed.
    let path = write_doc(dir.path(), "cn.json", &with("Region", "cn-north-1".into()));
    let run = Run::of(g.cove().arg("--plan").arg(&path).args(["--", "true"]));
    run.expect_code(2);
    assert!(run.stderr.contains("cn-north-1"), "{}", run.stderr);
    assert_eq!(g.calls("sts:AssumeRole"), 0);

    // A hostile name is the account's name: the per-target rules keep it out of an option.
    let path = write_doc(
        dir.path(),
        "name.json",
        &with("Name", "--output=/tmp/x".into()),
    );
    let marker = dir.path().join("ran");
    let script = format!("touch {} && echo \"$0\"", marker.display());
    let run = Run::of(g.cove().arg("--plan").arg(&path).args([
        "--",
        "sh",
        "-c",
        &script,
        "{account_name}",
    ]));
    run.expect_code(1);
    let failed = run.list("Exceptions");
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert!(
        failed[0].to_string().contains("was not put into argument"),
        "{}",
        failed[0]
    );
    assert!(!marker.exists(), "the command never ran");
}

#[test]
fn a_plan_from_another_caller_is_refused_and_a_stale_plan_is_noted() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (_, mut doc) = plan(
        &g,
        dir.path(),
        "made.json",
        &["--target", &g.account("prod-a")],
    );
    doc["Caller"] = "999999999999".into();
    let path = write_doc(dir.path(), "other.json", &doc);
    let run = Run::of(g.cove().arg("--plan").arg(&path).args(["--", "true"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("account 999999999999") && run.stderr.contains(&g.caller()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--plan-any-caller"), "{}", run.stderr);
    assert_eq!(g.calls("sts:AssumeRole"), 0, "refused before any role");
    let flag = Run::of(
        g.cove()
            .arg("--plan")
            .arg(&path)
            .args(["--plan-any-caller", "--", "true"]),
    );
    flag.expect_code(0);
    let var = Run::of(
        g.cove()
            .env("COVE_PLAN_ANY_CALLER", "true")
            .arg("--plan")
            .arg(&path)
            .args(["--", "true"]),
    );
    var.expect_code(0);
    assert_eq!(var.ids("Results"), [g.account("prod-a")]);
    assert!(!var.stderr.contains("ago"), "a fresh plan: {}", var.stderr);

    let two_days = std::time::SystemTime::now() - std::time::Duration::from_secs(49 * 3600);
    doc["Created"] = humantime::format_rfc3339_seconds(two_days)
        .to_string()
        .into();
    doc["Caller"] = g.caller().into();
    let path = write_doc(dir.path(), "old.json", &doc);
    let old = Run::of(
        g.cove()
            .arg("-q")
            .arg("--plan")
            .arg(&path)
            .args(["--", "true"]),
    );
    old.expect_code(0);
    assert!(
        old.stderr.contains("was made 2days 1h ago"),
        "even with -q: {}",
        old.stderr
    );
}

/// The fenced blocks of one language in the guide's "Plan once, then shard" section.
fn plan_once_blocks(lang: &str) -> Vec<String> {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ci.md")).unwrap();
    let start = guide
        .find("### Plan once, then shard")
        .expect("the section");
    let section = &guide[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let fence = format!("```{lang}\n");
    section
        .split(&fence)
        .skip(1)
        .map(|rest| rest[..rest.find("```").unwrap()].to_owned())
        .collect()
}

/// YAML documents as JSON, read by PyYAML of the test venv.
fn yaml(text: &str) -> Value {
    let script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.argv[1])))";
    serde_json::from_str(&crate::support::python(script, &[text])).unwrap()
}

fn runs(job: &Value) -> String {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_guides_workflow_and_indexed_job_plan_once_and_pass_the_linters() {
    let yamls = plan_once_blocks("yaml");
    assert_eq!(yamls.len(), 3, "a workflow, the Indexed Job, the merge Job");

    // The workflow, as actionlint (with shellcheck for its scripts) sees a workflow file.
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let file = workflows.join("shards.yml");
    std::fs::write(&file, &yamls[0]).unwrap();
    let venv = crate::support::venv();
    let lint = std::process::Command::new(venv.join("bin/actionlint"))
        .arg("-shellcheck")
        .arg(venv.join("bin/shellcheck"))
        .arg("-pyflakes=")
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "actionlint: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let workflow = yaml(&yamls[0]);
    let jobs = &workflow["jobs"];
    assert!(runs(&jobs["plan"]).contains("cove --dry-run"), "{jobs}");
    assert!(!runs(&jobs["plan"]).contains("--shard"), "one plan for all");
    assert_eq!(jobs["shard"]["needs"], "plan");
    let fetches_plan = jobs["shard"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["with"]["name"] == "plan");
    assert!(fetches_plan, "the shards download the plan artifact");
    let shard = runs(&jobs["shard"]);
    assert!(
        shard.contains("cove --plan plan.json --shard \"$SHARD/4\""),
        "{shard}"
    );
    assert_eq!(
        jobs["shard"]["strategy"]["matrix"]["shard"],
        serde_json::json!([1, 2, 3, 4])
    );
    assert_eq!(jobs["merge"]["needs"], "shard");
    assert!(runs(&jobs["merge"]).contains("cove merge shard-*.jsonl"));

    // The Indexed Job reads the ConfigMap the shell block makes, and the merge Job the parts.
    let shell = plan_once_blocks("sh").join("\n");
    let configmap = "kubectl create configmap cove-plan --from-file=plan.json";
    assert!(shell.contains(configmap), "{shell}");
    let job = yaml(&yamls[1]);
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let pod = &spec["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == "cove-plan")
        .expect("the plan's ConfigMap as a volume");
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("mounted");
    let args = pod["containers"][0]["args"][0].as_str().unwrap();
    let count = spec["completions"].as_u64().unwrap();
    for wanted in [
        format!(
            "cove --plan {}/plan.json",
            mount["mountPath"].as_str().unwrap()
        ),
        format!("--shard-index-env JOB_COMPLETION_INDEX --shard-count {count}"),
    ] {
        assert!(args.contains(&wanted), "{wanted}: {args}");
    }
    assert!(shell.contains(&format!(
        "job/{}",
        job["metadata"]["name"].as_str().unwrap()
    )));
    let merge = yaml(&yamls[2]);
    let merge_args = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(
        merge_args.contains("cove merge /results/shard-*.jsonl"),
        "{merge_args}"
    );
}

#[test]
fn a_config_files_selection_gives_way_to_a_plan_with_a_note() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (path, doc) = plan(&g, dir.path(), "plan.json", &["--region", "us-east-1"]);
    let config = dir.path().join("cove.toml");
    std::fs::write(
        &config,
        "region = [\"eu-west-1\"]\nfilter-name = \"^nothing-matches$\"\nworkers = 3\n",
    )
    .unwrap();
    let run = Run::of(g.cove().env("COVE_CONFIG", &config).args([
        "--plan",
        path.to_str().unwrap(),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert!(
        run.stderr.contains(
            "note: the plan already chose the accounts and regions; ignoring the config file's --region ("
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--filter-name ("), "{}", run.stderr);
    let ran: Vec<(String, String)> = run.doc()["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Id"].as_str().unwrap().into(),
                r["Region"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut ran = ran;
    ran.sort();
    let expected: Vec<(String, String)> = planned(&doc)
        .into_iter()
        .map(|(id, region, ..)| (id, region))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        ran, expected,
        "the plan's targets, not the file's selection"
    );
}
