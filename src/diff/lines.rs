//! A unified diff of two texts, line by line, for `cove diff` of results that are not JSON.
//!
//! The lines in the middle (after the common start and end) are compared by Myers' algorithm,
//! bounded so that a huge or hostile text cannot make it slow or large: past the bound, the
//! middle is shown as removed then added, which is still a correct (if longer) diff. The output
//! is cut at a number of lines, and says whether it was.

/// Lines of context around each change, as `diff -u`.
const CONTEXT: usize = 3;

/// The work Myers' algorithm may do, in line comparisons (about (lines) × (edit distance)).
const WORK: usize = 20_000_000;

/// The largest edit distance searched for, whatever the size (its trace is O(distance²)).
const MAX_DISTANCE: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Same,
    Removed,
    Added,
}

/// One step of the edit script: its kind, and the line numbers (0-based) before it in each text.
#[derive(Debug, Clone, Copy)]
struct Op {
    kind: Kind,
    old: usize,
    new: usize,
}

/// The lines of a text, each with its newline (the last may have none).
fn split(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The unified diff of `old` and `new` (hunks only, no file header), at most `cap` lines, and
/// whether lines were left out.
pub fn unified(old: &str, new: &str, cap: usize) -> (Vec<String>, bool) {
    let (a, b) = (split(old), split(new));
    let ops = script(&a, &b);
    let mut out = Vec::new();
    for (start, end) in hunks(&ops) {
        let hunk = &ops[start..end];
        let count = |k: Kind| {
            hunk.iter()
                .filter(|o| o.kind == Kind::Same || o.kind == k)
                .count()
        };
        let header = format!(
            "@@ -{} +{} @@",
            range(hunk[0].old, count(Kind::Removed)),
            range(hunk[0].new, count(Kind::Added))
        );
        let mut lines = vec![header];
        for op in hunk {
            let (mark, line) = match op.kind {
                Kind::Same => (' ', a[op.old]),
                Kind::Removed => ('-', a[op.old]),
                Kind::Added => ('+', b[op.new]),
            };
            match line.strip_suffix('\n') {
                Some(line) => lines.push(format!("{mark}{line}")),
                None => {
                    lines.push(format!("{mark}{line}"));
                    lines.push("\\ No newline at end of file".to_owned());
                }
            }
        }
        for line in lines {
            if out.len() == cap {
                return (out, true);
            }
            out.push(line);
        }
    }
    (out, false)
}

/// A hunk header's range: 1-based start and length, as `diff -u` writes it.
fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

/// The `[start, end)` spans of the edit script that make up each hunk: every change with up to
/// `CONTEXT` unchanged lines around it, changes closer than twice that sharing a hunk.
fn hunks(ops: &[Op]) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.kind == Kind::Same {
            continue;
        }
        let start = i.saturating_sub(CONTEXT);
        let end = (i + 1 + CONTEXT).min(ops.len());
        match spans.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => spans.push((start, end)),
        }
    }
    spans
}

/// The edit script from `a` to `b`: the common start and end as they are, the middle by Myers'
/// algorithm, or all removed then all added when that would take too long.
fn script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op> = (0..prefix)
        .map(|i| Op {
            kind: Kind::Same,
            old: i,
            new: i,
        })
        .collect();
    let bound = (WORK / (mid_a.len() + mid_b.len() + 1)).min(MAX_DISTANCE);
    let (num_a, num_b) = numbered(mid_a, mid_b);
    let middle = myers(&num_a, &num_b, bound).unwrap_or_else(|| {
        let removed = (0..mid_a.len()).map(|i| (Kind::Removed, i, 0));
        let added = (0..mid_b.len()).map(|j| (Kind::Added, mid_a.len(), j));
        removed.chain(added).collect()
    });
    for (kind, i, j) in middle {
        ops.push(Op {
            kind,
            old: prefix + i,
            new: prefix + j,
        });
    }
    let (end_a, end_b) = (a.len() - suffix, b.len() - suffix);
    ops.extend((0..suffix).map(|k| Op {
        kind: Kind::Same,
        old: end_a + k,
        new: end_b + k,
    }));
    ops
}

/// Each distinct line of `a` and `b` as a number, so that Myers compares numbers: lines that
/// share long starts (a hostile file's) cost their length once, when hashed, not at every
/// comparison.
fn numbered<'a>(a: &[&'a str], b: &[&'a str]) -> (Vec<u32>, Vec<u32>) {
    let mut ids: std::collections::HashMap<&'a str, u32> = std::collections::HashMap::new();
    let mut number = |line: &'a str| -> u32 {
        let next = ids.len() as u32;
        *ids.entry(line).or_insert(next)
    };
    let a = a.iter().map(|line| number(line)).collect();
    let b = b.iter().map(|line| number(line)).collect();
    (a, b)
}

/// Myers' shortest edit script of `a` to `b`, if its length is at most `bound`: each step with
/// the line numbers before it.
fn myers<T: PartialEq>(a: &[T], b: &[T], bound: usize) -> Option<Vec<(Kind, usize, usize)>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let limit = bound as isize;
    // v[k + limit + 1]: the furthest x on diagonal k; trace[d]: v's slice [-(d+1), d+1] before
    // step d.
    let mut v = vec![0isize; 2 * bound + 3];
    let at = |k: isize| (k + limit + 1) as usize;
    let mut trace: Vec<Vec<isize>> = Vec::new();
    for d in 0..=limit {
        trace.push(v[at(-d - 1)..=at(d + 1)].to_vec());
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
                v[at(k + 1)]
            } else {
                v[at(k - 1)] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[at(k)] = x;
            if x >= n && y >= m {
                return Some(backtrack(&trace, n, m));
            }
            k += 2;
        }
    }
    None
}

/// The edit script, read back from the trace of `myers`.
fn backtrack(trace: &[Vec<isize>], n: isize, m: isize) -> Vec<(Kind, usize, usize)> {
    let (mut x, mut y) = (n, m);
    let mut steps = Vec::new();
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as isize;
        // v holds diagonals -(d+1)..=d+1.
        let get = |k: isize| v[(k + d + 1) as usize];
        let k = x - y;
        let prev_k = if k == -d || (k != d && get(k - 1) < get(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = if d == 0 { 0 } else { get(prev_k) };
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            steps.push((Kind::Same, x as usize, y as usize));
        }
        if d > 0 {
            if x == prev_x {
                y -= 1;
                steps.push((Kind::Added, x as usize, y as usize));
            } else {
                x -= 1;
                steps.push((Kind::Removed, x as usize, y as usize));
            }
        }
        x = prev_x;
        y = prev_y;
    }
    steps.reverse();
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(a: &str, b: &str) -> Vec<String> {
        unified(a, b, 200).0
    }

    #[test]
    fn a_changed_line_has_its_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            diff(old, new),
            [
                "@@ -2,7 +2,7 @@",
                " b",
                " c",
                " d",
                "-e",
                "+E",
                " f",
                " g",
                " h"
            ]
        );
    }

    #[test]
    fn insertions_deletions_and_far_apart_changes() {
        assert_eq!(diff("", "x\n"), ["@@ -0,0 +1 @@", "+x"]);
        assert_eq!(diff("x\n", ""), ["@@ -1 +0,0 @@", "-x"]);
        assert_eq!(
            diff("a\n", "a"),
            ["@@ -1 +1 @@", "-a", "+a", "\\ No newline at end of file"]
        );
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new = old.replace("1\n", "one\n").replace("18\n", "");
        let lines = diff(&old, &new);
        assert_eq!(lines.iter().filter(|l| l.starts_with("@@")).count(), 2);
        assert!(lines.contains(&"-1".to_owned()) && lines.contains(&"+one".to_owned()));
        assert!(lines.contains(&"-18".to_owned()));
        // "11" also contained "1\n": it was replaced too.
        assert!(lines.contains(&"+1one".to_owned()));
    }

    #[test]
    fn the_middle_is_a_shortest_script() {
        let lines = diff("a\nb\nc\nx\ny\n", "b\nc\nz\ny\nq\n");
        let changed: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with('-') || l.starts_with('+'))
            .collect();
        assert_eq!(changed, ["-a", "-x", "+z", "+q"]);
    }

    #[test]
    fn the_output_is_capped_and_says_so() {
        let old: String = (0..1000).map(|i| format!("{i}\n")).collect();
        let new: String = (0..1000).map(|i| format!("{}\n", i * 7)).collect();
        let (lines, capped) = unified(&old, &new, 200);
        assert!(capped);
        assert_eq!(lines.len(), 200);
        let (_, capped) = unified("a\n", "b\n", 200);
        assert!(!capped);
    }

    #[test]
    fn a_huge_text_falls_back_to_removed_then_added() {
        let old: String = (0..200_000).map(|i| format!("{i}\n")).collect();
        let new: String = (0..200_000)
            .map(|i| format!("{}\n", i + 1_000_000))
            .collect();
        let (lines, capped) = unified(&old, &new, 200);
        assert!(capped);
        assert_eq!(lines[0], "@@ -1,200000 +1,200000 @@");
        assert!(lines[1..].iter().all(|l| l.starts_with('-')));
    }

    proptest::proptest! {
        #[test]
        fn applying_the_script_gives_the_new_text(
            a in proptest::collection::vec("[abc]\n", 0..30),
            b in proptest::collection::vec("[abc]\n", 0..30),
        ) {
            let (a, b): (Vec<&str>, Vec<&str>) =
                (a.iter().map(String::as_str).collect(), b.iter().map(String::as_str).collect());
            let ops = script(&a, &b);
            let rebuilt: Vec<&str> = ops
                .iter()
                .filter(|o| o.kind != Kind::Removed)
                .map(|o| if o.kind == Kind::Same { a[o.old] } else { b[o.new] })
                .collect();
            proptest::prop_assert_eq!(rebuilt, b.clone());
            let kept: Vec<&str> =
                ops.iter().filter(|o| o.kind != Kind::Added).map(|o| a[o.old]).collect();
            proptest::prop_assert_eq!(kept, a.clone());
        }
    }
}
