//! Turns the parsed command line into a validated [`Config`]. Everything a user can get wrong
//! fails here, before the first AWS call, with a message that names the value.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use std::collections::BTreeMap;

use crate::child_env::Delivery;
use crate::cli::Cli;
use crate::credentials::{PORTAL_RATE_DEFAULT, RoleSpec, Source};
use crate::filters::Filters;
use crate::ids::{self, IdArg, OrgId};
use crate::merge;
use crate::output::Format;
use crate::plan::Shard;
use crate::regions::{self, RegionChoice, Regions};
use crate::secret::Secret;
use crate::template;

/// What to run, where, and as whom; every field already checked. Plain data: building it
/// reads the files the user named (`--policy @FILE`, `--rerun`) but changes nothing; the
/// pipeline does the side effects (the output directory, the open-file limit).
#[derive(Debug)]
pub struct Config {
    pub selection: SelectionSettings,
    pub regions: Regions,
    pub allow_unknown_region: bool,
    pub role: RoleSpec,
    pub aws: AwsSettings,
    pub run: RunSettings,
    pub output: OutputSettings,
    pub dry_run: bool,
    /// The config files' per-account variables and regions (`[vars]`, `[ous.…]`,
    /// `[accounts.…]`).
    pub vars: std::sync::Arc<crate::vars::VarsConfig>,
    /// `--region` or `COVE_REGIONS` was typed: then no account's or OU's `region` replaces the
    /// run's regions.
    pub regions_typed: bool,
}

/// Which accounts: the resolver's, admission's and the plan's settings.
#[derive(Debug)]
pub struct SelectionSettings {
    pub targets: Vec<OrgId>,
    pub ignores: Vec<OrgId>,
    pub include_caller: bool,
    pub filters: Filters,
    pub shard: Option<Shard>,
    /// `--rerun`: the failed pairs of a previous output, by account.
    pub rerun: Option<BTreeMap<String, Vec<String>>>,
    /// `--plan`: the targets of a dry-run document, checked.
    pub plan: Option<crate::plan_file::Plan>,
}

/// How cove reaches AWS.
#[derive(Debug)]
pub struct AwsSettings {
    pub profile: Option<String>,
    pub max_assume_rate: Option<f64>,
    /// `--via-role`: role ARNs assumed in order before anything else; the last one acts.
    pub via_roles: Vec<String>,
    /// `--org-role`: the role ARN the Organizations calls are made as.
    pub org_role: Option<String>,
    /// `--mfa-serial` and, when given, `--mfa-code`.
    pub mfa: Option<Mfa>,
}

/// An MFA device and, when given on the command line, its code; the pipeline asks for a
/// missing code before any AWS call.
#[derive(Debug)]
pub struct Mfa {
    pub serial: String,
    pub code: Option<Secret>,
}

/// `--mfa-serial` and `--mfa-code`, checked. The code is a secret: its errors never echo it.
fn mfa(cli: &Cli) -> anyhow::Result<Option<Mfa>> {
    let Some(serial) = &cli.mfa_serial else {
        return Ok(None);
    };
    let checked = (|| {
        ensure!(
            (9..=256).contains(&serial.len())
                && serial
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=/:,.@-".contains(c)),
            "invalid --mfa-serial `{serial}`: expected an MFA device ARN such as arn:aws:iam::111111111111:mfa/alice, or a hardware device's serial number"
        );
        Ok(())
    })();
    cli.origins.blame("mfa_serial", checked)?;
    if let Some(code) = &cli.mfa_code {
        check_mfa_code(code)?;
    }
    Ok(Some(Mfa {
        serial: serial.clone(),
        code: cli.mfa_code.clone().map(Secret::new),
    }))
}

/// A code from an MFA device: six digits. Never echoed.
pub fn check_mfa_code(code: &str) -> anyhow::Result<()> {
    ensure!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "invalid MFA code ({} characters): expected the 6 digits the device shows",
        code.chars().count()
    );
    Ok(())
}

/// How each target's command runs.
#[derive(Debug)]
pub struct RunSettings {
    pub command: Vec<OsString>,
    /// `--workers` as asked (with `auto`, `--max-workers`); the pipeline fits it to the
    /// open-file limit.
    pub workers: usize,
    /// `--workers auto`: its bounds (the pipeline adds the assume rate and the regions).
    pub auto: Option<crate::workers::AutoSettings>,
    pub fail_fast: bool,
    pub timeout: Option<Duration>,
    pub max_output_bytes: usize,
    /// `--child-credentials`: the key variables, or the credential endpoint.
    pub child_credentials: Delivery,
    /// `--canary` and `--max-failures`.
    pub rollout: crate::rollout::Policy,
    /// `--confirm`, and whether `--yes` answered it.
    pub confirm: crate::rollout::Confirm,
}

/// The smallest `--max-memory`: less would not hold cove itself and one child.
const MIN_MAX_MEMORY: usize = 64 << 20;

/// `--workers`, with `--max-workers` and `--max-memory`, which only `auto` uses: given with a
/// fixed count they would silently do nothing, so they are an input error.
fn workers_settings(cli: &Cli) -> anyhow::Result<(usize, Option<crate::workers::AutoSettings>)> {
    use crate::workers::{AutoSettings, Workers};
    let n = match cli.workers {
        Workers::Auto => None,
        Workers::Fixed(n) => Some(n),
    };
    for (id, flag) in [
        ("max_workers", "--max-workers"),
        ("max_memory", "--max-memory"),
    ] {
        // A config file's setting for auto gives way to a fixed count (from anywhere): the
        // file may say how auto should run, for the runs that use it.
        if let Some(n) = n
            && cli.origins.given(id)
            && cli.origins.file(id).is_none()
        {
            bail!(
                "{} applies only to --workers auto, but {} is {n}: expected `--workers auto`, or no {flag}",
                cli.origins.name(id, flag),
                cli.origins.name("workers", "--workers")
            );
        }
    }
    if let Some(bytes) = cli.max_memory
        && bytes < MIN_MAX_MEMORY
    {
        cli.origins.blame(
            "max_memory",
            Err(anyhow::anyhow!(
                "invalid --max-memory `{bytes}` bytes: expected at least 64M (cove and one command)"
            )),
        )?;
    }
    Ok(match n {
        Some(n) => (n, None),
        None => {
            let cap = cli.max_workers as usize;
            let auto = AutoSettings {
                cap,
                max_memory: cli.max_memory.map(|b| b as u64),
                assume_rate: None,
                targets_per_call: 1,
            };
            (cap, Some(auto))
        }
    })
}

/// Where results go.
#[derive(Debug)]
pub struct OutputSettings {
    pub format: Format,
    pub dir: Option<PathBuf>,
    pub quiet: bool,
    /// Logs are on (`-v`, `COVE_LOG`, `RUST_LOG`): no progress bar is drawn over them.
    pub logging: bool,
    /// The GitHub Actions step summary and annotations, when cove runs there.
    pub ci_summary: bool,
}

fn dedup<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// An IAM role name, optionally after a path (`team/Audit`).
fn is_role_name(role: &str) -> bool {
    let name = role.rsplit('/').next().unwrap_or(role);
    (1..=64).contains(&name.len())
        && role
            .split('/')
            .all(|part| !part.is_empty() && part.chars().all(is_iam_name_char))
}

fn check_role(role: &str) -> anyhow::Result<()> {
    ensure!(
        !role.trim().is_empty(),
        "invalid --role ``: the role name is empty; expected a role name such as OrganizationAccountAccessRole"
    );
    ensure!(
        is_role_name(role),
        "invalid --role `{role}`: expected an IAM role name (1 to 64 of A-Z a-z 0-9 + = , . @ _ -), optionally after a path such as team/"
    );
    Ok(())
}

/// `--via-role` and `--org-role` take a role ARN: `arn:PARTITION:iam::ACCOUNT:role/NAME`.
fn check_role_arn(flag: &str, arn: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    ensure!(
        parts.len() == 6
            && parts[0] == "arn"
            && !parts[1].is_empty()
            && parts[2] == "iam"
            && parts[3].is_empty()
            && ids::is_account_id(parts[4])
            && parts[5].strip_prefix("role/").is_some_and(is_role_name),
        "invalid {flag} `{arn}`: expected a role ARN such as arn:aws:iam::111111111111:role/CoveHub"
    );
    Ok(())
}

/// AWS caps a session reached through a role chain at one hour.
const ROLE_CHAIN_MAX_SECONDS: i32 = 3600;

/// `--via-role` and `--org-role`, checked; with a chain, `--duration` within its limit.
fn acting_as(cli: &Cli) -> anyhow::Result<(Vec<String>, Option<String>)> {
    for arn in &cli.via_roles {
        cli.origins
            .blame("via_roles", check_role_arn("--via-role", arn))?;
    }
    if let Some(arn) = &cli.org_role {
        cli.origins
            .blame("org_role", check_role_arn("--org-role", arn))?;
    }
    if let Some(duration) = cli.duration
        && !cli.via_roles.is_empty()
        && duration > ROLE_CHAIN_MAX_SECONDS
    {
        cli.origins.blame::<()>(
            "duration",
            Err(anyhow::anyhow!(
                "--duration {duration} is above the one-hour limit ({ROLE_CHAIN_MAX_SECONDS} seconds) AWS sets for role-chained sessions; with --via-role, use --duration {ROLE_CHAIN_MAX_SECONDS} or less"
            )),
        )?;
    }
    Ok((cli.via_roles.clone(), cli.org_role.clone()))
}

fn check_session_name(name: &str) -> anyhow::Result<()> {
    ensure!(
        (2..=64).contains(&name.len()) && name.chars().all(is_iam_name_char),
        "invalid --role-session-name `{name}`: expected 2 to 64 of A-Z a-z 0-9 + = , . @ _ -"
    );
    Ok(())
}

/// Reads `--policy` (inline JSON or `@file`) and checks that it is JSON. The policy text itself
/// never appears in an error.
fn read_policy(value: &str) -> anyhow::Result<Secret> {
    let (text, source) = match value.strip_prefix('@') {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --policy file `{path}`"))?;
            (text, format!("--policy file `{path}`"))
        }
        None => (value.to_owned(), "--policy value".to_owned()),
    };
    if let Err(err) = serde_json::from_str::<serde_json::Value>(&text) {
        bail!(
            "{source} is not valid JSON (line {}, column {}); expected an IAM policy document",
            err.line(),
            err.column()
        );
    }
    Ok(Secret::new(text))
}

fn check_policy_arn(arn: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    ensure!(
        parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "iam"
            && parts[5].starts_with("policy/"),
        "invalid --policy-arn `{arn}`: expected an IAM policy ARN such as arn:aws:iam::aws:policy/ReadOnlyAccess"
    );
    Ok(())
}

fn check_external_id(id: &str) -> anyhow::Result<()> {
    // The value is a secret: describe it, never echo it.
    ensure!(
        (2..=1224).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c)),
        "invalid --external-id ({} characters): expected 2 to 1224 of A-Z a-z 0-9 + = , . @ : / - _",
        id.chars().count()
    );
    Ok(())
}

/// The most of an `--external-id` file that is read: an external ID has at most 1224
/// characters.
const EXTERNAL_ID_FILE_MAX: u64 = 4096;

/// `--external-id`: the value, or `@FILE` to read it from a file (one trailing line break
/// dropped), which keeps it out of the process list. Checked; never echoed.
fn read_external_id(value: String) -> anyhow::Result<Secret> {
    let Some(path) = value.strip_prefix('@') else {
        check_external_id(&value)?;
        return Ok(Secret::new(value));
    };
    // A value that names no file may be an external ID that starts with `@` (AWS allows it):
    // its "path" is then the secret, so it is not echoed.
    if std::fs::symlink_metadata(path).is_err() {
        bail!(
            "--external-id starts with `@`, so it names a file to read the external ID from, and there is no such file (its name is not shown: it may be an external ID that starts with `@`; to use one, write it into a file and give --external-id @FILE)"
        );
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(EXTERNAL_ID_FILE_MAX + 1)
                .read_to_string(&mut text)
        })
        .with_context(|| format!("cannot read --external-id file `{path}`"))?;
    ensure!(
        text.len() as u64 <= EXTERNAL_ID_FILE_MAX,
        "--external-id file `{path}` is larger than {EXTERNAL_ID_FILE_MAX} bytes; expected one external ID (at most 1224 characters)"
    );
    let text = Secret::new(text);
    let id = text.expose();
    let id = id.strip_suffix('\n').unwrap_or(id);
    let id = id.strip_suffix('\r').unwrap_or(id);
    ensure!(
        !id.trim().is_empty(),
        "--external-id file `{path}` is empty; expected the external ID the role's trust policy requires"
    );
    check_external_id(id).with_context(|| format!("in --external-id file `{path}`"))?;
    Ok(Secret::new(id))
}

/// `--profile`: a profile name, which the AWS configuration files cannot hold blank or with
/// white space or control characters around it.
fn check_profile(name: &str) -> anyhow::Result<()> {
    ensure!(
        !name.trim().is_empty() && name.trim() == name && !name.chars().any(char::is_control),
        "invalid --profile `{}`: expected the name of a profile in the AWS config or credentials file, such as `default`",
        name.escape_debug()
    );
    Ok(())
}

/// `--shard-index-env VAR --shard-count N`: the 0-based index comes from `VAR`.
fn shard_from_env(var: &str, count: u32) -> anyhow::Result<Shard> {
    let value = std::env::var(var)
        .map_err(|_| anyhow::anyhow!("--shard-index-env {var}: the variable `{var}` is not set"))?;
    match value.trim().parse::<u32>() {
        Ok(index) if index < count => Ok(Shard {
            index: index + 1,
            count,
        }),
        _ => bail!(
            "--shard-index-env {var}: `{value}` is not a shard index; expected a whole number from 0 to {}",
            count - 1
        ),
    }
}

/// A permission set name as IAM Identity Center allows it: 1 to 32 of A-Z a-z 0-9 + = , . @ _ -.
fn check_permission_set(name: &str) -> anyhow::Result<()> {
    ensure!(
        (1..=32).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)),
        "invalid --sso-role `{name}`: expected a permission set name such as AdministratorAccess (1 to 32 of A-Z a-z 0-9 + = , . @ _ -)"
    );
    Ok(())
}

/// The AssumeRole settings `--sso-role` cannot honour: (argument id, flag, what it is), and
/// whether it was given. The portal hands out the permission set's credentials as they are:
/// it takes no session policy, external ID, duration or session name, so any of them would be
/// silently dropped; a dropped session policy would hand every child the whole permission set.
fn assume_role_only(cli: &Cli) -> [(&'static str, &'static str, &'static str, bool); 6] {
    [
        (
            "role",
            "--role",
            "role to assume",
            cli.origins.given("role"),
        ),
        (
            "role_session_name",
            "--role-session-name",
            "session name",
            cli.role_session_name.is_some(),
        ),
        ("policy", "--policy", "session policy", cli.policy.is_some()),
        (
            "policy_arns",
            "--policy-arn",
            "managed session policy",
            !cli.policy_arns.is_empty(),
        ),
        (
            "external_id",
            "--external-id",
            "external ID",
            cli.external_id.is_some(),
        ),
        (
            "duration",
            "--duration",
            "session duration",
            cli.duration.is_some(),
        ),
    ]
}

/// `--sso-role`: the permission sets, from the portal; no AssumeRole parameter applies, and
/// one that is given is refused rather than dropped.
fn portal_spec(cli: &Cli) -> anyhow::Result<RoleSpec> {
    let sso = cli.origins.name("sso_role", "--sso-role");
    for (id, flag, what, given) in assume_role_only(cli) {
        ensure!(
            !given,
            "{sso} cannot be combined with {}: the IAM Identity Center portal takes no {what}, so it would be ignored and the commands would run with the whole permission set; leave out {flag}, or use --role instead of --sso-role",
            cli.origins.name(id, flag)
        );
    }
    let names = dedup(&cli.sso_role);
    for name in &names {
        cli.origins.blame("sso_role", check_permission_set(name))?;
    }
    Ok(RoleSpec {
        source: Source::Portal,
        role_names: names,
        session_name: None,
        policy: None,
        policy_arns: Vec::new(),
        external_id: None,
        duration_seconds: None,
    })
}

/// `--role`, `--role-session-name` and the AssumeRole parameters, checked; or `--sso-role`.
fn role_spec(cli: &mut Cli) -> anyhow::Result<RoleSpec> {
    if !cli.sso_role.is_empty() {
        return portal_spec(cli);
    }
    let origins = &cli.origins;
    let role_names = dedup(&cli.role);
    for role in &role_names {
        origins.blame("role", check_role(role))?;
    }
    let session_name = cli.role_session_name.take();
    match &session_name {
        Some(name) => origins.blame("role_session_name", check_session_name(name))?,
        None => {
            for role in &role_names {
                let name = role.rsplit('/').next().unwrap_or(role);
                let checked = check_session_name(name).with_context(|| {
                    format!(
                        "the session name defaults to the role name `{name}`, which cannot be one; pass --role-session-name"
                    )
                });
                origins.blame("role", checked)?;
            }
        }
    }
    let policy = cli.policy.as_deref().map(read_policy).transpose();
    let policy = origins.blame("policy", policy)?;
    for arn in &cli.policy_arns {
        origins.blame("policy_arns", check_policy_arn(arn))?;
    }
    let external_id = cli.external_id.take().map(read_external_id).transpose();
    let external_id = origins.blame("external_id", external_id)?;
    Ok(RoleSpec {
        source: Source::AssumeRole,
        role_names,
        session_name,
        policy,
        policy_arns: dedup(&cli.policy_arns),
        external_id,
        duration_seconds: cli.duration,
    })
}

/// `--target` or `--ignore` with every `@FILE` read, in the order given. Standard input (`@-`)
/// can be read only once in a run. An empty `--target` file is refused: no `--target` at all
/// would mean the whole organization, which a list that came out empty never meant.
fn expand_ids(flag: &str, args: &[IdArg], stdin_used: &mut bool) -> anyhow::Result<Vec<OrgId>> {
    let mut ids = Vec::new();
    for arg in args {
        match arg {
            IdArg::Id(id) => ids.push(id.clone()),
            IdArg::File(path) => {
                let (source, listed) = read_id_file(flag, path, stdin_used)?;
                ensure!(
                    !listed.is_empty() || flag != "--target",
                    "{source} holds no IDs; without IDs --target would mean the whole organization"
                );
                ids.extend(listed);
            }
        }
    }
    Ok(dedup(&ids))
}

/// The IDs of one `@FILE` (or `@-`), and how to name it in messages.
fn read_id_file(
    flag: &str,
    path: &Path,
    stdin_used: &mut bool,
) -> anyhow::Result<(String, Vec<OrgId>)> {
    let (source, text) = if path == Path::new("-") {
        let source = format!("{flag} @- (standard input)");
        ensure!(
            !std::mem::replace(stdin_used, true),
            "{source}: standard input can be read only once; use @- for one of --target and --ignore"
        );
        let text = std::io::read_to_string(std::io::stdin())
            .with_context(|| format!("cannot read {source}"))?;
        (source, text)
    } else {
        let source = format!("{flag} file `{}`", path.display());
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {source}"))?;
        (source, text)
    };
    let ids = ids::parse_id_list(&text)
        .map_err(|(line, err)| anyhow::anyhow!("{source}, line {line}: {err}"))?;
    Ok((source, ids))
}

/// `--region` and `--exclude-region`, checked against the known regions.
fn region_choice(cli: &Cli) -> anyhow::Result<Regions> {
    let all_regions = cli.regions.iter().any(|r| r == regions::ALL_ENABLED_LABEL);
    ensure!(
        !all_regions || cli.regions.iter().all(|r| r == regions::ALL_ENABLED_LABEL),
        "--region all cannot be combined with other regions; use --exclude-region to leave some out"
    );
    ensure!(
        !(all_regions && cli.rerun.is_some()),
        "--region all cannot be combined with --rerun; --rerun runs the regions recorded in its file"
    );
    for region in cli
        .regions
        .iter()
        .filter(|r| *r != regions::ALL_ENABLED_LABEL)
        .chain(&cli.exclude_region)
    {
        let id = if cli.regions.contains(region) {
            "regions"
        } else {
            "exclude_region"
        };
        let checked = regions::check(region, cli.allow_unknown_region).map_err(anyhow::Error::msg);
        cli.origins.blame(id, checked)?;
    }
    let choice = if all_regions {
        RegionChoice::AllEnabled
    } else if cli.regions.is_empty() {
        RegionChoice::Chain
    } else {
        RegionChoice::Named(dedup(&cli.regions))
    };
    let regions = Regions::new(choice, dedup(&cli.exclude_region));
    if let RegionChoice::Named(named) = &regions.choice {
        ensure!(
            named.iter().any(|r| regions.allows(r)),
            "--exclude-region leaves no region to run in"
        );
    }
    Ok(regions)
}

/// `--rerun FILE`: the failed pairs it records, which must not be none.
fn rerun_pairs(cli: &Cli) -> anyhow::Result<Option<BTreeMap<String, Vec<String>>>> {
    let Some(path) = &cli.rerun else {
        return Ok(None);
    };
    let pairs = merge::failed_pairs(path, cli.rerun_only)?;
    ensure!(
        !pairs.is_empty(),
        "--rerun `{}` has no failed targets to run again",
        path.display()
    );
    Ok(Some(pairs))
}

/// The command: present unless a dry run, its placeholders safe and its variables defined
/// (`template::check`).
fn check_command(cli: &Cli) -> anyhow::Result<()> {
    let program = cli
        .command
        .first()
        .map(|c| c.to_string_lossy().into_owned());
    // A dry run runs nothing, so it needs no command; one that is given is still checked.
    ensure!(
        program.as_deref().map_or(cli.dry_run, |p| !p.is_empty()),
        "missing command: expected `-- COMMAND [ARGS...]` after the options"
    );
    template::check(&cli.command, &cli.vars.defined()).map_err(anyhow::Error::msg)
}

/// Every region of a config file's `[accounts."ID"]` and `[ous."ou-…"]` entries, checked as
/// `--region` values are (a known region, unless `--allow-unknown-region`); an error names the
/// entry's place. Their partition is checked once the caller's is known
/// (`identity::check_entry_regions`).
fn check_entry_regions(cli: &Cli, run: &Regions) -> anyhow::Result<()> {
    let vars = &cli.vars;
    let entries = vars.ous.values().chain(vars.accounts.values());
    for (names, place) in entries.filter_map(|e| e.regions.as_ref()) {
        for region in names {
            regions::check(region, cli.allow_unknown_region)
                .map_err(|e| anyhow::anyhow!("{place}: {e}"))?;
        }
        // An entry whose every region is excluded would leave its accounts running nowhere,
        // silently: say so before any AWS call (typed regions turn the entries off).
        if !cli.origins.typed("regions") && !names.iter().any(|r| run.allows(r)) {
            bail!(
                "{place}: every region of this entry ({}) is left out by {}, so the accounts it covers would run nowhere; give them a region that is not excluded, or type --region to run every account in the same regions",
                names.join(", "),
                cli.origins.name("exclude_region", "--exclude-region")
            );
        }
    }
    Ok(())
}

/// A plan records no account's place in the organization, and a `--plan` run does not ask
/// Organizations: the `[ous."ou-…"]` entries could not apply to its accounts.
fn refuse_plan_with_ou_entries(cli: &Cli) -> anyhow::Result<()> {
    let Some((ou, entry)) = cli.vars.ous.iter().next() else {
        return Ok(());
    };
    let place = entry
        .regions
        .as_ref()
        .map(|(_, place)| place)
        .or_else(|| entry.vars.values().next().map(|v| &v.place));
    let at = place.map(|p| format!(" ({p})")).unwrap_or_default();
    bail!(
        "{} cannot be used with an [ous.\"…\"] entry such as [ous.\"{ou}\"]{at}: a plan does not record where its accounts sit in the organization, and a plan run does not ask Organizations; run without --plan, or remove the [ous] entries from the config",
        cli.origins.name("plan", "--plan")
    )
}

/// `--plan FILE`: refused with the options a plan already decided, then read and checked.
fn plan_of(cli: &Cli) -> anyhow::Result<Option<crate::plan_file::Plan>> {
    use crate::plan_file;
    let Some(value) = &cli.plan else {
        return Ok(None);
    };
    plan_file::refuse_selection(cli)?;
    refuse_plan_with_ou_entries(cli)?;
    // The config file's selection (issue 18) is ignored with a note here, once it exists.
    let plan = plan_file::read(value, cli.allow_unknown_region, cli.plan_any_caller);
    cli.origins.blame("plan", plan).map(Some)
}

impl Config {
    /// The regions each account runs in: `fixed` (the run's), or a config entry's `region`
    /// for the accounts it covers, unless the regions were typed (`--region`, `COVE_REGIONS`).
    pub fn account_regions(&self, fixed: &[String]) -> crate::plan::AccountRegions {
        let apply = !self.regions_typed;
        let entries = apply.then(|| self.vars.clone());
        crate::plan::AccountRegions::new(fixed, &self.regions, entries)
    }

    pub fn from_cli(mut cli: Cli) -> anyhow::Result<Config> {
        let role = role_spec(&mut cli)?;
        if let Some(profile) = &cli.profile {
            cli.origins.blame("profile", check_profile(profile))?;
        }
        let (via_roles, org_role) = acting_as(&cli)?;
        let mfa = mfa(&cli)?;
        let regions = region_choice(&cli)?;
        check_entry_regions(&cli, &regions)?;
        check_command(&cli)?;
        // --shard-index-env wins over --shard (and COVE_SHARD): it is the more specific way.
        let shard = match (&cli.shard_index_env, cli.shard_count) {
            (Some(var), Some(count)) => Some(shard_from_env(var, count)?),
            _ => cli.shard,
        };
        let rerun = rerun_pairs(&cli)?;
        let plan = plan_of(&cli)?;
        let mut stdin_used = false;
        let targets = expand_ids("--target", &cli.targets, &mut stdin_used);
        let targets = cli.origins.blame("targets", targets)?;
        let ignores = expand_ids("--ignore", &cli.ignores, &mut stdin_used);
        let ignores = cli.origins.blame("ignores", ignores)?;
        let portal = role.source == Source::Portal;
        let (workers, auto) = workers_settings(&cli)?;
        Ok(Config {
            selection: SelectionSettings {
                targets,
                ignores,
                include_caller: cli.include_caller,
                filters: Filters {
                    name: cli.filter_name,
                    email: cli.filter_email,
                    tags: dedup(&cli.filter_tag),
                },
                shard,
                rerun,
                plan,
            },
            regions,
            allow_unknown_region: cli.allow_unknown_region,
            role,
            aws: AwsSettings {
                profile: cli.profile,
                // The portal throttles at about 20 calls a second: stay under it by default.
                max_assume_rate: cli
                    .max_assume_rate
                    .or(portal.then_some(PORTAL_RATE_DEFAULT)),
                via_roles,
                org_role,
                mfa,
            },
            run: RunSettings {
                command: cli.command,
                workers,
                auto,
                fail_fast: cli.fail_fast,
                timeout: cli.timeout,
                max_output_bytes: cli.max_output_bytes,
                child_credentials: cli.child_credentials,
                rollout: crate::rollout::Policy::new(cli.max_failures, cli.canary),
                confirm: crate::rollout::Confirm::from_flags(cli.confirm, cli.yes),
            },
            output: OutputSettings {
                format: cli.output,
                dir: cli.output_dir,
                quiet: cli.quiet,
                logging: crate::logging::enabled(cli.verbose),
                ci_summary: cli.ci_summary,
            },
            dry_run: cli.dry_run,
            regions_typed: cli.origins.typed("regions"),
            vars: std::sync::Arc::new(cli.vars),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> anyhow::Result<Config> {
        let mut argv = vec!["cove"];
        argv.extend_from_slice(args);
        Config::from_cli(Cli::parse_args(argv).unwrap())
    }

    #[test]
    fn workers_auto_has_bounds_and_a_fixed_count_keeps_its_meaning() {
        let fixed = config(&["--workers", "300", "--", "true"]).unwrap();
        assert_eq!((fixed.run.workers, fixed.run.auto), (300, None));
        let auto = config(&["--workers", "auto", "--", "true"]).unwrap();
        let settings = auto.run.auto.unwrap();
        assert_eq!(
            (auto.run.workers, settings.cap),
            (256, 256),
            "--max-workers 256"
        );
        assert_eq!(settings.max_memory, None);
        let bounded = config(&[
            "-w",
            "auto",
            "--max-workers",
            "32",
            "--max-memory",
            "2G",
            "--",
            "true",
        ])
        .unwrap();
        assert_eq!(bounded.run.workers, 32);
        assert_eq!(bounded.run.auto.unwrap().max_memory, Some(2 << 30));
        let err = config(&["-w", "4", "--max-workers", "32", "--", "true"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("--max-workers applies only to --workers auto, but --workers is 4"),
            "{err}"
        );
        let err = config(&["-w", "auto", "--max-memory", "63M", "--", "true"]).unwrap_err();
        assert!(err.to_string().contains("expected at least 64M"), "{err}");
    }

    #[test]
    fn sso_role_takes_permission_sets_from_the_portal_at_a_capped_rate() {
        let c = config(&["--sso-role", "AdministratorAccess,ReadOnly", "--", "true"]).unwrap();
        assert_eq!(c.role.source, Source::Portal);
        assert_eq!(c.role.role_names, ["AdministratorAccess", "ReadOnly"]);
        assert_eq!(
            c.role.first().session_name,
            None,
            "no session name of cove's"
        );
        assert_eq!(c.aws.max_assume_rate, Some(PORTAL_RATE_DEFAULT));
        let c = config(&[
            "--sso-role",
            "Admin",
            "--max-assume-rate",
            "3",
            "--",
            "true",
        ])
        .unwrap();
        assert_eq!(c.aws.max_assume_rate, Some(3.0), "--max-assume-rate wins");
        let c = config(&["--", "true"]).unwrap();
        assert_eq!(c.aws.max_assume_rate, None, "AssumeRole stays unlimited");
        let err = config(&["--sso-role", "Admin Access", "--", "true"]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("`Admin Access`") && msg.contains("permission set"),
            "{msg}"
        );
    }

    #[test]
    fn sso_role_cannot_be_given_with_role_or_its_assume_role_parameters() {
        for other in [
            &["--role", "Audit"][..],
            &["--role", "OrganizationAccountAccessRole"],
            &["--role-session-name", "me"],
            &["--external-id", "x-123"],
            &["--duration", "900"],
            &["--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"],
            &["--policy", "{}"],
        ] {
            let mut argv = vec!["--sso-role", "Admin"];
            argv.extend_from_slice(other);
            argv.extend(["--", "true"]);
            let err = format!("{:#}", config(&argv).unwrap_err());
            assert!(
                err.contains(&format!("--sso-role cannot be combined with {}", other[0])),
                "{other:?}: {err}"
            );
        }
    }

    #[test]
    fn external_id_comes_from_a_file_without_its_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("external-id");
        let arg = format!("@{}", file.display());
        for text in ["ext-id-file-1\n", "ext-id-file-1\r\n", "ext-id-file-1"] {
            std::fs::write(&file, text).unwrap();
            let c = config(&["--external-id", &arg, "--", "true"]).unwrap();
            let id = c.role.external_id.clone().unwrap();
            assert_eq!(id.expose(), "ext-id-file-1", "{text:?}");
        }
        for (text, expected) in [
            ("", "is empty"),
            ("\n", "is empty"),
            ("secret one\n", "invalid --external-id (10 characters)"),
            ("ext-id-file-1\n\n", "invalid --external-id (14 characters)"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = format!(
                "{:#}",
                config(&["--external-id", &arg, "--", "true"]).unwrap_err()
            );
            assert!(err.contains(&format!("`{}`", file.display())), "{err}");
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(
                !err.contains("secret one") && !err.contains("ext-id-file-1"),
                "{err}"
            );
        }
        // A missing file may be an external ID that starts with `@`: it is never echoed.
        let err = config(&["--external-id", "@Acme-Secret-xyz", "--", "true"]).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("there is no such file"), "{err}");
        assert!(!err.contains("Acme-Secret-xyz"), "{err}");
    }

    #[test]
    fn a_typed_secret_is_warned_about_once_without_its_value() {
        let cli = |args: &[&str]| {
            let mut argv = vec!["cove"];
            argv.extend_from_slice(args);
            argv.extend(["--", "true"]);
            Cli::parse_args(argv).unwrap()
        };
        let warning = cli(&[
            "--external-id",
            "ext-typed-9",
            "--mfa-serial",
            "GAHT12345678",
            "--mfa-code",
            "123456",
        ])
        .secrets_warning()
        .unwrap();
        assert!(
            warning.contains("--external-id and --mfa-code"),
            "{warning}"
        );
        assert!(
            !warning.contains("ext-typed-9") && !warning.contains("123456"),
            "{warning}"
        );
        assert_eq!(
            cli(&["--external-id", "@/some/file"]).secrets_warning(),
            None
        );
        assert_eq!(cli(&[]).secrets_warning(), None);
    }

    #[test]
    fn duplicated_targets_are_merged() {
        let c = config(&["-t", "111111111111,111111111111", "--", "true"]).unwrap();
        assert_eq!(c.selection.targets.len(), 1);
    }

    #[test]
    fn session_name_defaults_to_the_role_name() {
        let c = config(&["-r", "path/Audit", "--", "true"]).unwrap();
        assert_eq!(c.role.first().session_name.as_deref(), Some("Audit"));
    }

    #[test]
    fn roles_are_an_ordered_list_from_repeats_and_commas() {
        let c = config(&["-r", "Bb,Aa", "--role", "Cc", "-r", "Aa", "--", "true"]).unwrap();
        assert_eq!(c.role.role_names, ["Bb", "Aa", "Cc"]);
        let c = config(&["--", "true"]).unwrap();
        assert_eq!(c.role.role_names, ["OrganizationAccountAccessRole"]);
        let err = config(&["-r", "Good,bad role", "--", "true"]).unwrap_err();
        assert!(format!("{err:#}").contains("bad role"), "{err:#}");
    }

    #[test]
    fn target_files_mix_with_ids_and_bad_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("targets.txt");
        std::fs::write(&good, "# core\n222222222222\n\nou-ab12-cdef3456 # prod\n").unwrap();
        let good = format!("@{}", good.display());
        let c = config(&[
            "-t",
            "111111111111",
            "-t",
            &good,
            "-t",
            "222222222222",
            "--",
            "true",
        ]);
        let targets: Vec<String> = c
            .unwrap()
            .selection
            .targets
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            targets,
            ["111111111111", "222222222222", "ou-ab12-cdef3456"]
        );

        let bad = dir.path().join("ignores.txt");
        std::fs::write(&bad, "111111111111\n\n11111111111\n").unwrap();
        let err = config(&["-i", &format!("@{}", bad.display()), "--", "true"]).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains(&format!("--ignore file `{}`, line 3", bad.display())),
            "{err}"
        );
        assert!(err.contains("11111111111"), "{err}");

        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "# nothing yet\n").unwrap();
        let err = config(&["-t", &format!("@{}", empty.display()), "--", "true"]).unwrap_err();
        assert!(format!("{err:#}").contains("holds no IDs"), "{err:#}");
        let missing = config(&["-t", "@/nonexistent/ids", "--", "true"]).unwrap_err();
        assert!(
            format!("{missing:#}").contains("/nonexistent/ids"),
            "{missing:#}"
        );
    }

    #[test]
    fn via_and_org_roles_are_role_arns_and_a_chain_caps_the_duration() {
        let hub = "arn:aws:iam::111111111111:role/team/CoveHub";
        let c = config(&["--via-role", hub, "--org-role", hub, "--", "true"]).unwrap();
        assert_eq!(c.aws.via_roles, [hub]);
        assert_eq!(c.aws.org_role.as_deref(), Some(hub));
        for bad in [
            "CoveHub",
            "arn:aws:iam::1111:role/CoveHub",
            "arn:aws:iam::111111111111:user/CoveHub",
            "arn:aws:sts::111111111111:role/CoveHub",
        ] {
            for flag in ["--via-role", "--org-role"] {
                let err = config(&[flag, bad, "--", "true"]).unwrap_err();
                assert!(err.to_string().contains(bad), "{err}");
            }
        }
        let err = config(&["--via-role", hub, "--duration", "3601", "--", "true"]).unwrap_err();
        assert!(err.to_string().contains("one-hour limit"), "{err}");
        config(&["--via-role", hub, "--duration", "3600", "--", "true"]).unwrap();
        config(&["--org-role", hub, "--duration", "43200", "--", "true"]).unwrap();
    }

    #[test]
    fn only_a_dry_run_may_leave_out_the_command() {
        let c = config(&["--dry-run"]).unwrap();
        assert!(c.dry_run && c.run.command.is_empty());
        let err = Cli::try_parse_from(["cove", "-t", "111111111111"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(err.to_string().contains("<COMMAND>"), "{err}");
        let err = config(&["--dry-run", "--", ""]).unwrap_err().to_string();
        assert!(err.contains("missing command"), "{err}");
        let err = config(&["--dry-run", "--", "echo", "{acount_id}"]).unwrap_err();
        assert!(err.to_string().contains("acount_id"), "{err}");
    }

    #[test]
    fn policy_errors_never_echo_the_policy() {
        let err = config(&["--policy", "{\"Secret\": ", "--", "true"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        assert!(!err.contains("Secret"), "{err}");
    }
}
