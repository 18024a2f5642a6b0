//! The command line, as clap sees it. Values are checked here only as far as their own shape;
//! [`crate::config`] turns them into a validated run configuration.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use clap::Parser;

use std::path::PathBuf;

use crate::child_env::Delivery;
use crate::filters::{parse_regex, parse_tag};
use crate::ids::{IdArg, parse_id_arg};
use crate::merge::RerunOnly;
use crate::output::Format;
use crate::plan::{Shard, parse_shard};

/// `cove --version`: the version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("COVE_GIT_COMMIT"),
    ")"
);

/// The end of `--help` before the examples (and the man page's EXTRA section).
pub const AFTER_HELP: &str = "\
Exit codes:
  0    every target ran its command and it exited 0
  1    at least one target is in Exceptions or FailedAssumeRole
  2    bad input, or nothing could run (no credentials, no eligible targets,
       the organization could not be listed), or the output could not be written
  130  interrupted (Ctrl-C or SIGTERM); finished targets are still reported

Output (stdout): one JSON document {\"Results\": [...], \"Exceptions\": [...],
\"FailedAssumeRole\": [...]}, records sorted by Id then Region; or, with --output text, each
target's lines as `ACCOUNT NAME REGION | line` (`!` for stderr). Notes and errors go to stderr.";

/// Run one command in every AWS account and region of an organization, concurrently, and
/// report every outcome as JSON.
#[derive(Debug, Parser)]
#[command(name = "cove", version = VERSION, about, after_help = crate::examples::help_tail(AFTER_HELP),
          args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,

    /// Account, OU or root ID to run in (repeatable, or comma-separated). An OU or the root
    /// means every account beneath it. @FILE reads IDs from a file, one per line (# comments),
    /// and @- from standard input. Default: every account in the organization.
    #[arg(short = 't', long = "target", value_name = "ID|@FILE", value_delimiter = ',',
          value_parser = parse_id_arg, env = "COVE_TARGETS", help_heading = "Targets")]
    pub targets: Vec<IdArg>,

    /// Account, OU or root ID to leave out (repeatable, or comma-separated; @FILE as for
    /// --target). An ignore always wins over a target; an ignored OU ignores everything beneath
    /// it.
    #[arg(short = 'i', long = "ignore", value_name = "ID|@FILE", value_delimiter = ',',
          value_parser = parse_id_arg, env = "COVE_IGNORE", help_heading = "Targets")]
    pub ignores: Vec<IdArg>,

    /// Region to run in (repeatable, or comma-separated). `all` runs every region each account
    /// has enabled, asked of the account itself (account:ListRegions). Default: the region of
    /// the credential chain (AWS_REGION, the profile).
    #[arg(
        long = "region",
        value_name = "REGION",
        value_delimiter = ',',
        env = "COVE_REGIONS",
        help_heading = "Targets"
    )]
    pub regions: Vec<String>,

    /// Leave this region out (repeatable, or comma-separated), for example with `--region all`.
    #[arg(
        long,
        value_name = "REGION",
        value_delimiter = ',',
        env = "COVE_EXCLUDE_REGIONS",
        help_heading = "Targets"
    )]
    pub exclude_region: Vec<String>,

    /// Accept a well-formed region name that cove's built-in list does not know yet.
    #[arg(long, env = "COVE_ALLOW_UNKNOWN_REGION", help_heading = "Targets")]
    pub allow_unknown_region: bool,

    /// Make the calling account a target like any other when it is selected. The command still
    /// runs with the assumed role's credentials, never with the caller's.
    #[arg(long, env = "COVE_INCLUDE_CALLER", help_heading = "Targets")]
    pub include_caller: bool,

    /// Keep only accounts whose name matches this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, env = "COVE_FILTER_NAME",
          help_heading = "Filters")]
    pub filter_name: Option<regex::Regex>,

    /// Keep only accounts whose email matches this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, env = "COVE_FILTER_EMAIL",
          help_heading = "Filters")]
    pub filter_email: Option<regex::Regex>,

    /// Keep only accounts with this Organizations tag (repeatable; all must match).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tag, env = "COVE_FILTER_TAGS",
          value_delimiter = ',', help_heading = "Filters")]
    pub filter_tag: Vec<(String, String)>,

    /// Run only shard K of N (1-based). Accounts are split deterministically, so every
    /// machine of a CI matrix computes the same split.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, env = "COVE_SHARD",
          help_heading = "Sharding")]
    pub shard: Option<Shard>,

    /// Read this shard's 0-based index from the named environment variable (for example
    /// JOB_COMPLETION_INDEX on Kubernetes Indexed Jobs). Needs --shard-count.
    #[arg(
        long,
        value_name = "VAR",
        requires = "shard_count",
        help_heading = "Sharding"
    )]
    pub shard_index_env: Option<String>,

    /// The number of shards, with --shard-index-env.
    #[arg(long, value_name = "N", requires = "shard_index_env",
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Sharding")]
    pub shard_count: Option<u32>,

    /// Run exactly the account × region pairs that were in Exceptions or FailedAssumeRole in
    /// a previous json or jsonl output.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "targets",
        help_heading = "Targets"
    )]
    pub rerun: Option<PathBuf>,

    /// With --rerun, take only one of the two lists.
    #[arg(
        long,
        value_name = "LIST",
        value_enum,
        requires = "rerun",
        help_heading = "Targets"
    )]
    pub rerun_only: Option<RerunOnly>,

    /// Run exactly the account × region targets of a --dry-run document, without listing the
    /// organization (no Organizations call). @- (or -) reads it from standard input. --shard
    /// splits the plan as it would split a listing; --target, --ignore, --region and the
    /// filters cannot be combined with it.
    #[arg(long, value_name = "FILE", env = "COVE_PLAN", help_heading = "Targets")]
    pub plan: Option<String>,

    /// With --plan, run a plan that another calling account made.
    #[arg(
        long,
        env = "COVE_PLAN_ANY_CALLER",
        requires = "plan",
        help_heading = "Targets"
    )]
    pub plan_any_caller: bool,

    /// Resolve the targets and print the account × region matrix as JSON, then stop. No role
    /// is assumed and nothing runs, so the command may be left out.
    #[arg(long, help_heading = "Targets")]
    pub dry_run: bool,

    /// Role to assume in each target account. Several (repeatable, or comma-separated) are
    /// tried in order, and each account uses the first it may assume; only AccessDenied moves on
    /// to the next.
    #[arg(
        short = 'r',
        long,
        value_name = "NAME",
        value_delimiter = ',',
        default_value = "OrganizationAccountAccessRole",
        env = "COVE_ROLE",
        help_heading = "Role"
    )]
    pub role: Vec<String>,

    /// Permission set of IAM Identity Center to run each target with, instead of assuming a
    /// role: its credentials come from the access portal with the token `aws sso login` cached
    /// for the profile. Several (comma-separated) are tried in order, like --role.
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        env = "COVE_SSO_ROLE",
        help_heading = "Role"
    )]
    pub sso_role: Vec<String>,

    /// Session name for the assumed role. Default: the name of the role used.
    #[arg(
        long,
        value_name = "NAME",
        env = "COVE_ROLE_SESSION_NAME",
        help_heading = "Role"
    )]
    pub role_session_name: Option<String>,

    /// Session policy JSON, or @FILE to read it from a file. Never printed.
    #[arg(
        long,
        value_name = "JSON|@FILE",
        env = "COVE_POLICY",
        hide_env_values = true,
        help_heading = "Role"
    )]
    pub policy: Option<String>,

    /// Managed policy ARN to scope the session with (repeatable).
    #[arg(
        long = "policy-arn",
        value_name = "ARN",
        value_delimiter = ',',
        env = "COVE_POLICY_ARNS",
        help_heading = "Role"
    )]
    pub policy_arns: Vec<String>,

    /// External ID required by the role's trust policy, or @FILE to read it from a file (so
    /// that it stays out of the process list, like COVE_EXTERNAL_ID). Never printed.
    #[arg(
        long,
        value_name = "ID|@FILE",
        env = "COVE_EXTERNAL_ID",
        hide_env_values = true,
        help_heading = "Role"
    )]
    pub external_id: Option<String>,

    /// Session duration in seconds (900 to 43200). Default: the role's own default.
    #[arg(long, value_name = "SECONDS", env = "COVE_DURATION",
          value_parser = clap::value_parser!(i32).range(900..=43200), help_heading = "Role")]
    pub duration: Option<i32>,

    /// At most N AssumeRole calls per second, to stay under a known STS quota. Default:
    /// unlimited; with --sso-role, 10 GetRoleCredentials calls per second (the portal throttles
    /// at about 20).
    #[arg(long, value_name = "N", env = "COVE_MAX_ASSUME_RATE", value_parser = parse_rate,
          help_heading = "Role")]
    pub max_assume_rate: Option<f64>,

    /// AWS profile that supplies the assuming credentials.
    #[arg(long, value_name = "NAME", env = "COVE_PROFILE", help_heading = "Role")]
    pub profile: Option<String>,

    /// Role ARN to assume before anything else and act as from then on (repeatable, or
    /// comma-separated: hops in the order given, each assumed with the previous one's
    /// credentials). The last hop calls GetCallerIdentity, Organizations and every AssumeRole
    /// into a target. Role chains last at most one hour, so --duration is at most 3600.
    #[arg(
        long = "via-role",
        value_name = "ARN",
        value_delimiter = ',',
        env = "COVE_VIA_ROLES",
        help_heading = "Role"
    )]
    pub via_roles: Vec<String>,

    /// Role ARN to read the organization through (ListAccounts, the OU walk, tags), assumed
    /// with the calling identity (after any --via-role). AssumeRole into the targets still uses
    /// the calling identity.
    #[arg(long, value_name = "ARN", env = "COVE_ORG_ROLE", help_heading = "Role")]
    pub org_role: Option<String>,

    /// MFA device (a virtual device ARN or a hardware serial) for sts:GetSessionToken: cove
    /// trades the starting credentials and the device's code for a session once, and that
    /// session is then the starting identity (before any --via-role).
    #[arg(
        long,
        value_name = "SERIAL",
        env = "COVE_MFA_SERIAL",
        help_heading = "Role"
    )]
    pub mfa_serial: Option<String>,

    /// The code the --mfa-serial device shows. Without it, cove asks on the terminal (nothing
    /// is echoed) when standard input is one, which keeps it out of the process list. Never
    /// printed.
    #[arg(
        long,
        value_name = "CODE",
        requires = "mfa_serial",
        help_heading = "Role"
    )]
    pub mfa_code: Option<String>,

    /// How many targets run at once: a count, or `auto` to follow the machine (grow while
    /// the CPU and memory have room and throughput rises, shrink when the CPU is saturated
    /// with no gain or memory runs short; see --max-workers and --max-memory).
    #[arg(short = 'w', long, value_name = "N|auto", default_value = "20", env = "COVE_WORKERS",
          value_parser = crate::workers::parse_workers, help_heading = "Running")]
    pub workers: crate::workers::Workers,

    /// With --workers auto: the most targets that ever run at once.
    #[arg(long, value_name = "N", default_value_t = 256, env = "COVE_MAX_WORKERS",
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Running")]
    pub max_workers: u32,

    /// With --workers auto: the memory cove and its commands may use together (suffixes K, M,
    /// G are powers of 1024; at least 64M). Auto treats it as the machine's memory, as it does
    /// a container's limit it can see. Default: the machine's (or the container's) memory.
    #[arg(long, value_name = "BYTES", env = "COVE_MAX_MEMORY", value_parser = parse_bytes,
          help_heading = "Running")]
    pub max_memory: Option<usize>,

    /// On the first failure (assume or command), start nothing new, stop running children,
    /// and report what finished.
    #[arg(long, env = "COVE_FAIL_FAST", help_heading = "Running")]
    pub fail_fast: bool,

    /// Once more than N targets (or P% of the targets known) have failed, start nothing new:
    /// the commands running finish (nothing is killed, unlike --fail-fast) and every target
    /// that did not start is reported as cancelled ("max failures reached"). 0 halts at the
    /// first failure.
    #[arg(long, value_name = "N|P%", env = "COVE_MAX_FAILURES",
          value_parser = crate::rollout::parse_max_failures, help_heading = "Rollout")]
    pub max_failures: Option<crate::rollout::Budget>,

    /// Run the first N targets first (a listed run: the first N in output order; a streamed
    /// one: the first N listed) and everything else only once they have all succeeded. If a
    /// canary fails, nothing else starts ("canary failed").
    #[arg(long, value_name = "N", env = "COVE_CANARY",
          value_parser = crate::rollout::parse_canary, help_heading = "Rollout")]
    pub canary: Option<u64>,

    /// Before the first credential call, say on stderr what will run where and ask y/N on the
    /// terminal. Anything but y or yes stops with exit 2 and nothing run.
    #[arg(long, env = "COVE_CONFIRM", help_heading = "Rollout")]
    pub confirm: bool,

    /// Answer yes to --confirm (for scripts and CI: no terminal is needed).
    #[arg(short = 'y', long, env = "COVE_YES", help_heading = "Rollout")]
    pub yes: bool,

    /// Stop a command that runs longer than this (for example 30s, 5m, 1h30m). Its whole
    /// process group gets SIGTERM, then SIGKILL after a grace period. Default: no limit.
    #[arg(long, value_name = "DURATION", env = "COVE_TIMEOUT", value_parser = parse_timeout,
          help_heading = "Running")]
    pub timeout: Option<Duration>,

    /// Keep at most this much of each command's stdout, and as much of its stderr (suffixes
    /// K, M, G are powers of 1024). The rest is read and dropped, and the record says so.
    #[arg(long, value_name = "BYTES", default_value = "10M", env = "COVE_MAX_OUTPUT_BYTES",
          value_parser = parse_bytes, help_heading = "Running")]
    pub max_output_bytes: usize,

    /// How each command gets its credentials: `env`, the key variables (fixed for the
    /// command's life); `endpoint`, a credential endpoint on 127.0.0.1 that renews them while
    /// the command runs, for commands that outlive their session.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Delivery::Env,
          env = "COVE_CHILD_CREDENTIALS", help_heading = "Running")]
    pub child_credentials: Delivery,

    /// Output format on stdout: `json`, one document at the end; `jsonl`, one record per
    /// line as each target finishes, then a summary line.
    #[arg(short = 'o', long, value_name = "FORMAT", value_enum, default_value_t = Format::Json,
          env = "COVE_OUTPUT", help_heading = "Output")]
    pub output: Format,

    /// Also write each target's stdout and stderr to DIR/<account-id>/<region>/stdout and
    /// stderr, and the final document to DIR/results.json.
    #[arg(
        long,
        value_name = "DIR",
        env = "COVE_OUTPUT_DIR",
        help_heading = "Output"
    )]
    pub output_dir: Option<std::path::PathBuf>,

    /// No progress bar, notes or summary on stderr; errors and warnings still show.
    #[arg(short = 'q', long, env = "COVE_QUIET", help_heading = "Output")]
    pub quiet: bool,

    /// Log what cove does to stderr: -v each AWS call (service, operation, account, region,
    /// attempt, latency, error code), retries, credential renewals and each child (pid, exit
    /// status, duration), and the full cause of an error; -vv more; -vvv everything, the AWS
    /// SDK's own trace included. COVE_LOG (or RUST_LOG) takes a filter such as `cove=debug`
    /// instead. Secrets are never logged.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// In GitHub Actions (GITHUB_ACTIONS=true), cove appends a Markdown summary of the run to
    /// the file in GITHUB_STEP_SUMMARY and prints `::error` annotations for up to 10 failed
    /// targets on stderr. This turns both off (COVE_CI_SUMMARY=false does too).
    #[arg(long = "no-ci-summary", env = "COVE_CI_SUMMARY", action = clap::ArgAction::SetFalse,
          help_heading = "Output")]
    pub ci_summary: bool,

    /// The command to run in every target, with its arguments. It runs directly, with no
    /// shell: write `-- sh -c '...'` for pipes. `{account_id}`, `{account_name}`, `{region}`
    /// and `{partition}` in arguments are replaced per target; `{{` and `}}` are literal braces.
    /// Optional with --dry-run, which runs nothing.
    #[arg(last = true, required_unless_present = "dry_run", value_name = "COMMAND",
          num_args = 1.., allow_hyphen_values = true)]
    pub command: Vec<OsString>,

    /// Read settings from this TOML file only, instead of the user file
    /// ($XDG_CONFIG_HOME/cove/config.toml) and the project file (cove.toml in the current
    /// directory or the nearest parent). A flag or its variable always wins over a file.
    #[arg(
        long,
        value_name = "FILE",
        env = "COVE_CONFIG",
        conflicts_with = "no_config",
        help_heading = "Configuration"
    )]
    pub config: Option<PathBuf>,

    /// Read no config file at all.
    #[arg(long, env = "COVE_NO_CONFIG", help_heading = "Configuration")]
    pub no_config: bool,

    /// Apply the settings of `[groups.NAME]` in the config files: a saved selection (target,
    /// ignore, filters, regions) and any other setting. Flags and variables still win over it.
    #[arg(
        short = 'g',
        long,
        value_name = "NAME",
        env = "COVE_GROUP",
        help_heading = "Configuration"
    )]
    pub group: Option<String>,

    /// Where each value came from (the command line, a variable or a config file); filled by
    /// [`Cli::parse_args`] and the config layers.
    #[arg(skip)]
    pub origins: Origins,

    /// The config files' per-account variables and regions; filled by the config layers.
    #[arg(skip)]
    pub vars: crate::vars::VarsConfig,
}

#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Merge json or jsonl outputs of sharded runs into one json document, sorted like a
    /// single run, and exit with the code that run would have given. Two files holding the
    /// same account × region are an error.
    Merge {
        /// cove outputs (json or jsonl).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Compare two runs (json or jsonl outputs, merged outputs, --output-dir directories; `-`
    /// is standard input), pairing targets by Id and Region: what was added, removed and
    /// changed (outcome, exit code, result: each changed JSON path, or a unified diff of text).
    /// Exit 0 when they are the same, 1 when they differ, 2 on an error.
    Diff(crate::diff::DiffArgs),
    /// Print the effective settings as TOML, each value with a comment naming where it came
    /// from (the flag, the variable, FILE:LINE of a config file, a group, or the default).
    /// Takes the options of a run (for example `cove config -g prod`); `cove config --paths`
    /// lists the config files looked for and whether each was read. Makes no AWS call.
    Config {
        /// List the config files looked for, and whether each was read, instead.
        #[arg(long)]
        paths: bool,
        /// The options to resolve, as for a run (for example -g prod --workers 5).
        #[arg(
            value_name = "OPTIONS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        options: Vec<OsString>,
    },
}

/// Where the values of a parsed command line came from: which options were typed on the command
/// line, and which came from their `COVE_*` variable. Messages name the variable a bad value
/// came from, and secrets typed where the process list shows them are warned about.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Argument id → its flag (`--policy`), for every option given on the command line.
    command_line: BTreeMap<String, String>,
    /// Argument id → the variable (`COVE_POLICY`), for every option that came from one.
    variables: BTreeMap<String, String>,
    /// Argument id → the place in a config file (`FILE:LINE`, or `group NAME at FILE:LINE`),
    /// for every option that came from one.
    files: BTreeMap<String, String>,
}

impl Origins {
    fn from_matches(cmd: &clap::Command, matches: &clap::ArgMatches) -> Origins {
        use clap::parser::ValueSource;
        let mut origins = Origins::default();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => {
                    let flag = arg
                        .get_long()
                        .map(|l| format!("--{l}"))
                        .unwrap_or_else(|| id.to_owned());
                    origins.command_line.insert(id.to_owned(), flag);
                }
                Some(ValueSource::EnvVariable) => {
                    if let Some(var) = arg.get_env() {
                        let var = var.to_string_lossy().into_owned();
                        origins.variables.insert(id.to_owned(), var);
                    }
                }
                _ => {}
            }
        }
        origins
    }

    /// The variable the value of argument `id` came from, if it came from one.
    pub fn variable(&self, id: &str) -> Option<&str> {
        self.variables.get(id).map(String::as_str)
    }

    /// True when argument `id` was typed: on the command line or by its variable (not by a
    /// config file, not a default).
    pub fn typed(&self, id: &str) -> bool {
        self.command_line.contains_key(id) || self.variables.contains_key(id)
    }

    /// True when argument `id` was given, on the command line, by its variable or by a config
    /// file (not a default).
    pub fn given(&self, id: &str) -> bool {
        self.command_line.contains_key(id)
            || self.variables.contains_key(id)
            || self.files.contains_key(id)
    }

    /// How to name where argument `id` (the option `flag`) came from in a message: the flag,
    /// the variable and its flag (`COVE_WORKERS (--workers)`) when its variable set it, or the
    /// flag and the config file's place.
    pub fn name(&self, id: &str, flag: &str) -> String {
        match (self.variable(id), self.file(id)) {
            (Some(var), _) => format!("the environment variable {var} ({flag})"),
            (None, Some(place)) => format!("{flag} (from {place})"),
            (None, None) => flag.to_owned(),
        }
    }

    /// Adds the variable, or the config file's place, to an error about the value of argument
    /// `id`, when it came from one.
    pub fn blame<T>(&self, id: &str, result: anyhow::Result<T>) -> anyhow::Result<T> {
        match (self.variable(id), self.file(id)) {
            (Some(var), _) => {
                result.map_err(|e| e.context(format!("in the environment variable {var}")))
            }
            (None, Some(place)) => result.map_err(|e| e.context(format!("in {place}"))),
            (None, None) => result,
        }
    }

    /// The config file place (`FILE:LINE`, or `group NAME at FILE:LINE`) argument `id` came
    /// from, if it came from one.
    pub fn file(&self, id: &str) -> Option<&str> {
        self.files.get(id).map(String::as_str)
    }

    /// Records that argument `id`, which the config layers put on the command line, came from
    /// `place` in a config file.
    pub fn from_file(&mut self, id: &str, place: String) {
        self.command_line.remove(id);
        self.files.insert(id.to_owned(), place);
    }
}

/// Options whose value is a secret that other local users can read in the process list when
/// it is typed on the command line.
const SECRET_OPTIONS: &[(&str, &str)] =
    &[("external_id", "--external-id"), ("mfa_code", "--mfa-code")];

impl Cli {
    /// Parses `argv` (the program name first) and records where each value came from. A value
    /// clap refuses that came from a `COVE_*` variable is reported naming the variable.
    pub fn parse_args<I, T>(argv: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        use clap::CommandFactory;
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        Cli::parse_with(Cli::command(), &argv)
    }

    /// [`Cli::parse_args`] with `cmd`, the CLI definition (the config layers may relax it).
    pub fn parse_with(cmd: clap::Command, argv: &[OsString]) -> Result<Cli, clap::Error> {
        Cli::parse_with_matches(cmd, argv).map(|(cli, _)| cli)
    }

    /// As [`Cli::parse_with`], also handing back clap's matches (where each value came from,
    /// for `cove config`).
    pub fn parse_with_matches(
        cmd: clap::Command,
        argv: &[OsString],
    ) -> Result<(Cli, clap::ArgMatches), clap::Error> {
        use clap::FromArgMatches;
        let matches = match cmd.clone().try_get_matches_from(argv) {
            Ok(matches) => matches,
            Err(err) => return Err(name_the_variable(err, argv)),
        };
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.origins = Origins::from_matches(&cmd, &matches);
        Ok((cli, matches))
    }

    /// The warning for secrets typed on the command line (`--external-id VALUE`,
    /// `--mfa-code CODE`), which every local user can read in the process list. Never holds
    /// the secret itself. `--external-id @FILE` is fine: only the path shows.
    pub fn secrets_warning(&self) -> Option<String> {
        let typed: Vec<&str> = SECRET_OPTIONS
            .iter()
            .filter(|(id, _)| self.origins.command_line.contains_key(*id))
            .filter(|(id, _)| {
                *id != "external_id"
                    || self
                        .external_id
                        .as_deref()
                        .is_some_and(|v| !v.starts_with('@'))
            })
            .map(|(_, flag)| *flag)
            .collect();
        if typed.is_empty() {
            return None;
        }
        Some(format!(
            "{} on the command line can be read by every user of this machine in the process list; \
             prefer COVE_EXTERNAL_ID or --external-id @FILE, and let cove ask for the MFA code on the terminal",
            typed.join(" and ")
        ))
    }
}

/// A clap error about a value (or a conflict) that came from a `COVE_*` variable names the
/// variable: clap's own message names only the flag, which the user never typed.
fn name_the_variable(err: clap::Error, argv: &[OsString]) -> clap::Error {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    // Built, as clap's own errors saw it: an argument's text needs its number of values.
    let mut cmd = Cli::command();
    cmd.build();
    let mut named: Vec<String> = Vec::new();
    for kind in [ContextKind::InvalidArg, ContextKind::PriorArg] {
        let texts = match err.get(kind) {
            Some(ContextValue::String(text)) => vec![text.clone()],
            Some(ContextValue::Strings(texts)) => texts.clone(),
            _ => continue,
        };
        for text in texts {
            let Some(arg) = cmd.get_arguments().find(|a| a.to_string() == text) else {
                continue;
            };
            let Some(var) = arg.get_env() else {
                continue;
            };
            if std::env::var_os(var).is_none() {
                continue;
            }
            // The flag may have been typed too (then clap used it, not the variable): the
            // variable is to blame only if the command line alone does not fail the same way.
            let without = cmd
                .clone()
                .mut_arg(arg.get_id().clone(), |a| a.env(None::<&str>))
                .try_get_matches_from(argv);
            let same = without.as_ref().is_err_and(|e| {
                e.kind() == err.kind()
                    && e.get(ContextKind::InvalidArg) == err.get(ContextKind::InvalidArg)
            });
            if !same {
                named.push(var.to_string_lossy().into_owned());
            }
        }
    }
    if named.is_empty() {
        return err;
    }
    let text = err.render().to_string();
    let text = text.trim_start_matches("error: ");
    // Only the sentence: the usage and the hint follow from `Command::error`.
    let sentence = text.split("\n\n").next().unwrap_or(text).trim_end();
    let from = if named.len() == 1 {
        "the environment variable"
    } else {
        "the environment variables"
    };
    Cli::command().error(
        err.kind(),
        format!(
            "{sentence} (the value comes from {from} {})",
            named.join(" and ")
        ),
    )
}

/// `--timeout`: a human duration such as `30s`, `5m` or `1h30m`, greater than zero.
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value).map_err(|e| {
        format!("`{value}` is not a duration ({e}); expected for example 30s, 5m or 1h")
    })?;
    if duration.is_zero() {
        return Err(format!(
            "`{value}` is zero; expected a duration greater than zero"
        ));
    }
    Ok(duration)
}

/// `--max-output-bytes`: a whole number of bytes, optionally with K, M or G (powers of 1024).
pub fn parse_bytes(value: &str) -> Result<usize, String> {
    let expected = "expected a number of bytes such as 1048576, 512K, 10M or 1G";
    let trimmed = value.trim_end_matches("iB").trim_end_matches('B');
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&trimmed[..i], c.to_ascii_uppercase()),
        _ => (trimmed, ' '),
    };
    let multiplier: usize = match unit {
        ' ' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(format!("`{value}` has an unknown unit; {expected}")),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{value}` is not a size; {expected}"))?;
    match n.checked_mul(multiplier) {
        Some(0) => Err(format!("`{value}` is zero; {expected}")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{value}` is too large; {expected}")),
    }
}

/// `--max-assume-rate`: calls per second, from 0.001 (one call in 1,000 s) to 1,000,000.
pub fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if (0.001..=1_000_000.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "`{value}` is not a rate; expected calls per second from 0.001 to 1000000, such as 10 or 0.5"
        )),
    }
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
    fn sizes_durations_and_rates_parse() {
        assert_eq!(parse_bytes("10M"), Ok(10 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("10X").unwrap_err().contains("10X"));
        assert_eq!(parse_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").unwrap_err().contains("soon"));
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("1e-20").is_err());
    }

    #[test]
    fn the_ci_summary_is_on_unless_the_flag_or_its_variable_says_no() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["cove"];
            argv.extend_from_slice(args);
            argv.extend_from_slice(&["--", "true"]);
            Cli::try_parse_from(argv).unwrap().ci_summary
        };
        assert!(parse(&[]));
        assert!(!parse(&["--no-ci-summary"]));
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
