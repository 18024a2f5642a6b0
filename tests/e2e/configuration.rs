//! Config files: the user file, the project file, `--config`/`COVE_CONFIG`, `--no-config`,
//! groups (`-g`), `cove config` and its sources, and bad files refused before any AWS call.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::{Ground, Run};

/// A user file, a project with its `cove.toml`, and a subfolder of it to run cove in.
struct Layout {
    _dir: tempfile::TempDir,
    xdg: PathBuf,
    project: PathBuf,
    cwd: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let xdg = dir.path().join("xdg");
        let project = dir.path().join("project");
        let cwd = project.join("sub");
        std::fs::create_dir_all(xdg.join("cove")).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        Layout {
            _dir: dir,
            xdg,
            project,
            cwd,
        }
    }

    fn user(&self, text: &str) -> PathBuf {
        let path = self.xdg.join("cove/config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn project(&self, text: &str) -> PathBuf {
        let path = self.project.join("cove.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// cove pointed at the ground, with this user file and run in the project's subfolder.
    fn cove(&self, g: &Ground) -> Command {
        let mut cmd = g.cove();
        cmd.env("XDG_CONFIG_HOME", &self.xdg).current_dir(&self.cwd);
        cmd
    }
}

/// The regions of a dry run's targets, sorted and de-duplicated.
fn regions(run: &Run) -> Vec<String> {
    let mut regions: Vec<String> = run.doc()["Targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Region"].as_str().unwrap().to_owned())
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// The line of `cove config` that sets `key`.
fn shown<'a>(run: &'a Run, key: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{}\n{}", run.stdout, run.stderr))
}

#[test]
fn each_layer_wins_over_the_ones_below_it_for_the_same_key() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    let user = l.user("region = \"ap-south-1\"\n");
    let project = l.project("\n\nregion = \"eu-west-1\"\n[groups.g]\nregion = \"eu-central-1\"\n");
    let target = g.account("root-a");
    // (flag, variable, group, expected region, expected source in `cove config`)
    let user_at = format!("{}:1", user.display());
    let project_at = format!("{}:3", project.display());
    let group_at = format!("group g at {}:5", project.display());
    let steps: [(bool, bool, bool, bool, bool, &str, &str); 6] = [
        (true, true, true, true, true, "us-east-2", "--region"),
        (false, true, true, true, true, "us-west-2", "COVE_REGIONS"),
        (false, false, true, true, true, "eu-central-1", &group_at),
        (false, false, false, true, true, "eu-west-1", &project_at),
        (false, false, false, false, true, "ap-south-1", &user_at),
        (false, false, false, false, false, "us-east-1", ""),
    ];
    for (flag, var, group, has_project, has_user, region, source) in steps {
        let prepare = |cmd: &mut Command| {
            if var {
                cmd.env("COVE_REGIONS", "us-west-2");
            }
            if !has_user {
                cmd.env("XDG_CONFIG_HOME", l.xdg.join("none"));
            }
            if !has_project {
                cmd.current_dir(g.home.path());
            }
        };
        let mut args: Vec<&str> = Vec::new();
        if flag {
            args.extend(["--region", "us-east-2"]);
        }
        if group {
            args.extend(["-g", "g"]);
        }
        let mut cmd = l.cove(&g);
        prepare(&mut cmd);
        let run = Run::of(cmd.args(["--dry-run", "-t", &target]).args(&args));
        run.expect_code(0);
        assert_eq!(regions(&run), [region], "{args:?}: {}", run.stderr);
        let mut cmd = l.cove(&g);
        prepare(&mut cmd);
        let run = Run::of(cmd.arg("config").args(&args));
        run.expect_code(0);
        if source.is_empty() {
            assert!(
                !run.stdout.lines().any(|l| l.starts_with("region = ")),
                "the chain's region is no setting of cove's: {}",
                run.stdout
            );
        } else {
            let line = shown(&run, "region");
            assert_eq!(
                line,
                format!("region = [\"{region}\"]  # {source}"),
                "{args:?}"
            );
        }
    }
}

#[test]
fn a_group_selects_accounts_and_its_files_are_relative_to_the_config_file() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    std::fs::write(
        l.project.join("prod-accounts.txt"),
        format!("# prod\n{}\n{}\n", g.account("root-a"), g.account("root-b")),
    )
    .unwrap();
    l.project(&format!(
        "workers = 4\n\n[groups.prod]\ntarget = [\"{}\"]\n\n[groups.listed]\ntarget = [\"@prod-accounts.txt\"]\nregion = [\"us-east-1\", \"eu-west-1\"]\n\n[groups.not-sandbox]\nignore = [\"{}\"]\nfilter-tag = [\"team=core\"]\n",
        g.ou("Prod"),
        g.ou("Sandbox")
    ));
    let run = Run::of(l.cove(&g).args(["--dry-run", "-g", "prod"]));
    run.expect_code(0);
    assert_eq!(
        run.ids("Targets"),
        {
            let mut ids = g.ids(&["prod-a", "core-a", "deep-a", "deep-b"]);
            ids.sort();
            ids
        },
        "the Prod OU and everything beneath it"
    );
    let run = Run::of(l.cove(&g).args(["--dry-run", "-g", "listed"]));
    run.expect_code(0);
    let mut expected = Vec::new();
    for id in g.ids(&["root-a", "root-b"]) {
        for region in ["eu-west-1", "us-east-1"] {
            expected.push((id.clone(), region.to_owned()));
        }
    }
    expected.sort();
    assert_eq!(run.targets("Targets"), expected, "{}", run.stderr);
    let run = Run::of(
        l.cove(&g)
            .env("COVE_GROUP", "not-sandbox")
            .args(["--dry-run"]),
    );
    run.expect_code(0);
    assert_eq!(
        run.ids("Targets"),
        g.ids(&["prod-a"]),
        "team=core, sandbox-a left out"
    );
    // A flag still wins over the group's value.
    let run = Run::of(
        l.cove(&g)
            .args(["--dry-run", "-g", "prod", "-t", &g.account("root-a")]),
    );
    run.expect_code(0);
    assert_eq!(run.ids("Targets"), g.ids(&["root-a"]));
}

#[test]
fn an_unknown_group_is_an_input_error_listing_the_defined_ones() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    l.user("[groups.mine]\nworkers = 2\n");
    l.project("[groups.prod]\nworkers = 3\n[groups.dev]\nworkers = 4\n");
    for (env, args) in [(None, &["-g", "prdo"][..]), (Some("prdo"), &[][..])] {
        let mut cmd = l.cove(&g);
        if let Some(group) = env {
            cmd.env("COVE_GROUP", group);
        }
        let run = Run::of(cmd.args(args).args(["--", "true"]));
        run.expect_code(2);
        let option = if env.is_some() {
            "COVE_GROUP"
        } else {
            "--group"
        };
        assert!(
            run.stderr.contains(&format!(
                "{option} `prdo`: no such group in the config files; expected one of: dev, mine, prod"
            )),
            "{}",
            run.stderr
        );
    }
    assert_eq!(g.all_calls(), json!({}), "refused before any AWS call");
}

#[test]
fn bad_files_are_input_errors_naming_the_file_and_the_line_before_any_aws_call() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    let cases: &[(&str, &str)] = &[
        ("workers = 4\nregion = [\"us-east-1\"", ":2: not valid TOML"),
        (
            "\nwokers = 4\n",
            ":2: unknown key `wokers`; did you mean `workers`?",
        ),
        (
            "filter-tags = [\"env=prod\"]\n",
            "did you mean `filter-tag`?",
        ),
        (
            "workers = \"many\"\n",
            ":1: invalid value 'many' for `workers`",
        ),
        (
            "workers = [4]\n",
            ":1: `workers` has the wrong type (array); expected a string or a number",
        ),
        (
            "dry-run = \"yes\"\n",
            ":1: `dry-run` has the wrong type (string); expected true or false",
        ),
        ("\n\nworkers = 0\n", ":3: invalid value '0' for `workers`"),
        (
            "timeout = \"soon\"\n",
            ":1: invalid value 'soon' for `timeout`",
        ),
        (
            "output = \"yaml\"\n",
            ":1: invalid value 'yaml' for `output`",
        ),
        (
            "target = [\"acct-1\"]\n",
            ":1: invalid value 'acct-1' for `target`",
        ),
        ("region = \"eu-noth-1\"\n", ":1: "),
        ("\nrole = \"bad role\"\n", ":2: invalid --role `bad role`"),
        ("[groups.prod]\nworkers = 0\n", "group prod at "),
        (
            "external-id = \"Sup3r-Secret-Id\"\n",
            ":1: `external-id` holds a literal value (not shown)",
        ),
        (
            "mfa-code = \"123456\"\n",
            ":1: `mfa-code` cannot be set in a config file",
        ),
        (
            "config = \"other.toml\"\n",
            ":1: `config` cannot be set in a config file",
        ),
        ("[vars]\n\"a b\" = 1\n", ":2: `a b` is not a variable name"),
        (
            "[vars]\nx = [1]\n",
            ":2: variable `x` has the wrong type (array)",
        ),
        ("vars = 3\n", ":1: `vars` must be a table of variables"),
        (
            "[accounts.\"12345\".vars]\nx = 1\n",
            ":1: `12345` in [accounts] is not a 12-digit account ID",
        ),
        (
            "[ous.\"ou-x\"]\nregion = \"us-east-1\"\n",
            ":1: `ou-x` in [ous] is not an OU ID",
        ),
        ("[ous.\"ou-nope\".vars]\nx = 1\n", "is not an OU ID"),
        (
            "[ous.\"ou-ab12-cdef3456\"]\nregion = \"all\"\n",
            ":2: `region` of an account or OU cannot be `all`",
        ),
        (
            "[accounts.\"111111111111\"]\n\nregion = [\"us-east-1\", \"EU-west-1\"]\n",
            ":3: invalid region `EU-west-1`",
        ),
        (
            "[accounts.\"111111111111\"]\nrole = \"R\"\n",
            ":2: unknown key `role` in [accounts.\"111111111111\"]; expected `vars` or `region`",
        ),
        (
            "[groups.prod]\nworkers = 2\n[groups.prod.vars]\nx = 1\n",
            "`vars` cannot be set inside a group",
        ),
        (
            "[vars]\na-b = 1\n[accounts.\"111111111111\".vars]\na_b = 2\n",
            ":2) and `a_b` (",
        ),
        ("target = \"@-\"\n", "cannot read standard input"),
        ("yes = true\n", ":1: `yes` cannot be set in a config file"),
        (
            "\"wrkers\\u001b[31m\" = 1\n",
            "unknown key `wrkers\\u{1b}[31m`",
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let path = l.project(text);
        let group: &[&str] = if text.contains("[groups.prod]") {
            &["-g", "prod"]
        } else {
            &[]
        };
        let run = Run::of(l.cove(&g).args(group).args(["--", "true"]));
        let whole = format!("{}{expected}", path.display());
        let named = if expected.starts_with(':') {
            &whole
        } else {
            *expected
        };
        if run.code != 2
            || !run.stderr.contains(named)
            || !run.stdout.is_empty()
            || run.stderr.contains("Sup3r")
            || run.stderr.contains('\u{1b}')
        {
            failures.push(format!(
                "{text:?}: exit {}, expected 2 and {named:?} in {:?}",
                run.code, run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(g.all_calls(), json!({}), "a bad file reached AWS");
}

#[test]
fn a_found_config_file_that_another_user_could_have_written_is_refused_before_any_aws_call() {
    use std::os::unix::fs::PermissionsExt;
    let g = Ground::start(&[]);
    let l = Layout::new();
    let path = l.project("region = \"eu-west-1\"\n");
    let mode = |p: &Path, bits: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(bits)).unwrap()
    };
    let refused = |why: &str| {
        let run = Run::of(l.cove(&g).args(["--dry-run"]));
        let named = format!("config file `{}`: {why}", path.display());
        assert!(
            run.code == 2 && run.stderr.contains(&named) && run.stdout.is_empty(),
            "expected exit 2 and {named:?}, got {}: {}",
            run.code,
            run.stderr
        );
    };
    mode(&path, 0o664);
    refused("the file can be written by other users (mode 0664)");
    mode(&path, 0o646);
    refused("the file can be written by other users (mode 0646)");
    mode(&path, 0o644);
    mode(&l.project, 0o777);
    refused("its folder can be written by other users (mode 0777)");
    // The user file is judged the same way.
    mode(&l.project, 0o755);
    let user = l.user("workers = 3\n");
    mode(&user, 0o666);
    let run = Run::of(l.cove(&g).args(["--dry-run"]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("config file `{}`", user.display()))
    );
    mode(&user, 0o644);
    if nix::unistd::geteuid().is_root() {
        // Another user's file, as another user's /tmp/cove.toml would be.
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        refused("the file is owned by user 65534");
        std::os::unix::fs::chown(&l.project, Some(65534), None).unwrap();
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        refused("its folder is owned by user 65534");
        std::os::unix::fs::chown(&l.project, Some(0), None).unwrap();
    }
    assert_eq!(g.all_calls(), json!({}), "a refused file reached AWS");
    // A file named with --config was chosen by the caller, and is read as it is.
    mode(&path, 0o666);
    let run = Run::of(l.cove(&g).args(["--dry-run", "--config"]).arg(&path));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(regions(&run), ["eu-west-1"]);
    // A folder writable by all with the sticky bit (as /tmp is) keeps its files to their owners.
    mode(&path, 0o644);
    mode(&l.project, 0o1777);
    let run = Run::of(l.cove(&g).args(["--dry-run"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(regions(&run), ["eu-west-1"]);
}

#[test]
fn a_missing_config_file_is_an_input_error_and_config_names_one_file_instead_of_both() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    l.user("workers = 2\n");
    l.project("workers = 3\n");
    let run = Run::of(l.cove(&g).args(["--config", "nope.toml", "--", "true"]));
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("--config `nope.toml`: no such config file"),
        "{}",
        run.stderr
    );
    let run = Run::of(
        l.cove(&g)
            .env("COVE_CONFIG", "nope.toml")
            .args(["--", "true"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("COVE_CONFIG `nope.toml`: no such config file"),
        "{}",
        run.stderr
    );
    assert_eq!(g.all_calls(), json!({}));

    let other = l.cwd.join("other.toml");
    std::fs::write(&other, "workers = 7\n").unwrap();
    for (env, args) in [(false, &["--config", "other.toml"][..]), (true, &[][..])] {
        let mut cmd = l.cove(&g);
        if env {
            cmd.env("COVE_CONFIG", "other.toml");
        }
        let run = Run::of(cmd.arg("config").args(args));
        run.expect_code(0);
        assert!(
            shown(&run, "workers").starts_with("workers = 7  # "),
            "{}",
            run.stdout
        );
        let mut cmd = l.cove(&g);
        if env {
            cmd.env("COVE_CONFIG", "other.toml");
        }
        let run = Run::of(cmd.args(["config", "--paths"]).args(args));
        let role = if env { "COVE_CONFIG" } else { "--config" };
        assert_eq!(run.stdout, format!("{role}\tread\tother.toml\n"));
    }
    let run = Run::of(l.cove(&g).args(["config", "--no-config"]));
    assert_eq!(shown(&run, "workers"), "workers = 20  # default");
    let run = Run::of(
        l.cove(&g)
            .env("COVE_NO_CONFIG", "true")
            .args(["config", "--paths"]),
    );
    assert_eq!(run.stdout, "# --no-config: no config file is read\n");
    assert_eq!(g.all_calls(), json!({}), "cove config makes no AWS call");
}

#[test]
fn cove_config_names_every_source_and_never_shows_a_secret() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    let user = l.user("timeout = \"5m\"\nfail-fast = true\n");
    let project = l.project(
        "workers = 3\npolicy = '{\"Version\": \"2012-10-17\", \"Statement\": []}'\n[groups.prod]\nexternal-id = \"@ext-id.txt\"\nregion = [\"eu-west-1\", \"us-east-1\"]\n",
    );
    let run = Run::of(
        l.cove(&g)
            .env("COVE_OUTPUT", "jsonl")
            .env("COVE_ROLE_SESSION_NAME", "cove-audit")
            .args(["config", "-g", "prod", "--quiet"]),
    );
    run.expect_code(0);
    let (u, p) = (user.display(), project.display());
    for (key, line) in [
        ("timeout", format!("timeout = \"5m\"  # {u}:1")),
        ("fail-fast", format!("fail-fast = true  # {u}:2")),
        ("workers", format!("workers = 3  # {p}:1")),
        ("policy", format!("policy = \"<set>\"  # {p}:2")),
        (
            "external-id",
            format!(
                "external-id = \"@{}/ext-id.txt\"  # group prod at {p}:4",
                l.project.display()
            ),
        ),
        (
            "region",
            format!("region = [\"eu-west-1\", \"us-east-1\"]  # group prod at {p}:5"),
        ),
        ("output", "output = \"jsonl\"  # COVE_OUTPUT".to_owned()),
        ("quiet", "quiet = true  # --quiet".to_owned()),
        (
            "role",
            "role = [\"OrganizationAccountAccessRole\"]  # default".to_owned(),
        ),
    ] {
        assert_eq!(shown(&run, key), line);
    }
    assert!(
        run.stdout
            .contains(&format!("# group: prod ([groups.prod] at {p}:3)")),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("2012-10-17"),
        "the session policy is never shown"
    );
    let secret = "Sup3r-Secret-External-Id";
    let run = Run::of(l.cove(&g).env("COVE_EXTERNAL_ID", secret).args(["config"]));
    assert_eq!(
        shown(&run, "external-id"),
        "external-id = \"<set>\"  # COVE_EXTERNAL_ID"
    );
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    let run = Run::of(l.cove(&g).args(["config", "--paths"]));
    assert_eq!(run.stdout, format!("user\tread\t{u}\nproject\tread\t{p}\n"));
    std::fs::remove_file(&user).unwrap();
    let run = Run::of(
        l.cove(&g)
            .current_dir(g.home.path())
            .args(["config", "--paths"]),
    );
    assert_eq!(
        run.stdout,
        format!(
            "user\tnot found\t{u}\nproject\tnot found\t{}\n",
            g.home.path().join("cove.toml").display()
        )
    );
    assert_eq!(g.all_calls(), json!({}), "cove config makes no AWS call");
}

#[test]
fn an_external_id_file_named_in_a_config_file_is_read_relative_to_it() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    std::fs::write(l.project.join("ext-id.txt"), "cove-ext-id-from-file\n").unwrap();
    l.project("external-id = \"@ext-id.txt\"\n");
    let run = Run::of(l.cove(&g).args(["-t", &g.account("root-a"), "--", "true"]));
    run.expect_code(0);
    let params = g.assume_params();
    assert!(!params.is_empty());
    assert!(
        params
            .iter()
            .all(|p| p["ExternalId"] == "cove-ext-id-from-file"),
        "{params:?}"
    );
    run.expect_no_secret(["cove-ext-id-from-file"]);
}

#[test]
fn the_example_config_file_loads_with_every_group() {
    let g = Ground::start(&[]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cove.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let groups: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("[groups.")?.split(']').next())
        .collect();
    assert!(groups.len() >= 4, "{groups:?}");
    let mut cmd = g.cove();
    let run = Run::of(cmd.arg("config").arg("--config").arg(&example));
    run.expect_code(0);
    // The variables and per-account regions follow the settings, each with its place.
    let line = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let at = |needle: &str| format!("  # {}:{}", example.display(), line(needle));
    for shown in [
        format!(
            "\n[vars]\nbucket = \"audit-central\"{}\nteam = \"platform\"{}\n",
            at("bucket = \"audit-central\""),
            at("team = \"platform\"")
        ),
        format!(
            "\n[ous.\"ou-ab12-cdef3456\".vars]\nteam = \"payments\"{}\n",
            at("team = \"payments\"")
        ),
        format!(
            "\n[accounts.\"111111111111\"]\nregion = [\"us-east-2\"]{}\n",
            at("region = \"us-east-2\"")
        ),
    ] {
        assert!(run.stdout.contains(&shown), "{shown}\n{}", run.stdout);
    }
    for group in groups {
        let run = Run::of(
            g.cove()
                .args(["config", "-g", group])
                .arg("--config")
                .arg(&example),
        );
        run.expect_code(0);
        assert!(
            run.stdout.contains(&format!("# group: {group} ")),
            "{}",
            run.stdout
        );
    }
    assert_eq!(g.all_calls(), json!({}));
}

#[test]
fn the_readme_groups_select_what_they_say() {
    let g = Ground::start(&[]);
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("## Configuration\n")
        .nth(1)
        .expect("a Configuration section");
    let mut toml = section
        .split("cat > cove.toml <<'EOF'\n")
        .nth(1)
        .and_then(|b| b.split("\nEOF\n").next())
        .expect("the README's cove.toml")
        .to_owned();
    for (sample, real) in crate::docs_examples::samples(&g) {
        toml = toml.replace(sample, &real);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cove.toml"), toml).unwrap();
    std::fs::write(
        dir.path().join("prod-accounts.txt"),
        format!("{}\n{}\n", g.account("deep-b"), g.account("prod-a")),
    )
    .unwrap();
    let sorted = |names: &[&str]| {
        let mut ids = g.ids(names);
        ids.sort();
        ids
    };
    let everyone_but_sandbox: Vec<String> = g
        .active_ids()
        .into_iter()
        .filter(|id| !g.ids(&["sandbox-a", "sandbox-b"]).contains(id))
        .collect();
    for (group, ids, regions) in [
        (
            "prod",
            sorted(&["workloads-a", "prod-a", "core-a", "deep-a", "deep-b"]),
            vec!["us-east-1"],
        ),
        ("not-sandbox", everyone_but_sandbox, vec!["us-east-1"]),
        (
            "prod-tagged",
            sorted(&["prod-a", "core-a"]),
            vec!["eu-west-1", "us-east-1"],
        ),
        ("listed", sorted(&["deep-b", "prod-a"]), vec!["us-east-1"]),
    ] {
        let run = Run::of(
            g.cove()
                .current_dir(dir.path())
                .args(["--dry-run", "-g", group]),
        );
        run.expect_code(0);
        assert_eq!(run.ids("Targets"), ids, "{group}");
        assert_eq!(self::regions(&run), regions, "{group}");
    }
}

#[test]
fn completions_and_the_man_page_cover_the_config_options_and_subcommand() {
    for (path, contents) in cove::assets::render() {
        // roff writes a dash as `\-`.
        let text = String::from_utf8_lossy(&contents).replace("\\-", "-");
        // Long names as each format writes them (`--group`, `-l group`, `'group'`).
        for needle in ["no-config", "group", "paths"] {
            assert!(text.contains(needle), "{needle} in {path}");
        }
        if path == "man/cove.1" {
            assert!(
                text.contains("COVE_GROUP") && text.contains("cove-config"),
                "{path}"
            );
        }
    }
}

#[test]
fn a_file_setting_gives_way_to_a_flag_that_rules_it_out_and_file_conflicts_name_both_places() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    let project = l.project("rerun = \"failed.json\"\n[groups.g]\ntarget = [\"111111111111\"]\n");
    let root_a = g.account("root-a");
    let run = Run::of(l.cove(&g).args(["--dry-run", "-t", &root_a]));
    run.expect_code(0);
    assert_eq!(
        run.ids("Targets"),
        [root_a],
        "--target wins; the file's rerun gives way"
    );
    let run = Run::of(l.cove(&g).args(["--dry-run", "-g", "g"]));
    run.expect_code(2);
    let p = project.display();
    assert!(
        run.stderr.contains(&format!(
            "(--rerun from {p}:1; --target from group g at {p}:3)"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        g.calls("organizations:ListAccounts"),
        1,
        "only the first run listed"
    );
}

#[test]
fn a_bad_flag_or_variable_is_reported_as_it_is_whatever_the_files_say() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    l.project("wokers = 4\n");
    for (var, value, args) in [
        ("COVE_WORKERS", "0", &["--", "true"][..]),
        ("COVE_NO_CONFIG", "maybe", &["--", "true"][..]),
        (
            "COVE_QUIET",
            "true",
            &["--workers", "none", "--", "true"][..],
        ),
    ] {
        let run = Run::of(l.cove(&g).env(var, value).args(args));
        run.expect_code(2);
        let named = if var == "COVE_QUIET" { "'none'" } else { var };
        assert!(
            run.stderr.contains(named) && !run.stderr.contains("wokers"),
            "{var}: {}",
            run.stderr
        );
    }
    assert_eq!(g.all_calls(), json!({}));
}

#[test]
fn a_role_typed_replaces_a_files_permission_set_and_the_other_way_round() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    let root_a = g.account("root-a");
    l.project("sso-role = [\"AdministratorAccess\"]\n");
    let run = Run::of(
        l.cove(&g)
            .args(["--dry-run", "-t", &root_a, "--role", "Audit"]),
    );
    run.expect_code(0);
    assert_eq!(run.doc()["Roles"], json!(["Audit"]), "{}", run.stderr);
    l.project("role = [\"Audit\"]\n");
    let run = Run::of(
        l.cove(&g)
            .args(["config", "--sso-role", "AdministratorAccess"]),
    );
    run.expect_code(0);
    assert_eq!(
        shown(&run, "role"),
        "role = [\"OrganizationAccountAccessRole\"]  # default"
    );
    // A session policy from a file is never dropped silently: the pair is refused, naming it.
    let project = l.project("policy = \"{}\"\n");
    let run = Run::of(
        l.cove(&g)
            .args(["--sso-role", "AdministratorAccess", "--", "true"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "--sso-role cannot be combined with --policy (from {}:1)",
            project.display()
        )),
        "{}",
        run.stderr
    );
}

/// A config file that sets how `--workers auto` runs does not stand in the way of a fixed
/// count typed for one run; a typed `--max-workers` with a fixed count is still refused.
#[test]
fn a_files_auto_settings_give_way_to_a_typed_worker_count() {
    let g = Ground::start(&[]);
    let l = Layout::new();
    l.user("workers = \"auto\"\nmax-workers = 64\nmax-memory = \"1G\"\n");
    let run = Run::of(l.cove(&g).args(["--workers", "8", "--dry-run"]));
    run.expect_code(0);
    let run = Run::of(
        l.cove(&g)
            .args(["--workers", "8", "--max-workers", "9", "--dry-run"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("--max-workers applies only to --workers auto"),
        "{}",
        run.stderr
    );
}
