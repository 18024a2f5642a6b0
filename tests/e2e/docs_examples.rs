//! The examples of the README and the guide that are marked runnable (`<!-- runnable -->` on
//! the line before a `sh` code block, or `<!-- runnable: exit N -->` when the block's last
//! command is meant to exit N), run as written against the emulator. The guide's sample IDs
//! stand for the emulator's accounts and OUs.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::docs::guide_files;
use crate::support::Ground;

/// One runnable code block.
#[derive(Debug)]
pub struct Example {
    pub file: PathBuf,
    /// The line of the opening fence.
    pub line: usize,
    pub exit: i32,
    pub body: String,
}

/// The runnable blocks of one Markdown text.
pub fn runnable(file: &Path, text: &str) -> Vec<Example> {
    let marker = Regex::new(r"^<!--\s*runnable(?::\s*exit\s+(\d+))?\s*-->$").unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut examples = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = marker.captures(line.trim()) else {
            continue;
        };
        let at = format!("{}:{}", file.display(), i + 1);
        assert_eq!(
            lines.get(i + 1).map(|l| l.trim()),
            Some("```sh"),
            "{at}: a runnable marker must stand right before a ```sh block"
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .copied()
            .collect();
        assert!(
            i + 2 + body.len() < lines.len(),
            "{at}: the runnable block is never closed"
        );
        examples.push(Example {
            file: file.to_path_buf(),
            line: i + 2,
            exit: c.get(1).map_or(0, |n| n.as_str().parse().unwrap()),
            body: body.join("\n") + "\n",
        });
    }
    examples
}

/// Every runnable block of the README and the guide.
pub fn all_runnable() -> Vec<Example> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    files.extend(guide_files());
    files
        .iter()
        .flat_map(|f| runnable(f, &std::fs::read_to_string(f).unwrap()))
        .collect()
}

/// The sample IDs the docs use, and what they stand for in the emulator: two member accounts
/// (the first inside the sample OU), an OU, the sandbox OU and the root.
pub fn samples(g: &Ground) -> Vec<(&'static str, String)> {
    vec![
        ("111111111111", g.account("deep-b")),
        ("222222222222", g.account("prod-a")),
        ("ou-ab12-cdef3456", g.ou("Workloads")),
        ("ou-ab12-sandbox1", g.ou("Sandbox")),
        ("r-ab12", g.root()),
    ]
}

/// Runs one example with `sh -e` in `dir`, cove and the AWS CLI on PATH, pointed at the ground.
fn run(g: &Ground, dir: &Path, example: &Example) -> (i32, String, String) {
    let mut body = example.body.clone();
    for (sample, real) in samples(g) {
        body = body.replace(sample, &real);
    }
    let out = g.shell("-ec", &body, dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn markers_are_found_with_their_exit_codes() {
    let text = "x\n<!-- runnable -->\n```sh\ncove -- true\n\necho ok\n```\n\
                ```sh\nnot marked\n```\n<!-- runnable: exit 1 -->\n```sh\nfalse\n```\n";
    let found = runnable(Path::new("t.md"), text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        (found[0].line, found[0].exit, found[0].body.as_str()),
        (3, 0, "cove -- true\n\necho ok\n")
    );
    assert_eq!((found[1].exit, found[1].body.as_str()), (1, "false\n"));
}

#[test]
fn every_runnable_example_of_the_readme_and_the_guide_runs_against_the_emulator() {
    let examples = all_runnable();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let in_readme = examples
        .iter()
        .filter(|e| e.file == root.join("README.md"))
        .map(|e| e.body.lines().filter(|l| l.starts_with("cove ")).count())
        .sum::<usize>();
    assert!(
        in_readme >= 6,
        "the README's six everyday recipes are marked runnable ({in_readme} cove commands found)"
    );
    assert!(
        examples
            .iter()
            .any(|e| e.file.parent() == Some(&root.join("docs"))),
        "the guide has runnable examples too"
    );
    let g = Ground::start(&[]);
    let mut failures = Vec::new();
    for example in &examples {
        let dir = tempfile::tempdir().unwrap();
        let (code, stdout, stderr) = run(&g, dir.path(), example);
        if code != example.exit || stderr.contains("cove: error") {
            failures.push(format!(
                "{}:{}: exited {code}, expected {}\n{}\n--- stdout\n{}\n--- stderr\n{}",
                example.file.display(),
                example.line,
                example.exit,
                example.body,
                stdout.chars().take(2000).collect::<String>(),
                stderr.chars().take(4000).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
