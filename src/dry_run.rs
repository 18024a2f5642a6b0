//! `--dry-run`: the account × region matrix on stdout and a count on stderr. No role is
//! assumed and nothing runs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::exit_code::Exit;
use crate::output::{write_json, written};
use crate::plan::Target;
use crate::progress;

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
}

/// Writes the matrix, and the roles each account would try in order (`Roles`), when it was
/// made (`Created`, RFC 3339 UTC) and by which calling account (`Caller`, null when there is
/// none): `cove --plan` reads it back. With `all_enabled`, each account stands once with the
/// `all` label, since its regions are discovered only when a real run starts.
pub fn write<W: Write>(
    targets: &[Target],
    via: &BTreeMap<String, Vec<String>>,
    roles: &[String],
    (all_enabled, caller): (bool, Option<&str>),
    quiet: bool,
    mut out: W,
    pretty: bool,
) -> anyhow::Result<Exit> {
    let planned: Vec<PlannedTarget> = targets
        .iter()
        .map(|(a, r)| PlannedTarget {
            id: &a.id,
            name: a.name.as_deref(),
            email: a.email.as_deref(),
            status: a.status.as_deref(),
            region: r,
            targeted_by: via.get(&a.id).map(Vec::as_slice).unwrap_or_default(),
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
    Ok(Exit::Success)
}
