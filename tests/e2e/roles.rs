//! The role topologies of real organizations: fallback role lists, hub role chains
//! (`--via-role`), a separate identity for Organizations (`--org-role`), and target lists from
//! files. The ground tells which identity signed each call.

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::support::{Ground, Run, SpawnPiped, WHO_AM_I};

const OAAR: &str = "OrganizationAccountAccessRole";
const CT: &str = "AWSControlTowerExecution";

fn role(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// The role ARNs cove asked AssumeRole for, in order.
fn assumed(g: &Ground) -> Vec<String> {
    g.assume_params()
        .iter()
        .map(|p| p["RoleArn"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn times(g: &Ground, arn: &str) -> usize {
    assumed(g).iter().filter(|a| *a == arn).count()
}

/// The identities that made calls of one operation, and how many each.
fn signers(g: &Ground, operation: &str) -> Value {
    g.calls_by_identity()[operation].clone()
}

#[test]
fn fallback_roles_land_every_account_in_results_with_the_role_that_worked() {
    let g = Ground::start(&["--deny-role-in", &format!("{OAAR}:prod-a,sandbox-b")]);
    let run = Run::of(
        g.cove()
            .args([
                "--role",
                &format!("{OAAR},{CT}"),
                "--region",
                "us-east-1,eu-west-1",
                "--",
            ])
            .args(WHO_AM_I),
    );
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    let fallen_back = g.ids(&["prod-a", "sandbox-b"]);
    for r in run.list("Results") {
        let id = r["Id"].as_str().unwrap();
        let expected = if fallen_back.iter().any(|f| f == id) {
            CT
        } else {
            OAAR
        };
        assert_eq!(r["RoleName"], expected, "{r}");
        assert_eq!(
            r["RoleSessionName"], expected,
            "named after the role used: {r}"
        );
        let arn = r["Result"]["Arn"].as_str().unwrap();
        assert!(
            arn.contains(&format!("assumed-role/{expected}/{expected}")),
            "the command ran as the role that worked: {arn}"
        );
    }
    // One successful AssumeRole per account, for both regions; the denied role first where
    // it was denied.
    for id in g.active_ids() {
        let tried: Vec<String> = assumed(&g)
            .into_iter()
            .filter(|a| a.contains(&format!("::{id}:")))
            .collect();
        let mut expected = vec![role(&id, OAAR)];
        if fallen_back.contains(&id) {
            expected.push(role(&id, CT));
        }
        assert_eq!(tried, expected, "{id}");
    }
}

#[test]
fn an_account_where_every_role_is_denied_names_each_role_tried() {
    let g = Ground::start(&[
        "--deny-role-in",
        &format!("{OAAR}:prod-a"),
        "--deny-role-in",
        &format!("{CT}:prod-a"),
    ]);
    let (prod, root) = (g.account("prod-a"), g.account("root-a"));
    let targets = format!("{prod},{root}");

    let dry = Run::of(g.cove().env("COVE_ROLE", format!("{OAAR},{CT}")).args([
        "--dry-run",
        "-t",
        &targets,
        "--",
        "true",
    ]));
    dry.expect_code(0);
    assert_eq!(
        dry.doc()["Roles"],
        json!([OAAR, CT]),
        "the dry run shows the roles"
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0);

    let run = Run::of(
        g.cove()
            .env("COVE_ROLE", format!("{OAAR},{CT}"))
            .args(["-t", &targets, "--", "true"]),
    );
    run.expect_code(1);
    assert_eq!(run.ids("Results"), std::slice::from_ref(&root));
    let failed = run.list("FailedAssumeRole");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["RoleName"], CT, "the last role tried");
    assert_eq!(failed[0]["RoleSessionName"], CT);
    let details = failed[0]["ExceptionDetails"].as_str().unwrap();
    for arn in [role(&prod, OAAR), role(&prod, CT)] {
        assert!(
            details.contains(&format!("could not assume {arn}: AccessDenied")),
            "{details}"
        );
    }
    assert_eq!(
        g.calls("sts:AssumeRole"),
        3,
        "two tries in prod-a, one in root-a"
    );
}

#[test]
fn a_via_role_chain_assumes_each_hop_once_and_acts_as_the_last_hop() {
    let g = Ground::start(&[]);
    let jump = role(&g.account("root-a"), "Jump");
    let hub = role(&g.caller(), "Hub");
    let run = Run::of(
        g.cove()
            .args(["--via-role", &jump, "--via-role", &hub, "--"])
            .args(WHO_AM_I),
    );
    run.expect_code(0);
    // The hub is in the management account: the calling account, left out as usual.
    assert_eq!(run.ids("Results"), g.active_ids());
    assert_eq!(times(&g, &jump), 1, "each hop once");
    assert_eq!(times(&g, &hub), 1, "each hop once");
    let targets = g.active_ids().len() as u64;
    assert_eq!(
        signers(&g, "sts:AssumeRole"),
        json!({"starting": 1, jump.as_str(): 1, hub.as_str(): targets}),
        "the first hop with the starting keys, the next with the first's, targets with the hub's"
    );
    assert_eq!(signers(&g, "sts:GetCallerIdentity")[&hub], 1);
    assert!(
        signers(&g, "sts:GetCallerIdentity")
            .get("starting")
            .is_none()
    );
    assert_eq!(
        signers(&g, "organizations:ListAccounts"),
        json!({hub.as_str(): 1})
    );
}

#[test]
fn the_org_role_reads_the_organization_while_the_hub_assumes_the_targets() {
    let g = Ground::start(&[]);
    let hub = role(&g.account("root-b"), "Hub");
    let reader = role(&g.caller(), "OrgReader");
    let run = Run::of(
        g.cove()
            .args(["--via-role", &hub, "--org-role", &reader, "--", "true"]),
    );
    run.expect_code(0);
    // The hub's account calls, so it is left out; the management account is a target now.
    let mut expected: Vec<String> = g
        .active_ids()
        .into_iter()
        .filter(|id| *id != g.account("root-b"))
        .chain([g.caller()])
        .collect();
    expected.sort();
    assert_eq!(run.ids("Results"), expected);
    assert_eq!(
        signers(&g, "organizations:ListAccounts"),
        json!({reader.as_str(): 1})
    );
    assert_eq!(
        signers(&g, "sts:AssumeRole"),
        json!({"starting": 1, hub.as_str(): 1 + expected.len()}),
        "the org role and every target are assumed as the hub"
    );
    assert_eq!(times(&g, &reader), 1);
}

#[test]
fn the_org_role_serves_the_ou_walk_and_the_tags_too() {
    let g = Ground::start(&[]);
    let reader = role(&g.caller(), "OrgReader");
    let run = Run::of(g.cove().args([
        "--org-role",
        &reader,
        "-t",
        &g.ou("Workloads"),
        "--ignore",
        &g.ou("Deep"),
        "--filter-tag",
        "env=prod",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["prod-a", "core-a"]));
    let by_identity = g.calls_by_identity();
    let org_calls: Vec<(&String, &Value)> = by_identity
        .as_object()
        .unwrap()
        .iter()
        .filter(|(op, _)| op.starts_with("organizations:"))
        .collect();
    for op in [
        "ListAccounts",
        "ListOrganizationalUnitsForParent",
        "ListAccountsForParent",
        "ListTagsForResource",
    ] {
        let op = format!("organizations:{op}");
        assert!(
            by_identity.get(&op).is_some(),
            "{op} was made: {by_identity}"
        );
    }
    for (op, signers) in org_calls {
        let signers = signers.as_object().unwrap();
        assert_eq!(
            signers.keys().collect::<Vec<_>>(),
            [&reader],
            "{op}: {signers:?}"
        );
    }
    assert_eq!(
        signers(&g, "sts:AssumeRole"),
        json!({"starting": 3}),
        "the org role and both targets are assumed with the calling identity"
    );
}

#[test]
fn a_denied_hop_or_org_role_fails_the_run_naming_it_before_any_target() {
    let g = Ground::start(&[
        "--deny-role-in",
        "Hub:root-b",
        "--deny-role-in",
        "OrgReader:management",
    ]);
    let jump = role(&g.account("root-a"), "Jump");
    let hub = role(&g.account("root-b"), "Hub");
    let run = Run::of(
        g.cove()
            .args(["--via-role", &format!("{jump},{hub}"), "--", "true"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr
            .contains(&format!("--via-role `{hub}` (hop 2 of 2)"))
            && run.stderr.contains("AccessDenied"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(
        assumed(&g),
        [jump.clone(), hub.clone()],
        "no target was attempted"
    );
    assert_eq!(g.calls("sts:GetCallerIdentity"), 0);
    assert_eq!(g.calls("organizations:ListAccounts"), 0);

    let reader = role(&g.caller(), "OrgReader");
    let run = Run::of(g.cove().args(["--org-role", &reader, "--", "true"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!("--org-role `{reader}`"))
            && run.stderr.contains("AccessDenied"),
        "{}",
        run.stderr
    );
    assert_eq!(assumed(&g).len(), 3, "only the org role was tried");
    assert_eq!(g.calls("organizations:ListAccounts"), 0);
}

#[test]
fn hop_credentials_are_renewed_before_they_expire() {
    // The hub's sessions last 60 s: inside the five-minute margin from the start, so every
    // use renews them. A run that only renewed expired credentials would assume it once.
    let g = Ground::start(&["--short-expiry", "Hub:60"]);
    let hub = role(&g.caller(), "Hub");
    let targets = g.ids(&["root-a", "root-b", "prod-a"]);
    let run = Run::of(g.cove().args([
        "--via-role",
        &hub,
        "--workers",
        "1",
        "-t",
        &targets.join(","),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), targets);
    assert!(times(&g, &hub) >= 4, "renewed: {:?}", assumed(&g));
    assert_eq!(
        signers(&g, "sts:AssumeRole")[&hub],
        3,
        "every target is still assumed as the (renewed) hub"
    );
}

#[test]
fn renewed_hop_credentials_are_the_ones_that_sign_once_the_first_ones_expired() {
    // Both hops and the targets' role last two seconds, and the ground refuses keys after the
    // Expiration it issued (ExpiredToken), as AWS does. Each target's role is renewed when its
    // command starts, through both hops; the first command outlasts every key issued before
    // the second starts (the second's prefetched ones too), so the second target runs only if
    // each hop signs with the keys it renewed.
    let g = Ground::start(&[
        "--short-expiry",
        "Hub:2",
        "--short-expiry",
        "Spoke:2",
        "--short-expiry",
        &format!("{OAAR}:2"),
    ]);
    let hub = role(&g.caller(), "Hub");
    let spoke = role(&g.caller(), "Spoke");
    let targets = g.ids(&["root-a", "root-b"]);
    let run = Run::of(g.cove().args([
        "--via-role",
        &format!("{hub},{spoke}"),
        "--workers",
        "1",
        "-t",
        &targets.join(","),
        "--",
        "sleep",
        "3",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), targets);
    assert_eq!(
        g.expired_calls(),
        json!({}),
        "no call was signed with expired keys"
    );
    // Both hops signed with more than one of their keys: the renewed ones were used.
    let keys = g.issued_keys();
    for hop in [&hub, &spoke] {
        let used = keys
            .as_object()
            .unwrap()
            .values()
            .filter(|k| k["identity"] == hop.as_str() && k["uses"].as_u64() > Some(0))
            .count();
        assert!(used >= 2, "{hop} signed with {used} of its keys: {keys}");
    }
    assert_eq!(
        signers(&g, "sts:AssumeRole")[&spoke].as_u64(),
        Some(
            times(&g, &role(&targets[0], OAAR)) as u64 + times(&g, &role(&targets[1], OAAR)) as u64
        ),
        "every target is assumed as the spoke"
    );
    run.expect_no_secret(g.secrets());
}

#[test]
fn ids_from_a_file_and_stdin_mix_with_the_command_line_and_the_child_stdin_stays_dev_null() {
    let g = Ground::start(&[]);
    let file = g.home.path().join("targets.txt");
    std::fs::write(
        &file,
        format!(
            "# payments\n{}\n\n   {}   # the sandbox OU\n",
            g.account("root-a"),
            g.ou("Sandbox")
        ),
    )
    .unwrap();
    let mut child = g
        .cove()
        .args([
            "-t",
            &format!("@{}", file.display()),
            "-t",
            &g.account("prod-a"),
            "--ignore",
            "@-",
            "--",
            "sh",
            "-c",
            "if [ -c /dev/stdin ] && [ ! -t 0 ]; then echo dev-null; else echo inherited; fi",
        ])
        .stdin(Stdio::piped())
        .spawn_piped();
    writeln!(
        child.stdin.take().unwrap(),
        "# not this one\n{}",
        g.account("sandbox-b")
    )
    .unwrap();
    let run = Run::from_output(child.wait_with_output().unwrap());
    run.expect_code(0);
    assert_eq!(
        run.ids("Results"),
        g.ids(&["root-a", "prod-a", "sandbox-a"])
    );
    for r in run.list("Results") {
        assert_eq!(r["Result"], "dev-null\n", "{r}");
    }
}

/// (arguments before `--`, extra environment, text the message must contain)
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], String);

#[test]
fn bad_role_topology_input_exits_2_naming_it_before_any_aws_call() {
    let g = Ground::start(&[]);
    let hub = "arn:aws:iam::111111111111:role/Hub";
    let ids = g.home.path().join("ids.txt");
    std::fs::write(&ids, "111111111111\n# fine\n11111111111\n").unwrap();
    let ids_arg = format!("@{}", ids.display());
    let cases: &[Case] = &[
        (
            &["--via-role", hub, "--duration", "3601"],
            &[],
            "one-hour limit (3600 seconds)".into(),
        ),
        (
            &["--duration", "7200"],
            &[(
                "COVE_VIA_ROLES",
                "arn:aws:iam::111111111111:role/A,arn:aws:iam::222222222222:role/B",
            )],
            "one-hour limit".into(),
        ),
        (&["--via-role", "Hub"], &[], "--via-role `Hub`".into()),
        (
            &["--org-role", "arn:aws:iam::1:role/R"],
            &[],
            "arn:aws:iam::1:role/R".into(),
        ),
        (
            &["-t", &ids_arg],
            &[],
            format!("file `{}`, line 3", ids.display()),
        ),
        (&["-i", "@/nonexistent/ids"], &[], "/nonexistent/ids".into()),
        (&["-t", "@"], &[], "names no file".into()),
    ];
    for (args, env, expected) in cases {
        let run = Run::of(
            g.cove()
                .envs(env.iter().copied())
                .args(*args)
                .args(["--", "true"]),
        );
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected.as_str()),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    // A bad line on standard input; and standard input read twice.
    for (args, stdin, expected) in [
        (
            &["-t", "@-"][..],
            "111111111111\nou-x\n",
            "--target @- (standard input), line 2",
        ),
        (
            &["-t", "@-", "-i", "@-"][..],
            "111111111111\n",
            "read only once",
        ),
    ] {
        let mut child = g
            .cove()
            .args(args)
            .args(["--", "true"])
            .stdin(Stdio::piped())
            .spawn_piped();
        write!(child.stdin.take().unwrap(), "{stdin}").unwrap();
        let run = Run::from_output(child.wait_with_output().unwrap());
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    assert_eq!(g.all_calls(), json!({}), "bad input reached AWS");
}

#[test]
fn a_throttled_hop_is_retried_like_every_other_call() {
    // The SDK's default of three attempts would give up on the hop; cove's policy does not.
    let g = Ground::start(&["--throttle-first", "sts:AssumeRole=4"]);
    let hub = role(&g.caller(), "Hub");
    let run = Run::of(
        g.cove()
            .args(["--via-role", &hub, "-t", &g.ou("Sandbox"), "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["sandbox-a", "sandbox-b"]));
    assert_eq!(
        g.calls("sts:AssumeRole"),
        4 + 1 + 2,
        "four throttled answers, the hop, one per target"
    );
}
