//! Where accounts sit in the organization: `[ous."ou-…"]` entries make a whole-organization run
//! walk the tree from the root (still streamed: a command starts while a later page is held),
//! an OU-targeted run asks only the targeted OU's own ancestors, and an entry's `region`
//! replaces the run's regions for the accounts beneath it at any depth, unless the regions
//! were typed.

use std::path::PathBuf;

use crate::support::{Ground, Run};

/// A config file in a temporary folder, for `--config`.
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn config_file(text: &str) -> ConfigFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cove.toml");
    std::fs::write(&path, text).unwrap();
    ConfigFile { _dir: dir, path }
}

/// A top-level `region` (which does not turn the entries off), Prod's entry (eu-west-1) and
/// deep-a's own (ap-south-1), deep-a being three levels beneath Prod.
fn regions_config(g: &Ground) -> ConfigFile {
    config_file(&format!(
        "region = \"us-east-2\"\n\n[ous.\"{}\"]\nregion = [\"eu-west-1\"]\n\n[accounts.\"{}\"]\nregion = \"ap-south-1\"\n",
        g.ou("Prod"),
        g.account("deep-a"),
    ))
}

/// Every (account, region) of `names` in `region`.
fn pairs(g: &Ground, names: &[&str], region: &str) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (g.account(n), region.to_owned()))
        .collect()
}

/// What [`regions_config`] gives every account the whole-organization run reaches, sorted.
fn per_account_regions(g: &Ground, elsewhere: &str) -> Vec<(String, String)> {
    let mut expected = pairs(g, &["prod-a", "core-a", "deep-b"], "eu-west-1");
    expected.extend(pairs(g, &["deep-a"], "ap-south-1"));
    let others = ["root-a", "root-b", "workloads-a", "sandbox-a", "sandbox-b"];
    expected.extend(pairs(g, &others, elsewhere));
    expected.sort();
    expected
}

#[test]
fn an_ou_entrys_region_covers_every_account_beneath_it_and_an_accounts_own_beats_it() {
    let g = Ground::start(&[]);
    let config = regions_config(&g);
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&config.path)
            .args(["--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(run.targets("Results"), per_account_regions(&g, "us-east-2"));
    assert_eq!(
        g.calls("organizations:ListAccounts"),
        0,
        "an [ous] entry makes the run walk the tree from the root"
    );
    assert_eq!(g.calls("organizations:ListRoots"), 1);
    assert!(g.calls("organizations:ListOrganizationalUnitsForParent") >= 6);
    assert!(g.calls("organizations:ListAccountsForParent") >= 6);
    assert_eq!(
        g.calls("organizations:ListParents"),
        0,
        "a walk from the root knows every account's parents without asking"
    );
    let dry = Run::of(g.cove().arg("--config").arg(&config.path).arg("--dry-run"));
    dry.expect_code(0);
    assert_eq!(dry.targets("Targets"), per_account_regions(&g, "us-east-2"));
    assert_eq!(
        g.calls("organizations:ListParents"),
        0,
        "a listed run walks the tree once, never per account"
    );
}

#[test]
fn regions_typed_on_the_command_line_or_in_cove_regions_turn_the_entries_off() {
    let g = Ground::start(&[]);
    let config = regions_config(&g);
    let run = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "--region",
        "us-west-1",
        "--",
        "true",
    ]));
    run.expect_code(0);
    let everyone = per_account_regions(&g, "us-west-1");
    let mut expected: Vec<(String, String)> = everyone
        .iter()
        .map(|(id, _)| (id.clone(), "us-west-1".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(run.targets("Results"), expected);
    let dry = Run::of(
        g.cove()
            .env("COVE_REGIONS", "eu-central-1")
            .arg("--config")
            .arg(&config.path)
            .arg("--dry-run"),
    );
    dry.expect_code(0);
    let mut expected: Vec<(String, String)> = everyone
        .iter()
        .map(|(id, _)| (id.clone(), "eu-central-1".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(dry.targets("Targets"), expected);
}

#[test]
fn an_ou_target_asks_only_its_own_ancestors_and_its_accounts_get_the_entries_above_it() {
    let g = Ground::start(&[]);
    let config = regions_config(&g);
    let run = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "-t",
        &g.ou("Deep"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    let mut expected = pairs(&g, &["deep-b"], "eu-west-1");
    expected.extend(pairs(&g, &["deep-a"], "ap-south-1"));
    expected.sort();
    assert_eq!(
        run.targets("Results"),
        expected,
        "Deep lies beneath Prod, two levels down"
    );
    let asked = g.calls("organizations:ListParents");
    assert!(
        (1..=4).contains(&asked),
        "Deep's chain up to the root is four levels, asked once: {asked}"
    );
    assert_eq!(g.calls("organizations:ListAccounts"), 0);
}

#[test]
fn the_root_walk_leaves_out_the_caller_ignored_ous_and_suspended_accounts_as_a_listing_does() {
    let g = Ground::start(&[]);
    let config = config_file(&format!(
        "[ous.\"{}\"]\nregion = \"eu-west-1\"\n",
        g.ou("Core")
    ));
    let run = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "-i",
        &g.ou("Sandbox"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    let mut expected = pairs(&g, &["core-a", "deep-a", "deep-b"], "eu-west-1");
    expected.extend(pairs(
        &g,
        &["root-a", "root-b", "workloads-a", "prod-a"],
        "us-east-1",
    ));
    expected.sort();
    assert_eq!(run.targets("Results"), expected, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skipping 2 accounts that are not ACTIVE"),
        "{}",
        run.stderr
    );
    assert_eq!(g.calls("organizations:ListAccounts"), 0);
}

#[test]
fn with_an_ou_entry_the_root_walk_starts_commands_while_a_later_page_is_held_back() {
    let g = Ground::start(&["--hold-parent", "Sandbox"]);
    let config = config_file(&format!(
        "[ous.\"{}\"]\nregion = \"eu-west-1\"\n",
        g.ou("Prod")
    ));
    crate::streaming::runs_while_the_sandbox_page_is_held(
        &g,
        g.cove().arg("--config").arg(&config.path),
    );
    assert_eq!(g.calls("organizations:ListAccounts"), 0);
}

#[test]
fn an_unknown_region_in_an_entry_is_an_input_error_naming_its_line_before_any_call() {
    let g = Ground::start(&[]);
    let config = config_file(&format!(
        "[vars]\nx = \"1\"\n\n[accounts.\"{}\"]\nregion = [\"eu-west-1\", \"xx-future-9\"]\n",
        g.account("root-a")
    ));
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&config.path)
            .args(["--", "true"]),
    );
    run.expect_code(2);
    let at = format!("{}:5", config.path.display());
    assert!(run.stderr.contains(&at), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown region `xx-future-9`"),
        "{}",
        run.stderr
    );
    assert_eq!(g.calls("sts:GetCallerIdentity"), 0);
    assert_eq!(g.calls("sts:AssumeRole"), 0);
}

#[test]
fn a_plan_with_ou_entries_is_refused_with_what_to_do() {
    let g = Ground::start(&[]);
    let plan = Run::of(g.cove().args(["--dry-run", "-t", &g.account("root-a")]));
    plan.expect_code(0);
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, &plan.stdout).unwrap();
    let config = config_file(&format!(
        "[ous.\"{}\".vars]\nteam = \"core\"\n",
        g.ou("Prod")
    ));
    let identified = g.calls("sts:GetCallerIdentity");
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&config.path)
            .arg("--plan")
            .arg(&plan_path)
            .args(["--", "true"]),
    );
    run.expect_code(2);
    for needed in ["--plan cannot be used with an [ous.", "run without --plan"] {
        assert!(run.stderr.contains(needed), "{needed}: {}", run.stderr);
    }
    assert_eq!(
        g.calls("sts:GetCallerIdentity"),
        identified,
        "refused before any AWS call"
    );
}

#[test]
fn with_a_files_region_all_an_entrys_regions_replace_discovery_for_its_account() {
    let g = Ground::start(&[]);
    let config = config_file(&format!(
        "region = \"all\"\n\n[accounts.\"{}\"]\nregion = \"ap-south-1\"\n",
        g.account("root-a")
    ));
    let targets = format!("{},{}", g.account("root-a"), g.account("root-b"));
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&config.path)
            .args(["-t", &targets, "--", "true"]),
    );
    run.expect_code(0);
    let mut expected = pairs(&g, &["root-a"], "ap-south-1");
    expected.extend(pairs(&g, &["root-b"], "eu-west-1"));
    expected.extend(pairs(&g, &["root-b"], "us-east-1"));
    expected.sort();
    assert_eq!(run.targets("Results"), expected);
    assert_eq!(
        g.calls("account:ListRegions"),
        1,
        "root-a, whose entry names its region, is not asked"
    );
}

/// `[vars]`, Workloads' and Prod's and Deep's entries (Prod beneath Workloads, Core beneath
/// Prod with no entry, Deep beneath Core), deep-b's own, and `db` defined only beneath Prod.
fn depth_config(g: &Ground) -> ConfigFile {
    config_file(&format!(
        concat!(
            "[vars]\ntier = \"default\"\nteam = \"none\"\n\n",
            "[ous.\"{workloads}\".vars]\ntier = \"workloads\"\nteam = \"wl\"\n\n",
            "[ous.\"{prod}\".vars]\ntier = \"prod\"\ndb = \"prod-db\"\n\n",
            "[ous.\"{deep}\".vars]\ntier = \"deep\"\n\n",
            "[accounts.\"{deep_b}\".vars]\ntier = \"own\"\n",
        ),
        workloads = g.ou("Workloads"),
        prod = g.ou("Prod"),
        deep = g.ou("Deep"),
        deep_b = g.account("deep-b"),
    ))
}

/// Each result's text by account name, sorted.
fn results_by_name(g: &Ground, run: &Run, names: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = run
        .list("Results")
        .iter()
        .map(|r| {
            let id = r["Id"].as_str().unwrap();
            let name = names
                .iter()
                .find(|n| g.account(n) == id)
                .map_or(id.to_owned(), |n| (*n).to_owned());
            (
                name,
                r["Result"].as_str().unwrap_or_default().trim().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn variables_come_from_the_nearest_ou_at_any_depth_then_the_farther_ones_and_the_account_wins() {
    let g = Ground::start(&[]);
    let config = depth_config(&g);
    let names = [
        "root-a",
        "root-b",
        "workloads-a",
        "prod-a",
        "core-a",
        "deep-a",
        "deep-b",
        "sandbox-a",
        "sandbox-b",
    ];
    // The variable as an argument, and both from the environment the child reads.
    let run = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "--",
        "sh",
        "-c",
        "echo \"$1 $COVE_VAR_TIER $COVE_VAR_TEAM\"",
        "sh",
        "{var.tier}",
    ]));
    run.expect_code(0);
    let expected: Vec<(String, String)> = [
        ("core-a", "prod prod wl"),
        ("deep-a", "deep deep wl"),
        ("deep-b", "own own wl"),
        ("prod-a", "prod prod wl"),
        ("root-a", "default default none"),
        ("root-b", "default default none"),
        ("sandbox-a", "default default none"),
        ("sandbox-b", "default default none"),
        ("workloads-a", "workloads workloads wl"),
    ]
    .iter()
    .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
    .collect();
    assert_eq!(results_by_name(&g, &run, &names), expected);
    assert_eq!(g.calls("organizations:ListParents"), 0);

    // `db` exists only beneath Prod: the accounts elsewhere fail naming it and never assume.
    let before = g.calls("sts:AssumeRole");
    let run = Run::of(
        g.cove()
            .arg("--config")
            .arg(&config.path)
            .args(["--", "echo", "{var.db}"]),
    );
    run.expect_code(1);
    let mut ran: Vec<String> = results_by_name(&g, &run, &names)
        .into_iter()
        .map(|(n, r)| format!("{n}={r}"))
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        [
            "core-a=prod-db",
            "deep-a=prod-db",
            "deep-b=prod-db",
            "prod-a=prod-db"
        ]
    );
    let failed = run.list("Exceptions");
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(
        failed.iter().all(|r| r["ExceptionDetails"]
            .as_str()
            .is_some_and(|d| d.contains("`db`"))
            && r["AssumeRoleSuccess"] == false),
        "{failed:?}"
    );
    assert_eq!(
        g.calls("sts:AssumeRole") - before,
        4,
        "only the four beneath Prod assumed"
    );

    // The dry run shows the same variables, and marks what the command lacks.
    let dry = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "--dry-run",
        "--",
        "echo",
        "{var.db}",
    ]));
    dry.expect_code(0);
    for t in dry.list("Targets") {
        let id = t["Id"].as_str().unwrap();
        let beneath_prod = ["prod-a", "core-a", "deep-a", "deep-b"]
            .iter()
            .any(|n| g.account(n) == id);
        assert_eq!(t["Vars"].get("db").is_some(), beneath_prod, "{t}");
        assert_eq!(t.get("Missing").is_some(), !beneath_prod, "{t}");
        if id == g.account("deep-b") {
            assert_eq!(t["Vars"]["tier"], "own");
            assert_eq!(t["Vars"]["team"], "wl");
        }
    }
}

#[test]
fn an_entry_whose_every_region_is_excluded_is_an_input_error_unless_regions_are_typed() {
    let g = Ground::start(&[]);
    let config = regions_config(&g);
    let run = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "--exclude-region",
        "eu-west-1",
        "--",
        "true",
    ]));
    run.expect_code(2);
    let at = format!(
        "{}:4: every region of this entry (eu-west-1)",
        config.path.display()
    );
    assert!(run.stderr.contains(&at), "{}", run.stderr);
    assert!(run.stderr.contains("--exclude-region"), "{}", run.stderr);
    assert_eq!(
        g.all_calls(),
        serde_json::json!({}),
        "refused before any AWS call"
    );
    // With the regions typed the entries do not apply, so nothing is left without a region.
    let run = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "--region",
        "us-east-1,eu-west-1",
        "--exclude-region",
        "eu-west-1",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert!(run.targets("Results").iter().all(|(_, r)| r == "us-east-1"));
}

#[test]
fn with_ou_entries_an_account_whose_place_cannot_be_read_fails_without_running() {
    let g = Ground::start(&["--deny-list-accounts"]);
    let config = config_file(&format!(
        "[vars]\nteam = \"default\"\n\n[ous.\"{}\".vars]\nteam = \"payments\"\n",
        g.ou("Prod")
    ));
    let targets = format!("{},{}", g.account("prod-a"), g.account("root-a"));
    let run = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "--target",
        &targets,
        "--",
        "sh",
        "-c",
        "echo \"$COVE_VAR_TEAM\"",
    ]));
    run.expect_code(1);
    assert!(run.list("Results").is_empty(), "{}", run.stdout);
    let failed = run.list("Exceptions");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed.iter().all(|r| r["ExceptionDetails"]
            .as_str()
            .is_some_and(|d| d.contains("sits in the organization is unknown"))),
        "{failed:?}"
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0, "no role assumed for them");
    assert!(run.stderr.contains("tree cannot be read"), "{}", run.stderr);
    let dry = Run::of(g.cove().arg("--config").arg(&config.path).args([
        "--target",
        &targets,
        "--dry-run",
    ]));
    dry.expect_code(0);
    for t in dry.list("Targets") {
        assert_eq!(t["Missing"], serde_json::json!(["parents"]), "{t}");
    }
}
