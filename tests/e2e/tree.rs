//! Where accounts sit in the organization: `[ous."ou-…"]` entries make a whole-organization run
//! walk the tree from the root (still streamed: a command starts while a later page is held),
//! an OU-targeted run asks only the targeted OU's own ancestors, and an entry's `region`
//! replaces the run's regions for the accounts beneath it at any depth, unless the regions
//! were typed.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{Ground, Run, SpawnPiped, wait_until};

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
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(g.account("root-a"));
    let child = g
        .cove()
        .arg("--config")
        .arg(&config.path)
        .args(["-q", "--", "sh", "-c"])
        .arg(format!("touch {}/$COVE_ACCOUNT_ID", dir.path().display()))
        .spawn_piped();
    wait_until("root-a's command to run", Duration::from_secs(30), || {
        marker.exists()
    });
    assert_eq!(
        g.held(),
        1,
        "the Sandbox page is still held back while root-a's command has run"
    );
    assert!(
        !dir.path().join(g.account("sandbox-a")).exists(),
        "nothing under the held OU ran yet"
    );
    g.release();
    let run = Run::from_output(child.wait_with_output().unwrap());
    run.expect_code(0);
    let mut expected: Vec<String> = g
        .active_ids()
        .into_iter()
        .filter(|id| *id != g.caller())
        .collect();
    expected.sort();
    assert_eq!(run.ids("Results"), expected);
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
