//! Issue 22: big outputs in flat memory. The output contract stays byte for byte what it was
//! when `Result` was a parsed `serde_json::Value` (golden files recorded by that code), and a
//! reader that reads nothing until every child has exited loses no record.

use std::path::{Path, PathBuf};

use crate::support::{Ground, Run};

/// Child outputs that a re-layout could get wrong: key order, duplicate keys, escapes written
/// every way JSON allows, unicode, big and odd numbers, empty containers, deep nesting, and
/// outputs that are not a JSON object, array or string.
const TRICKY: [(&str, &str); 4] = [
    (
        "us-east-1",
        concat!(
            "  {\"zeta\": 1, \"alpha\" :{\"nested\":[1, 2.50, -0, 1e400, 12345678901234567890123,",
            " 1.0E+2, -1.5e-7, true, false, null, {}, [], [{}], [[]], \"\"]},\n",
            "\"unicode\": \"\u{e9}\\u00e9\\ud83d\\ude00 \\u2028 \u{2713} \u{202e}rtl\",",
            " \"esc\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001F\\u007f\\u0000 \",",
            " \"dup\": 1, \"dup\": {\"x\": 2, \"x\": [3]}, \"empty\": {}, \"zeta2\": [ ],",
            " \"\\u0041key\": \"v\", \"a b\": \"c  d\", \"\": {\"\": \"\"},",
            " \"deep\": [[[[[[[[[[{\"k\": [1, {\"l\": null}]}]]]]]]]]]]}\n\n"
        ),
    ),
    (
        "eu-west-1",
        "[ {\"b\":1,\"a\":2,\"b\":3}, \"\\ud800x\", 3 ]\n",
    ),
    (
        "us-west-2",
        "plain text, \"quoted\" \\ and \u{1b}[31m escapes\n",
    ),
    ("ap-south-1", "\"a string\"\n"),
];

/// Writes each region's output to a file of the region's name in `dir`.
fn write_outputs(dir: &Path) {
    for (region, text) in TRICKY {
        std::fs::write(dir.join(region), text).unwrap();
    }
}

/// The run's bytes with what changes between runs (the account ID, durations) made constant.
/// One account only: the document's order must not depend on the IDs the ground drew.
fn normalized(g: &Ground, text: &str) -> String {
    let mut text = text.to_owned();
    text = text.replace(&g.account("sandbox-a"), "100000000001");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\"DurationMs\":") {
        let (head, tail) = rest.split_at(at + "\"DurationMs\":".len());
        out.push_str(head);
        let spaces = tail.len() - tail.trim_start().len();
        out.push_str(&tail[..spaces]);
        let tail = &tail[spaces..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        out.push('0');
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/golden")
        .join(name)
}

/// Compares `got` with the golden file `name`; `COVE_BLESS=1` writes it instead.
fn expect_golden(name: &str, got: &str) {
    if std::env::var_os("COVE_BLESS").is_some() {
        std::fs::write(golden(name), got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(golden(name)).unwrap();
    if got != want {
        let at = got
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let from = at.saturating_sub(80);
        panic!(
            "{name} differs from the golden file at byte {at}\n got: {:?}\nwant: {:?}",
            &got[from..(at + 80).min(got.len())],
            &want[from..(at + 80).min(want.len())]
        );
    }
}

fn tricky_run(g: &Ground, outputs: &Path, format: &str, dir: &Path) -> Run {
    Run::of(
        g.cove()
            .args(["-t", &g.account("sandbox-a"), "-o", format])
            .args(["--region", "us-east-1,eu-west-1,us-west-2,ap-south-1"])
            .args(["--output-dir", dir.to_str().unwrap()])
            .args(["--", "sh", "-c", "cat \"$0/$COVE_REGION\""])
            .arg(outputs),
    )
}

/// Sorts jsonl lines but the summary, which stays last: targets finish in any order.
fn sorted_lines(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let summary = lines.pop().unwrap();
    lines.sort();
    lines.push(summary);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn tricky_child_json_gives_the_same_bytes_as_before_in_every_layout() {
    let g = Ground::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    write_outputs(tmp.path());
    for format in ["json", "jsonl"] {
        let dir = tmp.path().join(format!("out-{format}"));
        let run = tricky_run(&g, tmp.path(), format, &dir);
        run.expect_code(0);
        let stdout = normalized(&g, &run.stdout);
        let stdout = if format == "jsonl" {
            sorted_lines(&stdout)
        } else {
            stdout
        };
        expect_golden(&format!("tricky.{format}"), &stdout);
        let saved = std::fs::read_to_string(dir.join("results.json")).unwrap();
        expect_golden("tricky-results.json", &normalized(&g, &saved));
    }
}
