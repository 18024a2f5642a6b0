//! `--output-dir`: the directory that holds every command's output, kept to its owner.
//!
//! - What cove creates is private whatever the umask: directories 0700, files 0600.
//! - An existing directory that another user owns, or that its group or everyone can write, is
//!   refused before the first AWS call. A symbolic link given as the directory is followed only
//!   when the caller or root owns the link. The parents of the directory are not judged (a
//!   group's shared folder is a normal place for output); once checked, the directory is opened,
//!   and everything is written through that handle, so renaming a parent later redirects
//!   nothing.
//! - Nothing is ever written through a link. Each file is written to a fresh, randomly named
//!   temporary file (`O_CREAT | O_EXCL | O_NOFOLLOW`) and renamed over its name, so a symbolic
//!   or hard link planted at `results.json` or a target's `stdout` is replaced and its target
//!   left alone. A per-target directory (`<id>`, `<id>/<region>`) that is a link, not a
//!   directory, or open to other users fails that target's files with an error saying so.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, geteuid, unlinkat};

/// The mode of every directory cove creates.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file cove creates.
pub const FILE_MODE: u32 = 0o600;

/// The write bits of the group and of everyone else.
const OTHERS_WRITE: u32 = 0o022;

/// How a directory is opened: read-only, as a directory, not inherited by children.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Creates `--output-dir` if missing, checks it, and proves cove can write in it with a
/// randomly named file that is removed at once. Runs before the first AWS call.
pub fn prepare(path: &Path) -> anyhow::Result<()> {
    let dir = OutputDir::create(path)?;
    dir.probe()
        .with_context(|| format!("cannot write in --output-dir `{}`", path.display()))
}

/// The checked, open output directory. Every write goes through its handle.
#[derive(Debug)]
pub struct OutputDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl OutputDir {
    /// Creates the missing parts of `path` (0700 each, whatever the umask), then opens and
    /// checks it as [`OutputDir::open`] does.
    pub fn create(path: &Path) -> anyhow::Result<OutputDir> {
        let path = &normalized(path);
        let shown = path.display();
        if path.as_os_str().is_empty() {
            bail!("--output-dir is empty: expected the path of a directory");
        }
        // The longest part of the path that exists (a link counts: it is judged, not replaced).
        let existing = path
            .ancestors()
            .find(|a| a.as_os_str().is_empty() || std::fs::symlink_metadata(a).is_ok())
            .unwrap_or(Path::new(""));
        if existing == path {
            return OutputDir::open(path);
        }
        let start = if existing.as_os_str().is_empty() {
            Path::new(".")
        } else {
            existing
        };
        let cannot = || format!("cannot create --output-dir `{shown}`");
        let mut fd = nix::fcntl::open(start, dir_flags(), Mode::empty())
            .map_err(io::Error::from)
            .with_context(|| format!("{}: cannot open `{}`", cannot(), start.display()))?;
        let rest = path.strip_prefix(existing).unwrap_or(path);
        for part in rest.components() {
            fd = match part {
                Component::Normal(name) => open_or_make_dir(&fd, name)
                    .map(|(fd, _)| fd)
                    .map_err(|e| explain(&fd, name, &name.to_string_lossy(), e))
                    .with_context(cannot)?,
                Component::ParentDir => openat(&fd, "..", dir_flags(), Mode::empty())
                    .map_err(io::Error::from)
                    .with_context(cannot)?,
                Component::CurDir => continue,
                Component::RootDir | Component::Prefix(_) => bail!("{}", cannot()),
            };
        }
        let dir = OutputDir {
            fd,
            path: path.to_owned(),
        };
        dir.check()?;
        Ok(dir)
    }

    /// Opens an existing output directory and checks it: the caller owns it and no one else
    /// can write it. A link as its last part is followed only when the caller or root owns
    /// the link.
    pub fn open(path: &Path) -> anyhow::Result<OutputDir> {
        let path = &normalized(path);
        let shown = path.display();
        let cannot = || format!("cannot open --output-dir `{shown}`");
        let entry = std::fs::symlink_metadata(path).with_context(cannot)?;
        let mut flags = dir_flags();
        if entry.file_type().is_symlink() {
            let (owner, me) = (entry.uid(), geteuid().as_raw());
            if owner != me && owner != 0 {
                bail!(
                    "--output-dir `{shown}` is a symbolic link owned by user {owner}: cove follows a link there only when you (user {me}) or root own it; expected your own directory, or a link of your own to it"
                );
            }
        } else {
            flags |= OFlag::O_NOFOLLOW;
        }
        let fd = match nix::fcntl::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOTDIR) => bail!("--output-dir `{shown}` is not a directory"),
            // It was no link when looked at: it was swapped since.
            Err(Errno::ELOOP) => {
                bail!("--output-dir `{shown}` changed into a symbolic link while cove checked it")
            }
            Err(err) => return Err(io::Error::from(err)).with_context(cannot),
        };
        let dir = OutputDir {
            fd,
            path: path.to_owned(),
        };
        dir.check()?;
        Ok(dir)
    }

    /// The path it was given as.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory cove opened is the caller's own and no one else can write it.
    fn check(&self) -> anyhow::Result<()> {
        let stat = fstat(&self.fd)
            .map_err(io::Error::from)
            .with_context(|| format!("cannot open --output-dir `{}`", self.path.display()))?;
        judge(&stat).map_err(|problem| {
            anyhow::anyhow!(
                "--output-dir `{}` {problem}: other users could read or replace what cove writes there; expected a directory of your own that only you can write (for example mode 0700: chmod 700 DIR)",
                self.path.display()
            )
        })
    }

    /// Proves a file can be created here: a randomly named one, removed at once.
    pub fn probe(&self) -> io::Result<()> {
        let (name, file) = temp_file(&self.fd, OFlag::O_WRONLY)?;
        drop(file);
        unlinkat(&self.fd, name.as_str(), UnlinkatFlags::NoRemoveDir).map_err(io::Error::from)
    }

    /// A private file in the directory with no name: it vanishes when closed, however cove
    /// ends.
    pub fn unlinked_file(&self) -> io::Result<File> {
        let (name, file) = temp_file(&self.fd, OFlag::O_RDWR)?;
        unlinkat(&self.fd, name.as_str(), UnlinkatFlags::NoRemoveDir)?;
        Ok(file)
    }

    /// Writes the file `name` of the directory itself (such as `results.json`) from `write`,
    /// replacing what stood there. Returns whether that was a symbolic link (replaced, never
    /// followed).
    pub fn replace(
        &self,
        name: &str,
        write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> io::Result<bool> {
        plain_name(name)?;
        replace_in(&self.fd, name, write)
    }

    /// Writes `files` (name, bytes) into `<account>/<region>/`, creating both directories
    /// (0700) when missing. Returns the paths, relative to the output directory, of the files
    /// that were symbolic links and have been replaced.
    pub fn write_target(
        &self,
        account: &str,
        region: &str,
        files: &[(&str, &[u8])],
    ) -> io::Result<Vec<String>> {
        let account_dir = subdir(&self.fd, account, account)?;
        let place = format!("{account}/{region}");
        let target = subdir(&account_dir, region, &place)?;
        let mut replaced = Vec::new();
        for (name, bytes) in files {
            plain_name(name)?;
            let was_link = replace_in(&target, name, |file| file.write_all(bytes))
                .map_err(|e| io::Error::new(e.kind(), format!("`{place}/{name}`: {e}")))?;
            if was_link {
                replaced.push(format!("{place}/{name}"));
            }
        }
        Ok(replaced)
    }
}

/// `path` without a trailing `/` or `/.`, which would make the system follow a link as its
/// last part before cove could look at the link itself.
fn normalized(path: &Path) -> PathBuf {
    path.components().collect()
}

/// What is wrong with a directory cove would write in, if anything: another user owns it, or
/// its group or everyone can write it.
fn judge(stat: &FileStat) -> Result<(), String> {
    let me = geteuid().as_raw();
    if stat.st_uid != me {
        return Err(format!(
            "is owned by user {}, not by you (user {me})",
            stat.st_uid
        ));
    }
    // `mode_t` is u32 on Linux but u16 on macOS.
    #[allow(clippy::useless_conversion)]
    let mode = u32::from(stat.st_mode) & 0o7777;
    let who = match mode & OTHERS_WRITE {
        0 => return Ok(()),
        0o020 => "its group",
        0o002 => "every user",
        _ => "its group and every user",
    };
    Err(format!("can be written by {who} (mode {mode:04o})"))
}

/// A name that stays inside its directory: one plain path component.
fn plain_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing the path part {name:?}"),
        ));
    }
    Ok(())
}

/// Opens the directory `name` in `parent` without following a link, creating it (0700,
/// exactly) when missing. Says whether it was created.
fn open_or_make_dir<P: ?Sized + nix::NixPath>(
    parent: &OwnedFd,
    name: &P,
) -> nix::Result<(OwnedFd, bool)> {
    let flags = dir_flags() | OFlag::O_NOFOLLOW;
    match openat(parent, name, flags, Mode::empty()) {
        Err(Errno::ENOENT) => {}
        opened => return opened.map(|fd| (fd, false)),
    }
    let created = match mkdirat(parent, name, Mode::from_bits_truncate(DIR_MODE as _)) {
        Ok(()) => true,
        // Made by someone else in between: opened and judged like any existing one.
        Err(Errno::EEXIST) => false,
        Err(err) => return Err(err),
    };
    let fd = openat(parent, name, flags, Mode::empty())?;
    if created {
        // The umask may have taken bits off; the mode is exact.
        fchmod(&fd, Mode::from_bits_truncate(DIR_MODE as _))?;
    }
    Ok((fd, created))
}

/// A per-target directory: created private, or an existing one that is a real directory
/// (never a link) of the caller's that no one else can write.
fn subdir(parent: &OwnedFd, name: &str, place: &str) -> io::Result<OwnedFd> {
    plain_name(name)?;
    let (fd, created) =
        open_or_make_dir(parent, name).map_err(|e| explain(parent, name, place, e))?;
    if !created {
        let stat = fstat(&fd)?;
        judge(&stat).map_err(|problem| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "`{place}` {problem}; expected a directory only you can write, so cove does not write in it"
                ),
            )
        })?;
    }
    Ok(fd)
}

/// Why `name` in `parent` could not be opened as a directory, in words: a link and a file
/// are named as such (systems differ in the error they give for them).
fn explain<P: ?Sized + nix::NixPath>(
    parent: &OwnedFd,
    name: &P,
    place: &str,
    err: Errno,
) -> io::Error {
    let kind = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .ok()
        .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT);
    let problem = match kind {
        Some(SFlag::S_IFLNK) => {
            "is a symbolic link, and cove never writes through links in --output-dir".to_owned()
        }
        Some(kind) if kind != SFlag::S_IFDIR => "is not a directory".to_owned(),
        _ => io::Error::from(err).to_string(),
    };
    io::Error::new(io::ErrorKind::InvalidInput, format!("`{place}` {problem}"))
}

/// A private file (0600) with no name in the directory `path` (the system's temporary
/// directory, for the json document's spool when there is no output directory): created with a
/// fresh random name (`O_CREAT | O_EXCL | O_NOFOLLOW`) and unlinked at once, so it vanishes when
/// closed, however cove ends.
pub fn unlinked_file_in(path: &Path) -> io::Result<File> {
    let fd = nix::fcntl::open(path, dir_flags(), Mode::empty())?;
    let (name, file) = temp_file(&fd, OFlag::O_RDWR)?;
    unlinkat(&fd, name.as_str(), UnlinkatFlags::NoRemoveDir)?;
    Ok(file)
}

/// Creates a new, randomly named file (0600, exactly) in `dir`, never through a link and
/// never one that already exists.
fn temp_file(dir: &OwnedFd, access: OFlag) -> io::Result<(String, File)> {
    let flags = access | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut tries = 0;
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(io::Error::other)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!(".cove-{hex}.tmp");
        match openat(
            dir,
            name.as_str(),
            flags,
            Mode::from_bits_truncate(FILE_MODE as _),
        ) {
            Ok(fd) => {
                fchmod(&fd, Mode::from_bits_truncate(FILE_MODE as _))?;
                return Ok((name, File::from(fd)));
            }
            Err(Errno::EEXIST) if tries < 8 => tries += 1,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Writes a temporary file in `dir` and renames it to `name`: whatever stood at `name` (a
/// link, a hard link to another file) is replaced, never written through. Returns whether a
/// symbolic link stood there.
fn replace_in(
    dir: &OwnedFd,
    name: &str,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<bool> {
    let (temp, file) = temp_file(dir, OFlag::O_WRONLY)?;
    let mut file = BufWriter::new(file);
    let written = write(&mut file).and_then(|()| file.flush());
    drop(file);
    let renamed = written.and_then(|()| {
        let was_link = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK);
        renameat(dir, temp.as_str(), dir, name)?;
        Ok(was_link)
    });
    if renamed.is_err() {
        let _ = unlinkat(dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn what_cove_creates_is_private_and_the_probe_leaves_nothing() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("a/b/out");
        prepare(&path).unwrap();
        for dir in ["a", "a/b", "a/b/out"] {
            assert_eq!(mode(&base.path().join(dir)), DIR_MODE, "{dir}");
        }
        assert!(entries(&path).is_empty(), "the probe is removed");
        let dir = OutputDir::open(&path).unwrap();
        dir.write_target(
            "111111111111",
            "us-east-1",
            &[("stdout", b"o"), ("stderr", b"e")],
        )
        .unwrap();
        dir.replace("results.json", |f| f.write_all(b"{}")).unwrap();
        let target = path.join("111111111111/us-east-1");
        assert_eq!(mode(&path.join("111111111111")), DIR_MODE);
        assert_eq!(mode(&target), DIR_MODE);
        assert_eq!(mode(&target.join("stdout")), FILE_MODE);
        assert_eq!(mode(&path.join("results.json")), FILE_MODE);
        assert_eq!(std::fs::read(target.join("stderr")).unwrap(), b"e");
        assert_eq!(entries(&path), ["111111111111", "results.json"]);
        assert_eq!(
            entries(&target),
            ["stderr", "stdout"],
            "no temporary file left"
        );
    }

    #[test]
    fn a_directory_others_can_write_is_refused_and_names_itself() {
        let base = tempfile::tempdir().unwrap();
        for bits in [0o770, 0o777, 0o702] {
            std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(bits)).unwrap();
            let err = format!("{:#}", prepare(base.path()).unwrap_err());
            assert!(err.contains(&base.path().display().to_string()), "{err}");
            assert!(err.contains(&format!("mode {bits:04o}")), "{err}");
            assert!(err.contains("expected a directory of your own"), "{err}");
        }
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(base.path()).expect("readable by others is allowed");
    }

    #[test]
    fn a_link_or_a_file_where_a_target_directory_goes_fails_that_target() {
        let base = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let dir = OutputDir::create(&base.path().join("out")).unwrap();
        let out = dir.path().to_owned();
        symlink(elsewhere.path(), out.join("111111111111")).unwrap();
        std::fs::create_dir(out.join("222222222222")).unwrap();
        symlink(elsewhere.path(), out.join("222222222222/us-east-1")).unwrap();
        std::fs::write(out.join("333333333333"), "a file").unwrap();
        for (account, expected) in [
            ("111111111111", "`111111111111` is a symbolic link"),
            (
                "222222222222",
                "`222222222222/us-east-1` is a symbolic link",
            ),
            ("333333333333", "`333333333333` is not a directory"),
        ] {
            let err = dir
                .write_target(account, "us-east-1", &[("stdout", b"x")])
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
        assert!(
            entries(elsewhere.path()).is_empty(),
            "nothing written through a link"
        );
    }

    #[test]
    fn a_trailing_slash_does_not_get_a_link_of_another_user_past_the_check() {
        if !geteuid().is_root() {
            eprintln!("not root: cannot plant a link of another user");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let mine = base.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        let planted = base.path().join("planted");
        symlink(&mine, &planted).unwrap();
        std::os::unix::fs::lchown(&planted, Some(65534), Some(65534)).unwrap();
        for given in ["planted", "planted/", "planted/.", "planted//"] {
            let err = format!("{:#}", prepare(&base.path().join(given)).unwrap_err());
            assert!(
                err.contains("is a symbolic link owned by user 65534"),
                "{given}: {err}"
            );
        }
        assert!(entries(&mine).is_empty());
    }

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = OutputDir::open(base.path()).unwrap();
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(
                dir.write_target(bad, "r", &[("stdout", b"")]).is_err(),
                "{bad:?}"
            );
            assert!(
                dir.write_target("1", bad, &[("stdout", b"")]).is_err(),
                "{bad:?}"
            );
            assert!(dir.replace(bad, |_| Ok(())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_spool_file_has_no_name_and_is_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = OutputDir::open(base.path()).unwrap();
        let file = dir.unlinked_file().unwrap();
        assert!(entries(base.path()).is_empty());
        assert_eq!(
            file.metadata().unwrap().permissions().mode() & 0o7777,
            FILE_MODE
        );
    }
}
