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

fn tricky_run(g: &Ground, outputs: &Path, format: &str, dir: Option<&Path>) -> Run {
    let mut cmd = g.cove();
    cmd.args(["-t", &g.account("sandbox-a"), "-o", format])
        .args(["--region", "us-east-1,eu-west-1,us-west-2,ap-south-1"]);
    if let Some(dir) = dir {
        cmd.args(["--output-dir", dir.to_str().unwrap()]);
    }
    Run::of(
        cmd.args(["--", "sh", "-c", "cat \"$0/$COVE_REGION\""])
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
    for (format, with_dir) in [
        ("json", true),
        ("json", false),
        ("jsonl", true),
        ("jsonl", false),
    ] {
        // With --output-dir the record carries the raw output and the writer makes `Result`;
        // without, the run makes it as the target ends: the same bytes either way.
        let dir = tmp.path().join(format!("out-{format}"));
        let run = tricky_run(&g, tmp.path(), format, with_dir.then_some(dir.as_path()));
        run.expect_code(0);
        let stdout = normalized(&g, &run.stdout);
        let stdout = if format == "jsonl" {
            sorted_lines(&stdout)
        } else {
            stdout
        };
        expect_golden(&format!("tricky.{format}"), &stdout);
        if !with_dir {
            continue;
        }
        let saved = std::fs::read_to_string(dir.join("results.json")).unwrap();
        expect_golden("tricky-results.json", &normalized(&g, &saved));
    }
}

/// About 1 MB of JSON over many lines: an array of strings.
fn blob() -> String {
    let lines: Vec<String> = (0..16 * 1024)
        .map(|i| format!("\"{}{i:06}\"", "x".repeat(55)))
        .collect();
    format!("[{}]\n", lines.join(",\n"))
}

/// The bytes cove holds in files it opened in `dir` and unlinked (the spill), now.
fn spilled_bytes(pid: u32, dir: &Path) -> u64 {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(Result::ok)
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                target.starts_with(dir) && target.to_string_lossy().ends_with(" (deleted)")
            })
        })
        .filter_map(|fd| std::fs::metadata(fd.path()).ok())
        .map(|meta| meta.len())
        .sum()
}

/// Runs `format` over at least 60 targets of about 1 MB each, reading nothing until every
/// child has exited; returns the run, the markers (one per child that ran) and the most bytes
/// seen spilled to unlinked files in `tmpdir` while the reader waited.
fn stalled_reader_run(format: &str, tmpdir: &Path) -> (Run, Vec<String>, u64) {
    reader_run(format, tmpdir, true)
}

/// As [`stalled_reader_run`], but the reader starts once 40 children have exited, or none
/// has for 5 seconds (a scheduler that waits for the reader starts no new child).
fn late_reader_run(format: &str, tmpdir: &Path) -> (Run, Vec<String>, u64) {
    reader_run(format, tmpdir, false)
}

fn reader_run(format: &str, tmpdir: &Path, every_child: bool) -> (Run, Vec<String>, u64) {
    use crate::support::{SpawnPiped, finish_within, wait_until};
    use std::time::Duration;
    let g = Ground::start(&["--extra-root-accounts", "12"]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("blob"), blob()).unwrap();
    let done = tmp.path().join("done");
    std::fs::create_dir(&done).unwrap();
    let regions = ["us-east-1", "eu-west-1", "us-west-2", "ap-south-1"];
    let expected = g.active_ids().len() * regions.len();
    let child = g
        .cove()
        .env("TMPDIR", tmpdir)
        .args([
            "-t",
            &g.root(),
            "-o",
            format,
            "--region",
            &regions.join(","),
        ])
        .args(["--", "sh", "-c"])
        .arg("cat \"$0/blob\" && touch \"$0/done/$COVE_ACCOUNT_ID-$COVE_REGION\"")
        .arg(tmp.path())
        .spawn_piped();
    let pid = child.id();
    let markers = || std::fs::read_dir(&done).unwrap().count();
    if every_child {
        wait_until(
            "every child exited, the reader having read nothing",
            Duration::from_secs(240),
            || markers() >= expected,
        );
    } else {
        let (mut seen, mut since) = (0, std::time::Instant::now());
        wait_until(
            "40 children exited, or none for 5 s",
            Duration::from_secs(240),
            || {
                let now = markers();
                if now != seen {
                    (seen, since) = (now, std::time::Instant::now());
                }
                now >= 40.min(expected) || (now > 0 && since.elapsed() > Duration::from_secs(5))
            },
        );
    }
    // The records reach the writer: what it spilled as the reader still waits.
    let mut spilled = 0;
    for _ in 0..20 {
        spilled = spilled.max(spilled_bytes(pid, tmpdir));
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = finish_within(child, Duration::from_secs(120), "reading the output", || {});
    let mut names: Vec<String> = std::fs::read_dir(&done)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    eprintln!("spilled while the reader waited: {spilled} bytes at most");
    (run, names, spilled)
}

/// The `ID-REGION` of each record of a jsonl run (the summary line aside), sorted.
fn jsonl_targets(run: &Run) -> Vec<String> {
    let mut got: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("{\"Summary\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["Outcome"], "Result", "{}", &l[..l.len().min(400)]);
            assert_eq!(v["Result"].as_array().unwrap().len(), 16 * 1024);
            format!(
                "{}-{}",
                v["Id"].as_str().unwrap(),
                v["Region"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    got
}

/// What must have spilled while the reader waits: every child has exited, so all but the
/// 16 MB budget of about 84 MB of output waits for the reader, and the pipe holds only 64 KiB.
/// An unbounded hand-off spills nothing (it holds everything in memory).
const SPILLED_AT_LEAST: u64 = 30 * 1024 * 1024;

#[test]
fn jsonl_with_a_reader_that_waits_for_every_child_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, markers, spilled) = stalled_reader_run("jsonl", tmp.path());
    run.expect_code(0);
    assert!(markers.len() >= 60, "{} targets", markers.len());
    assert_eq!(jsonl_targets(&run), markers, "every child's record, once");
    let summary = run.stdout.lines().last().unwrap();
    assert!(
        summary.contains(&format!("\"Results\":{},", markers.len())),
        "{summary}"
    );
    assert!(
        spilled >= SPILLED_AT_LEAST,
        "records waiting for the reader spill past the budget: {spilled} bytes spilled"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the spill is unlinked"
    );
}

#[test]
fn text_with_a_reader_that_waits_for_every_child_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, markers, spilled) = stalled_reader_run("text", tmp.path());
    run.expect_code(0);
    assert!(markers.len() >= 60, "{} targets", markers.len());
    // Each target's 16 Ki lines, tagged `ID NAME REGION | `.
    let mut lines = std::collections::BTreeMap::<String, usize>::new();
    for line in run.stdout.lines() {
        let mut words = line.split(' ');
        let (id, _name, region) = (words.next().unwrap(), words.next(), words.next().unwrap());
        *lines.entry(format!("{id}-{region}")).or_default() += 1;
    }
    let targets: Vec<String> = lines.keys().cloned().collect();
    assert_eq!(targets, markers, "every child's output");
    assert!(
        lines.values().all(|&n| n == 16 * 1024),
        "every line of every target"
    );
    assert!(
        spilled >= SPILLED_AT_LEAST,
        "records waiting for the reader spill past the budget: {spilled} bytes spilled"
    );
}

#[test]
fn a_spill_that_cannot_be_written_still_reports_every_target() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let (run, markers, _) = late_reader_run("jsonl", &missing);
    run.expect_code(0);
    assert_eq!(jsonl_targets(&run), markers, "every child's record, once");
    let warning = format!(
        "could not write the records waiting for the output to a temporary file in `{}`",
        missing.display()
    );
    assert_eq!(
        run.stderr.matches(&warning).count(),
        1,
        "said once, naming the directory: {}",
        run.stderr
    );
}

/// `scripts/demo` prints its run with `scripts/demo-print`: the json document pretty with a
/// summary, and `-o jsonl` or `-o text` (however the option is spelled) as cove wrote them.
#[test]
fn the_demo_prints_every_output_format() {
    let g = Ground::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-print");
    let out_dir = tmp.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    let spellings: [&[&str]; 7] = [
        &[],
        &["-o", "json"],
        &["--output-dir", out_dir, "-o", "jsonl"],
        &["--output=jsonl"],
        &["-otext"],
        &["--output", "text", "--workers", "2"],
        &["-q", "-o", "text"],
    ];
    for args in spellings {
        let run = Run::of(
            g.cove()
                .args(["-t", &g.account("sandbox-a"), "--region", "us-east-1"])
                .args(args)
                .args(["--", "sh", "-c", "echo '{\"a\": [1, \"b\"]}'"]),
        );
        run.expect_code(0);
        let file = tmp.path().join("out.json");
        std::fs::write(&file, &run.stdout).unwrap();
        let shown = std::process::Command::new(&script)
            .arg(&file)
            .args(args)
            .args(["--", "aws", "-o", "text"])
            .env("PYTHON", crate::support::venv().join("bin/python"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&shown.stdout);
        let stderr = String::from_utf8_lossy(&shown.stderr);
        assert!(shown.status.success(), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
        if args.is_empty() || args == ["-o", "json"] {
            assert!(
                stdout.contains("\n  \"Results\": [")
                    && stdout.contains("summary: 1 accounts x 1 regions: 1 in Results"),
                "{args:?}: {stdout}"
            );
        } else {
            assert_eq!(stdout, run.stdout, "{args:?}: as cove wrote it");
        }
    }
}
