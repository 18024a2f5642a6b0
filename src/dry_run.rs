//! `--dry-run`: the account × region matrix on stdout and a count on stderr. No role is
//! assumed and nothing runs. Each entry shows the target's variables (`Vars`) and, when the
//! command uses a variable or tag the target lacks, what it lacks (`Missing`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use crate::exit_code::Exit;
use crate::output::{write_json, written};
use crate::plan::Target;
use crate::progress;
use crate::target_vars::Resolved;

/// One entry of the matrix.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PlannedTarget<'a> {
    id: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
    status: Option<&'a str>,
    region: &'a str,
    targeted_by: &'a [String],
    /// The target's variables, name → value (`{}` when none).
    vars: &'a BTreeMap<String, String>,
    /// The variables (`var.NAME`) and tags (`tag.KEY`) the command uses that the target lacks;
    /// left out when nothing is missing.
    #[serde(skip_serializing_if = "nothing")]
    missing: &'a [String],
}

fn nothing(missing: &&[String]) -> bool {
    missing.is_empty()
}

/// Writes the matrix, and the roles each account would try in order (`Roles`), when it was
/// made (`Created`, RFC 3339 UTC) and by which calling account (`Caller`, null when there is
/// none): `cove --plan` reads it back. With `all_enabled`, each account stands once with the
/// `all` label, since its regions are discovered only when a real run starts. `vars` holds each
/// account's variables and what it lacks, by account ID.
pub fn write<W: Write>(
    targets: &[Target],
    (via, vars): (&BTreeMap<String, Vec<String>>, &HashMap<String, Resolved>),
    roles: &[String],
    (all_enabled, caller): (bool, Option<&str>),
    quiet: bool,
    mut out: W,
    pretty: bool,
) -> anyhow::Result<Exit> {
    let none = Resolved::default();
    let planned: Vec<PlannedTarget> = targets
        .iter()
        .map(|(a, r)| (a, r, vars.get(&a.id).unwrap_or(&none)))
        .map(|(a, r, v)| PlannedTarget {
            id: &a.id,
            name: a.name.as_deref(),
            email: a.email.as_deref(),
            status: a.status.as_deref(),
            region: r,
            targeted_by: via.get(&a.id).map(Vec::as_slice).unwrap_or_default(),
            vars: &v.vars,
            missing: &v.missing,
        })
        .collect();
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let doc = serde_json::json!({
        "Created": created,
        "Caller": caller,
        "Roles": roles,
        "Targets": planned,
    });
    written(write_json(&mut out, &doc, pretty), "the dry run to stdout")?;
    let count =
        |f: fn(&Target) -> &str| targets.iter().map(f).collect::<BTreeSet<_>>().len() as u64;
    let accounts = count(|(a, _)| a.id.as_str());
    let summary = if all_enabled {
        format!(
            "dry run: {} accounts, each in every region it has enabled (discovered when the run starts); no role was assumed and nothing ran",
            progress::thousands(accounts)
        )
    } else {
        format!(
            "dry run: {} accounts × {} regions = {} targets; no role was assumed and nothing ran",
            progress::thousands(accounts),
            count(|(_, r)| r.as_str()),
            progress::thousands(targets.len() as u64)
        )
    };
    progress::note(quiet, &summary);
    let lacking = planned.iter().filter(|p| !p.missing.is_empty()).count() as u64;
    if lacking > 0 {
        progress::note(
            quiet,
            &format!(
                "dry run: {} of the targets lack a variable or tag their command uses (see Missing); they would fail without running",
                progress::thousands(lacking)
            ),
        );
    }
    Ok(Exit::Success)
}
