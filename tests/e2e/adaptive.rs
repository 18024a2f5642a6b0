//! `--workers auto` end to end: what the children saw, from stamps they leave behind, never
//! how long the run took.

use std::path::Path;

use crate::support::{Ground, Run, venv};

/// Each child's stamps, `START END [RSS]` (nanoseconds; bytes), one file per target.
fn stamps(dir: &Path) -> Vec<(u128, u128, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let f: Vec<&str> = text.split_whitespace().collect();
            let rss = f.get(2).map_or(0, |r| r.parse().unwrap());
            (f[0].parse().unwrap(), f[1].parse().unwrap(), rss)
        })
        .collect()
}

/// The most children that were running at once, and the most memory they held together.
fn peaks(stamps: &[(u128, u128, u64)]) -> (usize, u64) {
    let mut events: Vec<(u128, i64, u64)> = Vec::new();
    for (start, end, rss) in stamps {
        events.push((*start, 1, *rss));
        events.push((*end, -1, *rss));
    }
    // Ends before starts at the same instant: they did not overlap.
    events.sort_by_key(|(t, d, _)| (*t, *d));
    let (mut running, mut held, mut peak, mut peak_held) = (0i64, 0u64, 0i64, 0u64);
    for (_, d, rss) in events {
        running += d;
        held = if d > 0 { held + rss } else { held - rss };
        peak = peak.max(running);
        peak_held = peak_held.max(held);
    }
    (peak as usize, peak_held)
}

#[test]
fn a_child_that_waits_makes_auto_run_more_than_twenty_at_once() {
    // 50 accounts × 3 regions, each child asleep for 3 seconds.
    let g = Ground::start(&["--extra-root-accounts", "41"]);
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "s=$(date +%s%N); sleep 3; echo \"$s $(date +%s%N)\" > {}/{{account_id}}-{{region}}",
        dir.path().display()
    );
    let run = Run::of(g.cove().args([
        "-v",
        "--workers",
        "auto",
        "--region",
        "us-east-1,eu-west-1,ap-south-1",
        "--",
        "sh",
        "-c",
        &body,
    ]));
    run.expect_code(0);
    assert_eq!(run.list("Results").len(), 150);
    let (peak, _) = peaks(&stamps(dir.path()));
    assert!(peak > 20, "auto ran at most {peak} at once: {}", run.stderr);
    // -v says each change and why.
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("workers: 4 -> ") && l.contains("targets/s at 4")),
        "{}",
        run.stderr
    );
}

#[test]
fn children_that_hold_memory_keep_auto_within_max_memory() {
    // Each child holds 100 MiB for 2 seconds, then says when it held it and its resident size.
    // Even a broken controller runs at most --max-workers 12 at once: 1.2 GiB, on any machine.
    let g = Ground::start(&["--extra-root-accounts", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let script = "import sys, time\n\
                  held = b'x' * (100 << 20)\n\
                  start = time.time_ns()\n\
                  rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS:')]\n\
                  rss = int(rss[0].split()[1]) * 1024\n\
                  time.sleep(2)\n\
                  open(sys.argv[1], 'w').write('%d %d %d' % (start, time.time_ns(), rss))\n";
    let marker = format!("{}/{{account_id}}-{{region}}", dir.path().display());
    let python = venv().join("bin/python");
    let run = Run::of(g.cove().args([
        "-v",
        "--workers",
        "auto",
        "--max-workers",
        "12",
        "--max-memory",
        "600M",
        "--region",
        "us-east-1,eu-west-1,ap-south-1",
        "--",
        python.to_str().unwrap(),
        "-c",
        script,
        &marker,
    ]));
    run.expect_code(0);
    let stamps = stamps(dir.path());
    assert_eq!(stamps.len(), 36, "12 accounts × 3 regions");
    assert!(
        stamps.iter().all(|s| s.2 >= 100 << 20),
        "each child held its 100 MiB: {stamps:?}"
    );
    let (peak, held) = peaks(&stamps);
    assert!(
        held <= 600 << 20,
        "{peak} children held {} MiB at once, over --max-memory 600M: {}",
        held >> 20,
        run.stderr
    );
}
