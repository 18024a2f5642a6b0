//! The command line, as clap sees it. Values are checked here only as far as their own shape;
//! [`crate::config`] turns them into a validated run configuration.

use std::ffi::OsString;

use clap::Parser;

use crate::ids::{OrgId, parse_org_id};

const AFTER_HELP: &str = "\
Exit codes:
  0    every target ran its command and it exited 0
  1    at least one target is in Exceptions or FailedAssumeRole
  2    bad input, or nothing could run (no credentials, no eligible targets,
       the organization could not be listed)
  130  interrupted (Ctrl-C or SIGTERM); finished targets are still reported

Output (stdout): one JSON document {\"Results\": [...], \"Exceptions\": [...],
\"FailedAssumeRole\": [...]}, records sorted by Id then Region. Notes and errors go to stderr.

Example:
  cove --target ou-ab12-cdef3456 --region eu-west-1,us-east-1 -- aws s3 ls";

/// Run one command in every AWS account and region of an organization, concurrently, and
/// report every outcome as JSON.
#[derive(Debug, Parser)]
#[command(name = "cove", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Account, OU or root ID to run in (repeatable, or comma-separated). An OU or the root
    /// means every account beneath it. Default: every account in the organization.
    #[arg(short = 't', long = "target", value_name = "ID", value_delimiter = ',',
          value_parser = parse_org_id, env = "COVE_TARGETS", help_heading = "Targets")]
    pub targets: Vec<OrgId>,

    /// Account, OU or root ID to leave out (repeatable, or comma-separated). An ignore always
    /// wins over a target; an ignored OU ignores everything beneath it.
    #[arg(short = 'i', long = "ignore", value_name = "ID", value_delimiter = ',',
          value_parser = parse_org_id, env = "COVE_IGNORE", help_heading = "Targets")]
    pub ignores: Vec<OrgId>,

    /// Region to run in (repeatable, or comma-separated). Default: the region of the
    /// credential chain (AWS_REGION, the profile).
    #[arg(
        long = "region",
        value_name = "REGION",
        value_delimiter = ',',
        env = "COVE_REGIONS",
        help_heading = "Targets"
    )]
    pub regions: Vec<String>,

    /// Accept a well-formed region name that cove's built-in list does not know yet.
    #[arg(long, help_heading = "Targets")]
    pub allow_unknown_region: bool,

    /// Role to assume in each target account.
    #[arg(
        short = 'r',
        long,
        value_name = "NAME",
        default_value = "OrganizationAccountAccessRole",
        env = "COVE_ROLE",
        help_heading = "Role"
    )]
    pub role: String,

    /// Session name for the assumed role. Default: the role name.
    #[arg(
        long,
        value_name = "NAME",
        env = "COVE_ROLE_SESSION_NAME",
        help_heading = "Role"
    )]
    pub role_session_name: Option<String>,

    /// Session policy JSON, or @FILE to read it from a file. Never printed.
    #[arg(long, value_name = "JSON|@FILE", help_heading = "Role")]
    pub policy: Option<String>,

    /// Managed policy ARN to scope the session with (repeatable).
    #[arg(long = "policy-arn", value_name = "ARN", help_heading = "Role")]
    pub policy_arns: Vec<String>,

    /// External ID required by the role's trust policy. Never printed.
    #[arg(
        long,
        value_name = "ID",
        env = "COVE_EXTERNAL_ID",
        hide_env_values = true,
        help_heading = "Role"
    )]
    pub external_id: Option<String>,

    /// Session duration in seconds (900 to 43200). Default: the role's own default.
    #[arg(long, value_name = "SECONDS", env = "COVE_DURATION",
          value_parser = clap::value_parser!(i32).range(900..=43200), help_heading = "Role")]
    pub duration: Option<i32>,

    /// AWS profile that supplies the assuming credentials.
    #[arg(long, value_name = "NAME", help_heading = "Role")]
    pub profile: Option<String>,

    /// How many targets run at once.
    #[arg(short = 'w', long, value_name = "N", default_value_t = 20, env = "COVE_WORKERS",
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Running")]
    pub workers: u32,

    /// On the first failure (assume or command), start nothing new, stop running children,
    /// and report what finished.
    #[arg(long, env = "COVE_FAIL_FAST", help_heading = "Running")]
    pub fail_fast: bool,

    /// The command to run in every target, with its arguments. It runs directly, with no
    /// shell: write `-- sh -c '...'` for pipes.
    #[arg(last = true, required = true, value_name = "COMMAND",
          num_args = 1.., allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn targets_accept_repeats_and_commas() {
        let cli = Cli::try_parse_from([
            "cove",
            "-t",
            "111111111111,ou-ab12-cdef3456",
            "--target",
            "r-ab12",
            "--",
            "true",
        ])
        .unwrap();
        assert_eq!(cli.targets.len(), 3);
    }
}
