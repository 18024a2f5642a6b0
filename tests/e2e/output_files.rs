//! `--output-dir` is private and cannot be redirected: what cove creates is 0700/0600 whatever
//! the umask, a directory another user owns or can write is refused before any AWS call, and
//! a link planted where cove writes is never written through.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Ground, Run};

const PRECIOUS: &str = "precious, must not change\n";

/// Prints the target's account ID on stdout and a line on stderr.
const SCRIPT: &str = "echo out-$COVE_ACCOUNT_ID-$COVE_REGION; echo err >&2";

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_symlink()
}

fn set_mode(path: &Path, bits: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).unwrap();
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Creates `parts` under `dir`, one in the other, each 0700 whatever the test's umask.
fn private_dirs(dir: &Path, parts: &[&str]) {
    let mut path = dir.to_owned();
    for part in parts {
        path.push(part);
        std::fs::create_dir(&path).unwrap();
        set_mode(&path, 0o700);
    }
}

/// Every file and directory under `dir`, links not followed.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(path) = todo.pop() {
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
        found.push(path);
    }
    found.sort();
    found
}

/// A file whose content must survive the run.
fn precious(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, PRECIOUS).unwrap();
    path
}

fn assert_untouched(path: &Path) {
    assert!(!is_link(path), "{} is still a file", path.display());
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        PRECIOUS,
        "cove wrote through a link into {}",
        path.display()
    );
}

#[test]
fn links_planted_at_the_files_cove_writes_are_replaced_never_written_through() {
    let g = Ground::start(&[]);
    let a = g.account("sandbox-a");
    let b = g.account("sandbox-b");
    for format in ["json", "jsonl"] {
        let victims = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let out = out.path();
        let results = precious(victims.path(), "results");
        let stdout = precious(victims.path(), "stdout");
        let stderr = precious(victims.path(), "stderr");
        let probe = precious(victims.path(), "probe");
        let hard = precious(victims.path(), "hard");
        for id in [&a, &b] {
            private_dirs(out, &[id, "us-east-1"]);
        }
        symlink(&results, out.join("results.json")).unwrap();
        symlink(&stdout, out.join(&a).join("us-east-1/stdout")).unwrap();
        symlink(&stderr, out.join(&a).join("us-east-1/stderr")).unwrap();
        // The fixed name of the write probe of earlier versions.
        symlink(&probe, out.join(".cove-write-test")).unwrap();
        std::fs::hard_link(&hard, out.join(&b).join("us-east-1/stdout")).unwrap();

        let run = Run::of(g.cove().args(["-o", format, "-t", &g.ou("Sandbox")]).args([
            "--output-dir",
            out.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            SCRIPT,
        ]));
        run.expect_code(0);
        for victim in [&results, &stdout, &stderr, &probe, &hard] {
            assert_untouched(victim);
        }
        assert!(
            is_link(&out.join(".cove-write-test")),
            "not cove's to remove"
        );

        // Nothing is lost: each file holds what it would have held without the links.
        for id in [&a, &b] {
            let target = out.join(id).join("us-east-1");
            for (name, expected) in [
                ("stdout", format!("out-{id}-us-east-1\n")),
                ("stderr", "err\n".to_owned()),
            ] {
                let path = target.join(name);
                assert!(!is_link(&path), "{format}: {} is a file", path.display());
                assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
        }
        let saved_path = out.join("results.json");
        assert!(!is_link(&saved_path), "{format}: results.json is a file");
        assert_eq!(mode(&saved_path), 0o600);
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(&saved_path).unwrap()).unwrap();
        assert_eq!(saved["Results"].as_array().unwrap().len(), 2, "{format}");
        if format == "json" {
            assert_eq!(saved, run.doc());
        }
        // The links are not replaced silently.
        assert!(
            run.stderr.contains(&format!(
                "`{}` was a symbolic link; cove replaced the link with the file",
                saved_path.display()
            )),
            "{format}: {}",
            run.stderr
        );
        for name in ["stdout", "stderr"] {
            assert!(
                run.stderr.contains(&format!(
                    "{a} us-east-1: `{a}/us-east-1/{name}` in --output-dir was a symbolic link"
                )),
                "{format}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn a_target_directory_that_is_a_link_fails_that_targets_files_and_loses_no_record() {
    let g = Ground::start(&[]);
    let a = g.account("sandbox-a");
    let b = g.account("sandbox-b");
    let elsewhere = tempfile::tempdir().unwrap();
    let account_victim = elsewhere.path().join("account");
    let region_victim = elsewhere.path().join("region");
    std::fs::create_dir(&account_victim).unwrap();
    std::fs::create_dir(&region_victim).unwrap();
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    // `<id>` a link, and `<id>/<region>` a link.
    symlink(&account_victim, out.join(&a)).unwrap();
    private_dirs(out, &[&b]);
    symlink(&region_victim, out.join(&b).join("us-east-1")).unwrap();

    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--region",
        "us-east-1,eu-west-1",
        "--output-dir",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        SCRIPT,
    ]));
    run.expect_code(0);
    assert!(
        walk(elsewhere.path()).len() == 3,
        "nothing written through a link: {:?}",
        walk(elsewhere.path())
    );
    // Every target is reported, on stdout and in results.json, the blocked ones with a note.
    assert_eq!(run.list("Results").len(), 4);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(saved, run.doc());
    for (id, region, link) in [
        (&a, "us-east-1", a.clone()),
        (&a, "eu-west-1", a.clone()),
        (&b, "us-east-1", format!("{b}/us-east-1")),
    ] {
        let record = run
            .list("Results")
            .into_iter()
            .find(|r| r["Id"] == id.as_str() && r["Region"] == region)
            .unwrap();
        let details = record["ExceptionDetails"].as_str().unwrap_or_default();
        assert!(
            details.contains("could not write its --output-dir files")
                && details.contains(&format!("`{link}` is a symbolic link")),
            "{record}"
        );
        assert!(
            run.stderr
                .contains(&format!("cove: warning: {id} {region}: could not write")),
            "{}",
            run.stderr
        );
    }
    let written = out.join(&b).join("eu-west-1/stdout");
    assert_eq!(
        std::fs::read_to_string(written).unwrap(),
        format!("out-{b}-eu-west-1\n"),
        "the other targets' files are written"
    );
    assert!(is_link(&out.join(&a)), "the links are left as they were");
}

/// cove under `umask`, through a shell that sets it and then becomes cove.
fn cove_under_umask(g: &Ground, umask: &str, args: &[&str]) -> Run {
    let cove = g.cove();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_cove"))
        .args(args)
        .env_clear()
        .envs(
            cove.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        );
    Run::of(&mut cmd)
}

#[test]
fn everything_cove_creates_is_private_whatever_the_umask() {
    let g = Ground::start(&[]);
    let a = g.account("sandbox-a");
    for (umask, format) in [("000", "json"), ("277", "jsonl")] {
        let base = tempfile::tempdir().unwrap();
        // Two parents that do not exist yet.
        let out = base.path().join("new/deeper/out");
        // A file from an earlier run, readable by everyone: rewritten private.
        let earlier = base.path().join(format!("earlier-{umask}"));
        std::fs::create_dir(&earlier).unwrap();
        set_mode(&earlier, 0o755);
        private_dirs(&earlier, &[&a, "us-east-1"]);
        let old = earlier.join(&a).join("us-east-1");
        set_mode(&old, 0o755);
        std::fs::write(old.join("stdout"), "old").unwrap();
        set_mode(&old.join("stdout"), 0o644);
        for dir in [&out, &earlier] {
            let run = cove_under_umask(
                &g,
                umask,
                &[
                    "-o",
                    format,
                    "-t",
                    &g.ou("Sandbox"),
                    "--region",
                    "us-east-1,eu-west-1",
                    "--output-dir",
                    dir.to_str().unwrap(),
                    "--",
                    "sh",
                    "-c",
                    SCRIPT,
                ],
            );
            run.expect_code(0);
        }
        for dir in ["new", "new/deeper", "new/deeper/out"] {
            assert_eq!(mode(&base.path().join(dir)), 0o700, "umask {umask}: {dir}");
        }
        let mut seen = Vec::new();
        // The directories of the earlier run were not cove's to create: only its files count.
        let rewritten = walk(&earlier).into_iter().filter(|p| !p.is_dir());
        for path in walk(&out).into_iter().chain(rewritten) {
            let rel = path
                .strip_prefix(base.path())
                .unwrap()
                .display()
                .to_string();
            let expected = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(
                mode(&path),
                expected,
                "umask {umask}: {rel} is {:04o}",
                mode(&path)
            );
            seen.push(rel);
        }
        let names: Vec<String> = walk(&out)
            .iter()
            .skip(1)
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "umask {umask}: no temporary or probe file is left: {names:?}"
        );
        // results.json, 2 account dirs, 4 target dirs, 8 files, and the directory itself.
        assert_eq!(walk(&out).len(), 16, "umask {umask}: {seen:?}");
        assert_eq!(
            std::fs::read_to_string(old.join("stdout")).unwrap(),
            format!("out-{a}-us-east-1\n")
        );
    }
}

#[test]
fn an_output_dir_another_user_could_write_or_swap_is_refused_before_any_aws_call() {
    let g = Ground::start(&[]);
    let base = tempfile::tempdir().unwrap();
    let me = nix::unistd::geteuid().as_raw();
    // (the directory given, what the message must say)
    let mut cases: Vec<(PathBuf, String)> = Vec::new();
    for bits in [0o770, 0o777, 0o1777, 0o702] {
        let dir = base.path().join(format!("mode-{bits:o}"));
        std::fs::create_dir(&dir).unwrap();
        set_mode(&dir, bits);
        let who = match bits & 0o022 {
            0o020 => "its group",
            0o002 => "every user",
            _ => "its group and every user",
        };
        cases.push((dir, format!("can be written by {who} (mode {bits:04o})")));
    }
    if is_root() {
        let theirs = base.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        set_mode(&theirs, 0o700);
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        cases.push((
            theirs,
            format!("is owned by user 65534, not by you (user {me})"),
        ));
        // A link another user planted, to a directory of the caller's own.
        let mine = base.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        set_mode(&mine, 0o700);
        let planted = base.path().join("planted");
        symlink(&mine, &planted).unwrap();
        std::os::unix::fs::lchown(&planted, Some(65534), Some(65534)).unwrap();
        cases.push((
            planted,
            "is a symbolic link owned by user 65534: cove follows a link there only when you"
                .to_owned(),
        ));
    } else {
        // Not root: a directory root owns stands for another user's.
        cases.push((
            "/".into(),
            format!("is owned by user 0, not by you (user {me})"),
        ));
        eprintln!("not root: the planted link of another user is not tried");
    }
    for (dir, expected) in &cases {
        let before = walk(dir);
        let run = Run::of(g.cove().args([
            "-t",
            &g.ou("Sandbox"),
            "--output-dir",
            dir.to_str().unwrap(),
            "--",
            "true",
        ]));
        assert_eq!(run.code, 2, "{}: {}", dir.display(), run.stderr);
        assert!(
            run.stderr
                .contains(&format!("--output-dir `{}`", dir.display()))
                && run.stderr.contains(expected)
                && run.stderr.contains("expected"),
            "{expected}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
        if dir != Path::new("/") {
            assert_eq!(walk(dir), before, "nothing written in {}", dir.display());
        }
    }
    assert_eq!(
        g.all_calls(),
        serde_json::json!({}),
        "refused before any AWS call"
    );

    // A link of the caller's own to the caller's own directory is fine.
    let mine = base.path().join("own-target");
    std::fs::create_dir(&mine).unwrap();
    set_mode(&mine, 0o700);
    let link = base.path().join("own-link");
    symlink(&mine, &link).unwrap();
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--output-dir",
        link.to_str().unwrap(),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert!(mine.join("results.json").exists());
}
