//! `--plan FILE`: a `--dry-run` document read back as a run's targets, so that the shards of a
//! CI matrix run what one planning job chose, without listing the organization again.
//!
//! The file is untrusted: every `Id` must be 12 digits, every `Region` a well-formed region
//! cove knows (its partition is checked against the caller's in `identity`), every name,
//! email and state bounded in size; the file itself is bounded too. What a message quotes from
//! it goes through [`terminal`]. Names and emails become the accounts' own, so the per-target
//! rules for account names (`template::render`) apply to them as to names AWS returned.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::aws::{Account, Caller};
use crate::cli::Cli;
use crate::ids;
use crate::plan::Shard;
use crate::progress;
use crate::regions;
use crate::untrusted::terminal;

/// The largest plan read: a dry run of 10,000 accounts × 35 regions fits several times over.
pub const MAX_BYTES: u64 = 128 << 20;
/// At most this many targets in one plan.
pub const MAX_TARGETS: usize = 2_000_000;
/// An account's name and email at most this long (AWS allows 50 and 64 characters).
const MAX_NAME_CHARS: usize = 256;
const MAX_EMAIL_CHARS: usize = 320;
/// A plan older than this is noted on stderr.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A plan, checked: its accounts in ID order, each with the regions it runs in.
#[derive(Debug)]
pub struct Plan {
    /// How messages name the plan: its path, or standard input.
    pub source: String,
    /// `Created`, when the plan has one.
    pub created: Option<(String, SystemTime)>,
    /// `Caller`: the calling account that made the plan (none for an older cove's plan, or a
    /// plan made with `--sso-role` without a calling identity).
    pub caller: Option<String>,
    /// `--plan-any-caller`: a plan made by another calling account runs too.
    pub any_caller: bool,
    /// Every account of the plan, in ID order.
    pub accounts: Vec<Account>,
    /// The regions of each account, in the plan's order.
    pub pairs: BTreeMap<String, Vec<String>>,
}

/// Options that choose targets, which a plan has already decided: `(argument id, flag)`.
/// `group` is the config file's `--group`, refused here whenever it exists in [`Cli`].
const DECIDED_BY_THE_PLAN: &[(&str, &str)] = &[
    ("targets", "--target"),
    ("ignores", "--ignore"),
    ("regions", "--region"),
    ("exclude_region", "--exclude-region"),
    ("include_caller", "--include-caller"),
    ("filter_name", "--filter-name"),
    ("filter_email", "--filter-email"),
    ("filter_tag", "--filter-tag"),
    ("rerun", "--rerun"),
    ("group", "--group"),
];

/// Whether argument `id` chooses targets, which a plan has already decided: a config file's
/// setting of it gives way to `--plan` (with a note), where a flag or variable is refused.
pub fn decided_by_the_plan(id: &str) -> bool {
    DECIDED_BY_THE_PLAN
        .iter()
        .any(|(decided, _)| *decided == id)
}

/// `--plan` (or `COVE_PLAN`) with an option that chooses targets, as a flag or its variable,
/// is an input error naming both.
pub fn refuse_selection(cli: &Cli) -> anyhow::Result<()> {
    if cli.plan.is_none() {
        return Ok(());
    }
    for (id, flag) in DECIDED_BY_THE_PLAN {
        // COVE_INCLUDE_CALLER=false, set for every job of a CI system, asks for nothing.
        let asks = *id != "include_caller" || cli.include_caller;
        if cli.origins.given(id) && asks {
            bail!(
                "{} cannot be combined with {}: the plan already chose the accounts and regions; make a new plan with `cove --dry-run` instead",
                cli.origins.name("plan", "--plan"),
                cli.origins.name(id, flag)
            );
        }
    }
    Ok(())
}

/// Reads and checks the plan `value` names: a path, `@PATH`, or `@-` (or `-`) for standard
/// input.
pub fn read(value: &str, allow_unknown_region: bool, any_caller: bool) -> anyhow::Result<Plan> {
    let (source, bytes) = match value {
        "-" | "@-" => {
            let source = "--plan @- (standard input)".to_owned();
            (source.clone(), bounded(std::io::stdin().lock(), &source)?)
        }
        _ => {
            let path = value.strip_prefix('@').unwrap_or(value);
            let source = format!("--plan `{}`", terminal(path));
            let file = std::fs::File::open(Path::new(path))
                .with_context(|| format!("cannot read {source}"))?;
            (source.clone(), bounded(file, &source)?)
        }
    };
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{source} is not a cove plan: it is not JSON ({}); expected the document `cove --dry-run` writes",
            terminal(&e.to_string())
        )
    })?;
    parse(&source, &doc, allow_unknown_region, any_caller)
}

/// At most [`MAX_BYTES`] of `reader`.
fn bounded(reader: impl Read, source: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {source}"))?;
    ensure!(
        bytes.len() as u64 <= MAX_BYTES,
        "{source} is larger than {} MiB; expected a dry-run document",
        MAX_BYTES >> 20
    );
    Ok(bytes)
}

/// A JSON value from the file, for a message: escaped for a terminal and cut short.
fn quoted(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cut: String = text.chars().take(80).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("`{}{more}`", terminal(&cut))
}

/// The plan in a parsed document.
fn parse(
    source: &str,
    doc: &Value,
    allow_unknown_region: bool,
    any_caller: bool,
) -> anyhow::Result<Plan> {
    let not_plan = || {
        anyhow::anyhow!(
            "{source} is not a cove plan: expected the JSON document `cove --dry-run` writes, with a Targets list"
        )
    };
    let targets = doc
        .get("Targets")
        .and_then(Value::as_array)
        .ok_or_else(not_plan)?;
    ensure!(
        !targets.is_empty(),
        "{source} holds no targets: its dry run chose nothing to run"
    );
    ensure!(
        targets.len() <= MAX_TARGETS,
        "{source} holds {} targets; at most {MAX_TARGETS} are accepted",
        targets.len()
    );
    let created = match doc.get("Created") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match humantime::parse_rfc3339(text) {
            Ok(time) => Some((text.clone(), time)),
            Err(_) => bail!(
                "{source}: Created {} is not a time; expected RFC 3339 in UTC, such as 2026-01-31T09:00:00Z",
                quoted(&Value::String(text.clone()))
            ),
        },
        Some(other) => bail!("{source}: Created {} is not a time", quoted(other)),
    };
    let caller = match doc.get("Caller") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if ids::is_account_id(id) => Some(id.clone()),
        Some(other) => bail!(
            "{source}: Caller {} is not an account ID; expected 12 digits",
            quoted(other)
        ),
    };
    let mut accounts: BTreeMap<String, Account> = BTreeMap::new();
    let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, entry) in targets.iter().enumerate() {
        let at = format!("{source}, target {}", n + 1);
        let (account, region) = target(&at, entry, allow_unknown_region)?;
        if let Some(known) = accounts.get(&account.id) {
            ensure!(
                *known == account,
                "{at}: account {} appears twice with different Name, Email or Status",
                account.id
            );
        }
        let regions = pairs.entry(account.id.clone()).or_default();
        ensure!(
            !regions.contains(&region),
            "{at}: account {} in {region} appears twice",
            account.id
        );
        regions.push(region);
        accounts.insert(account.id.clone(), account);
    }
    Ok(Plan {
        source: source.to_owned(),
        created,
        caller,
        any_caller,
        accounts: accounts.into_values().collect(),
        pairs,
    })
}

/// One entry of `Targets`: its account and region, checked.
fn target(
    at: &str,
    entry: &Value,
    allow_unknown_region: bool,
) -> anyhow::Result<(Account, String)> {
    ensure!(
        entry.is_object(),
        "{at} is {}; expected an object with Id and Region",
        quoted(entry)
    );
    let id = match &entry["Id"] {
        Value::String(id) if ids::is_account_id(id) => id.clone(),
        other => bail!(
            "{at}: Id {} is not an account ID; expected 12 digits",
            quoted(other)
        ),
    };
    let region = match &entry["Region"] {
        Value::String(r) if r == regions::ALL_ENABLED_LABEL => bail!(
            "{at}: account {id} has Region `all`: the plan was made with --region all, whose regions are found only when a run starts; make the plan with named regions (--region us-east-1,eu-west-1)"
        ),
        Value::String(r) => {
            regions::check(r, allow_unknown_region)
                .map_err(|e| anyhow::anyhow!("{at}: account {id}: {}", terminal(&e)))?;
            r.clone()
        }
        other => bail!(
            "{at}: account {id}: Region {} is not a region",
            quoted(other)
        ),
    };
    let text = |key: &str, max: usize| -> anyhow::Result<Option<String>> {
        match &entry[key] {
            Value::Null => Ok(None),
            Value::String(s) if s.chars().count() <= max => Ok(Some(s.clone())),
            Value::String(_) => {
                bail!("{at}: account {id}: {key} is longer than {max} characters")
            }
            other => bail!(
                "{at}: account {id}: {key} {} is not a string",
                quoted(other)
            ),
        }
    };
    let name = text("Name", MAX_NAME_CHARS)?;
    let email = text("Email", MAX_EMAIL_CHARS)?;
    let status = text("Status", 32)?;
    if let Some(s) = &status {
        ensure!(
            s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{at}: account {id}: Status {} is not an account state such as ACTIVE",
            quoted(&Value::String(s.clone()))
        );
    }
    let account = Account {
        id,
        name,
        email,
        status,
        parents: None,
    };
    Ok((account, region))
}

impl Plan {
    /// A region of the plan, to call STS in when the credential chain names none.
    pub fn first_region(&self) -> Option<String> {
        self.pairs.values().flatten().next().cloned()
    }
}

/// The plan's accounts for this run: the calling account is the plan's (or
/// `--plan-any-caller`), a stale plan is noted, and `--shard` deals the accounts exactly as it
/// deals a listing's.
pub fn choose(
    plan: &Plan,
    shard: Option<Shard>,
    caller: &Caller,
    quiet: bool,
) -> anyhow::Result<Vec<Account>> {
    check_caller(plan, caller)?;
    if let Some(warning) = age_warning(plan, SystemTime::now()) {
        eprintln!("cove: warning: {warning}");
    }
    let accounts = plan.accounts.clone();
    let Some(shard) = shard else {
        return Ok(accounts);
    };
    let before = accounts.len();
    let kept = shard.keep(accounts);
    progress::note(
        quiet,
        &format!(
            "shard {}/{} of the plan: {} of {} accounts",
            shard.index,
            shard.count,
            kept.len(),
            before
        ),
    );
    Ok(kept)
}

/// A plan made by another calling account is refused unless `--plan-any-caller`.
fn check_caller(plan: &Plan, caller: &Caller) -> anyhow::Result<()> {
    let now = Some(caller.account.as_str()).filter(|a| !a.is_empty());
    if plan.any_caller || plan.caller.as_deref() == now {
        return Ok(());
    }
    let name = |who: Option<&str>| match who {
        Some(id) => format!("account {id}"),
        None => "no calling account".to_owned(),
    };
    bail!(
        "{} was made by {} (its Caller), but this run calls as {}; make the plan with the same credentials, or pass --plan-any-caller (COVE_PLAN_ANY_CALLER) to run it anyway",
        plan.source,
        name(plan.caller.as_deref()),
        name(now)
    )
}

/// What to say about the plan's age at `now`: older than a day, made in the future, or of
/// unknown age.
fn age_warning(plan: &Plan, now: SystemTime) -> Option<String> {
    let Some((text, created)) = &plan.created else {
        return Some(format!(
            "{} has no Created time, so its age is unknown; accounts may have joined or left the organization since it was made",
            plan.source
        ));
    };
    match now.duration_since(*created) {
        Ok(age) if age > STALE_AFTER => Some(format!(
            "{} was made {} ago (Created {text}); accounts may have joined or left the organization since: make a new plan with `cove --dry-run` if that matters",
            plan.source,
            humantime::format_duration(Duration::from_secs(age.as_secs() / 60 * 60))
        )),
        Ok(_) => None,
        Err(e) if e.duration() > Duration::from_secs(300) => Some(format!(
            "{} was made in the future (Created {text}); check this machine's clock",
            plan.source
        )),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(doc: Value) -> anyhow::Result<Plan> {
        parse("--plan `p.json`", &doc, false, false)
    }

    fn entry(id: &str, region: &str) -> Value {
        json!({"Id": id, "Name": "a", "Email": "a@example.com", "Status": "ACTIVE",
               "Region": region, "TargetedBy": []})
    }

    fn error(doc: Value) -> String {
        format!("{:#}", plan(doc).unwrap_err())
    }

    #[test]
    fn a_dry_run_document_reads_back_by_account_in_id_order() {
        let p = plan(json!({
            "Created": "2026-01-31T09:00:00Z", "Caller": "000000000000", "Roles": ["R"],
            "Targets": [entry("222222222222", "eu-west-1"), entry("111111111111", "us-east-1"),
                        entry("222222222222", "us-east-1")]}))
        .unwrap();
        let ids: Vec<&str> = p.accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["111111111111", "222222222222"]);
        assert_eq!(p.pairs["222222222222"], ["eu-west-1", "us-east-1"]);
        assert_eq!(p.caller.as_deref(), Some("000000000000"));
        assert_eq!(p.accounts[0].email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn hostile_or_broken_entries_are_refused_naming_the_value_escaped() {
        let cases = [
            (json!({"Targets": [entry("12345", "eu-west-1")]}), "`12345`"),
            (
                json!({"Targets": [entry("--profile=x", "eu-west-1")]}),
                "`--profile=x`",
            ),
            (
                json!({"Targets": [entry("111111111111", "eu-west-\u{1b}[2J1")]}),
                "\\u{1b}[2J",
            ),
            (
                json!({"Targets": [entry("111111111111", "mars-north-1")]}),
                "mars-north-1",
            ),
            (
                json!({"Targets": [entry("111111111111", "all")]}),
                "--region all",
            ),
            (
                json!({"Targets": [entry("111111111111", "eu-west-1"), entry("111111111111", "eu-west-1")]}),
                "twice",
            ),
            (json!({"Targets": []}), "no targets"),
            (json!({"Results": []}), "not a cove plan"),
            (
                json!({"Caller": "me", "Targets": [entry("111111111111", "eu-west-1")]}),
                "`me`",
            ),
            (
                json!({"Created": "yesterday", "Targets": [entry("111111111111", "eu-west-1")]}),
                "`yesterday`",
            ),
            (
                json!({"Targets": [{"Id": "111111111111", "Region": "eu-west-1", "Name": "x".repeat(300)}]}),
                "longer than 256",
            ),
            (
                json!({"Targets": [{"Id": "111111111111", "Region": "eu-west-1", "Status": "ok;rm"}]}),
                "`ok;rm`",
            ),
        ];
        for (doc, expected) in cases {
            let err = error(doc.clone());
            assert!(err.contains(expected), "{doc}: {err}");
            assert!(!err.contains('\u{1b}'), "{err}");
        }
    }

    #[test]
    fn selection_options_are_refused_with_a_plan_as_flags_or_variables() {
        for (id, flag) in DECIDED_BY_THE_PLAN.iter().filter(|(id, _)| *id != "group") {
            let value = match *id {
                "include_caller" => None,
                "regions" | "exclude_region" => Some("eu-west-1"),
                "filter_tag" => Some("k=v"),
                "targets" | "ignores" => Some("111111111111"),
                _ => Some("x"),
            };
            let mut argv = vec!["cove", "--plan", "p.json", flag];
            argv.extend(value);
            argv.extend(["--", "true"]);
            let cli = Cli::parse_args(&argv).unwrap();
            let err = refuse_selection(&cli).unwrap_err().to_string();
            assert!(err.contains(&format!("with {flag}")), "{id}: {err}");
        }
        let cli = Cli::parse_args(["cove", "--plan", "p.json", "--", "true"]).unwrap();
        refuse_selection(&cli).unwrap();
    }

    #[test]
    fn the_calling_account_must_be_the_plans_unless_any_caller() {
        let mut p = plan(json!({"Caller": "000000000000",
                                "Targets": [entry("111111111111", "eu-west-1")]}))
        .unwrap();
        let caller = |a: &str| Caller {
            account: a.into(),
            arn: format!("arn:aws:iam::{a}:root"),
        };
        check_caller(&p, &caller("000000000000")).unwrap();
        let err = check_caller(&p, &caller("999999999999"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("000000000000") && err.contains("999999999999"),
            "{err}"
        );
        p.any_caller = true;
        check_caller(&p, &caller("999999999999")).unwrap();
    }

    #[test]
    fn a_plan_older_than_a_day_or_from_the_future_is_noted() {
        let p = plan(json!({"Created": "2026-01-31T09:00:00Z",
                            "Targets": [entry("111111111111", "eu-west-1")]}))
        .unwrap();
        let created = p.created.as_ref().unwrap().1;
        let at = |secs: u64| created + Duration::from_secs(secs);
        assert_eq!(age_warning(&p, at(23 * 3600)), None);
        let old = age_warning(&p, at(25 * 3600)).unwrap();
        assert!(old.contains("1day 1h ago"), "{old}");
        let future = age_warning(&p, created - Duration::from_secs(3600)).unwrap();
        assert!(future.contains("future"), "{future}");
    }
}
