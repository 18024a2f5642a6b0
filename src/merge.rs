//! Reading cove's own output back: `cove merge` of sharded runs, and `--rerun` of what failed.
//! Both json documents and jsonl streams are accepted; anything else is a clear error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use crate::exit_code::{self, Exit};
use crate::output::{Outcome, write_json, written};
use crate::untrusted::terminal;

fn foreign(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is not a cove output: expected a JSON document with Results, Exceptions and FailedAssumeRole, or cove's jsonl lines",
        shown(path)
    )
}

/// A path for a message: the user named it, but a file name may hold anything.
fn shown(path: &Path) -> String {
    terminal(&path.display().to_string()).into_owned()
}

/// A record's `(Id, Region)`, checked to be there.
fn key(record: &Value, path: &Path) -> anyhow::Result<(String, String)> {
    match (record["Id"].as_str(), record["Region"].as_str()) {
        (Some(id), Some(region)) => Ok((id.to_owned(), region.to_owned())),
        _ => Err(foreign(path)),
    }
}

/// Every record in a json or jsonl output, with the list it belongs to.
pub fn read_output(path: &Path) -> anyhow::Result<Vec<(Outcome, Value)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", shown(path)))?;
    if let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(&text)
        && Outcome::ALL
            .iter()
            .all(|o| doc.get(o.list_key()).is_some_and(Value::is_array))
    {
        let mut records = Vec::new();
        for outcome in Outcome::ALL {
            for record in doc[outcome.list_key()].as_array().into_iter().flatten() {
                key(record, path)?;
                records.push((outcome, record.clone()));
            }
        }
        return Ok(records);
    }
    let mut records = Vec::new();
    let mut saw_line = false;
    let mut saw_summary = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        saw_line = true;
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line) else {
            return Err(foreign(path))
                .with_context(|| format!("line {} is not a JSON object", n + 1));
        };
        if object.contains_key("Summary") {
            saw_summary = true;
            continue;
        }
        let outcome = object
            .shift_remove("Outcome")
            .as_ref()
            .and_then(Value::as_str)
            .and_then(Outcome::from_line_name);
        let Some(outcome) = outcome else {
            return Err(foreign(path))
                .with_context(|| format!("line {} has no cove Outcome", n + 1));
        };
        let record = Value::Object(object);
        key(&record, path)?;
        records.push((outcome, record));
    }
    if !saw_line {
        bail!(
            "`{}` is empty; expected a cove json or jsonl output",
            shown(path)
        );
    }
    if !saw_summary {
        bail!(
            "`{}` has no Summary line: that run did not finish, so targets may be missing from it",
            shown(path)
        );
    }
    Ok(records)
}

/// `cove merge`: one document from shard outputs, with the exit code a single run would give.
pub fn merge(files: &[PathBuf], mut out: impl Write, pretty: bool) -> anyhow::Result<Exit> {
    let mut seen: BTreeMap<(String, String), &Path> = BTreeMap::new();
    let mut lists: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut failed = 0;
    for path in files {
        for (outcome, record) in read_output(path)? {
            let (id, region) = key(&record, path)?;
            if let Some(first) = seen.insert((id.clone(), region.clone()), path) {
                bail!(
                    "account {} in {} is in both `{}` and `{}`; shards must not overlap",
                    terminal(&id),
                    terminal(&region),
                    shown(first),
                    shown(path)
                );
            }
            if outcome != Outcome::Result {
                failed += 1;
            }
            lists.entry(outcome.list_key()).or_default().push(record);
        }
    }
    let mut doc = Map::new();
    for outcome in Outcome::ALL {
        let mut records = lists.remove(outcome.list_key()).unwrap_or_default();
        records.sort_by(|a, b| {
            (a["Id"].as_str(), a["Region"].as_str()).cmp(&(b["Id"].as_str(), b["Region"].as_str()))
        });
        doc.insert(outcome.list_key().to_owned(), Value::Array(records));
    }
    written(
        write_json(&mut out, &Value::Object(doc), pretty),
        "the merged document",
    )?;
    Ok(exit_code::decide(failed, false))
}

/// Which lists of a previous output `--rerun` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RerunOnly {
    /// Only targets whose role could not be assumed.
    FailedAssume,
    /// Only targets whose command failed.
    Exceptions,
}

/// `--rerun`: the account × region pairs that failed in a previous output, by account.
pub fn failed_pairs(
    path: &Path,
    only: Option<RerunOnly>,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (outcome, record) in read_output(path)? {
        let wanted = match (outcome, only) {
            (Outcome::Result, _) => false,
            (_, None) => true,
            (Outcome::FailedAssumeRole, Some(RerunOnly::FailedAssume)) => true,
            (Outcome::Exception, Some(RerunOnly::Exceptions)) => true,
            _ => false,
        };
        if wanted {
            let (id, region) = key(&record, path)?;
            if !crate::ids::is_account_id(&id) {
                bail!(
                    "`{}` records `{}` as an account ID; expected 12 digits",
                    shown(path),
                    terminal(&id)
                );
            }
            if region == crate::regions::ALL_ENABLED_LABEL {
                bail!(
                    "`{}` records account {id} in region `all` (its --region all discovery failed); run it again with --region all --target {id}",
                    shown(path)
                );
            }
            crate::regions::check(&region, true)
                .map_err(|e| anyhow::anyhow!("`{}`: {}", shown(path), terminal(&e.to_string())))?;
            let regions = pairs.entry(id).or_default();
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn rec(id: &str, region: &str) -> String {
        format!(r#"{{"Id": "{id}", "Region": "{region}", "ExitCode": 0}}"#)
    }

    #[test]
    fn merges_json_and_jsonl_sorted_and_rejects_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let a = file(
            dir.path(),
            "a.json",
            &format!(
                r#"{{"Results": [{}], "Exceptions": [], "FailedAssumeRole": []}}"#,
                rec("2", "r")
            ),
        );
        let b = file(
            dir.path(),
            "b.jsonl",
            &format!(
                "{}\n{{\"Summary\": {{}}}}\n",
                rec("1", "r").replace('}', r#", "Outcome": "Exception"}"#)
            ),
        );
        let cut = file(
            dir.path(),
            "cut.jsonl",
            &format!(
                "{}\n",
                rec("3", "r").replace('}', r#", "Outcome": "Result"}"#)
            ),
        );
        let err = format!(
            "{:#}",
            merge(std::slice::from_ref(&cut), Vec::new(), false).unwrap_err()
        );
        assert!(err.contains("no Summary line"), "{err}");
        let mut out = Vec::new();
        let code = merge(&[a.clone(), b.clone()], &mut out, false).unwrap();
        assert_eq!(code, Exit::TargetFailed);
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["Results"][0]["Id"], "2");
        assert_eq!(doc["Exceptions"][0]["Id"], "1");
        assert!(doc["Exceptions"][0].get("Outcome").is_none());
        let err = merge(&[a.clone(), a.clone()], Vec::new(), false).unwrap_err();
        assert!(err.to_string().contains("account 2 in r"), "{err}");
    }

    #[test]
    fn foreign_files_get_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("x.json", r#"{"hello": 1}"#),
            ("y.txt", "not json\n"),
            ("z.json", ""),
        ] {
            let path = file(dir.path(), name, text);
            let err = format!("{:#}", read_output(&path).unwrap_err());
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn rerun_rejects_ids_and_regions_that_cove_never_writes() {
        let dir = tempfile::tempdir().unwrap();
        for (name, id, region, expected) in [
            ("short.json", "12", "us-east-1", "`12`"),
            ("path.json", "111111111111", "../../x", "../../x"),
            (
                "all.json",
                "111111111111",
                "all",
                "--region all --target 111111111111",
            ),
        ] {
            let path = file(
                dir.path(),
                name,
                &format!(
                    r#"{{"Results": [], "Exceptions": [{}], "FailedAssumeRole": []}}"#,
                    rec(id, region)
                ),
            );
            let err = format!("{:#}", failed_pairs(&path, None).unwrap_err());
            assert!(err.contains(expected) && err.contains(name), "{err}");
        }
    }

    #[test]
    fn rerun_takes_the_failed_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            dir.path(),
            "o.json",
            &format!(
                r#"{{"Results": [{}], "Exceptions": [{}], "FailedAssumeRole": [{}, {}]}}"#,
                rec("111111111111", "us-east-1"),
                rec("222222222222", "us-east-1"),
                rec("333333333333", "us-east-1"),
                rec("333333333333", "eu-west-1")
            ),
        );
        let all = failed_pairs(&path, None).unwrap();
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            ["222222222222", "333333333333"]
        );
        assert_eq!(all["333333333333"], ["us-east-1", "eu-west-1"]);
        let only = failed_pairs(&path, Some(RerunOnly::FailedAssume)).unwrap();
        assert_eq!(only.keys().collect::<Vec<_>>(), ["333333333333"]);
    }
}
