//! Partitions: the caller's ARN says which partition cove runs in (aws, aws-cn, aws-us-gov).
//! The ground rewrites the caller's ARN (`--caller-partition`); moto answers the rest as usual.

use crate::support::{Ground, Run};

#[test]
fn a_us_gov_caller_assumes_roles_fills_records_and_templates_in_its_partition() {
    let g = Ground::start(&["--caller-partition", "aws-us-gov"]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--region",
        "us-gov-west-1",
        "--",
        "echo",
        "{partition}/{region}",
    ]));
    run.expect_code(0);
    let results = run.list("Results");
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r["Partition"], "aws-us-gov", "{r}");
        assert_eq!(r["Region"], "us-gov-west-1", "{r}");
        assert_eq!(r["Result"], "aws-us-gov/us-gov-west-1\n", "{r}");
    }
    let mut arns: Vec<String> = g
        .assume_params()
        .iter()
        .map(|p| p["RoleArn"].as_str().unwrap().to_owned())
        .collect();
    arns.sort();
    let expected: Vec<String> = g
        .ids(&["sandbox-a", "sandbox-b"])
        .iter()
        .map(|id| format!("arn:aws-us-gov:iam::{id}:role/OrganizationAccountAccessRole"))
        .collect();
    assert_eq!(arns, expected);
}

#[test]
fn a_china_caller_runs_the_whole_organization_in_aws_cn() {
    let g = Ground::start(&["--caller-partition", "aws-cn"]);
    let run = Run::of(
        g.cove()
            .args(["--region", "cn-north-1", "--", "echo", "{partition}"]),
    );
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    for r in run.list("Results") {
        assert_eq!(r["Partition"], "aws-cn", "{r}");
        assert_eq!(r["Result"], "aws-cn\n", "{r}");
    }
    for p in g.assume_params() {
        assert!(
            p["RoleArn"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws-cn:iam::"),
            "{p}"
        );
    }
}

#[test]
fn a_region_of_another_partition_is_rejected_after_identifying_the_caller() {
    let g = Ground::start(&["--caller-partition", "aws-us-gov"]);
    let ou = g.ou("Sandbox");
    // With --target and on the whole-organization path alike.
    for args in [vec!["-t", ou.as_str()], vec![]] {
        let run = Run::of(g.cove().args(&args).args([
            "--region",
            "us-gov-west-1,eu-west-1",
            "--",
            "true",
        ]));
        run.expect_code(2);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(
            run.stderr.contains(
                "region `eu-west-1` is in partition `aws`, but the credentials belong to partition `aws-us-gov`"
            ),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(g.calls("sts:GetCallerIdentity"), 2, "the caller was asked");
    assert_eq!(g.calls("sts:AssumeRole"), 0, "no role was assumed");
}
