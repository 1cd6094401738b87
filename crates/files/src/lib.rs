//! Files as gradless reads and writes them, so that hostile or odd paths do no harm.
//!
//! - **Inputs** are regular files read up to a stated bound: a FIFO or `/dev/zero` handed
//!   over as a checkpoint, config or replay file would otherwise never end.
//! - **Outputs** replace a path atomically (a synced temporary beside it, then a rename) only
//!   when the path is a regular file or nothing: a device node, FIFO or link found there is
//!   refused, never replaced (renaming over `/dev/null` replaces the device) and never written
//!   through (a link would send the output outside the path given).
//! - **Folders inside inputs** (a checkpoint's `eval/`) are created or accepted only as real
//!   directories, never links.
//! - **Run directories** are locked by the process that writes them, with an OS lock that dies
//!   with the process.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a file type is called in messages.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// `file` if it is a regular file, else what it is.
fn regular(file: File) -> io::Result<File> {
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(refused(format!(
            "is {}, not a regular file",
            kind_of(file_type)
        )));
    }
    Ok(file)
}

/// Opens `path` for reading if it is a regular file (links to one are followed). The open
/// does not block on a FIFO, and the type is checked on the opened file, so nothing can be
/// swapped in between.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    regular(file)
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let size = file.metadata()?.len();
    if size > limit {
        return Err(too_large(size, limit));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // The file may grow after the check: read one byte past the bound to notice.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// Reads a regular UTF-8 text file of at most `limit` bytes.
pub fn read_text_bounded(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

fn too_large(size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("is {size} bytes, more than the {limit} this file may hold"),
    )
}

/// Checks that `path` may be replaced: it is a regular file or does not exist.
pub fn check_replaceable(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_file() => Ok(()),
        Ok(metadata) => Err(refused(format!(
            "is {}; only a regular file (or a new path) is replaced",
            kind_of(metadata.file_type())
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A new temporary file beside `path`, created exclusively (never an existing file or link),
/// named so that it keeps `path`'s extension (some writers choose the format by it).
fn create_temporary(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .ok_or_else(|| refused("is not a file path".into()))?
        .to_string_lossy()
        .into_owned();
    remove_dead_temporaries(path, &name);
    first_free_name(
        |attempt| path.with_file_name(format!(".tmp-{}-{attempt}-{name}", std::process::id())),
        |temporary| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(temporary)
        },
    )
}

/// Creates something new at the first of the names `name(0)`, `name(1)`, ... that is free
/// (`create` fails with `AlreadyExists` where one is taken), trying 100 names at most.
fn first_free_name<T>(
    name: impl Fn(u32) -> PathBuf,
    create: impl Fn(&Path) -> io::Result<T>,
) -> io::Result<(PathBuf, T)> {
    let mut attempt = 0u32;
    loop {
        let path = name(attempt);
        match create(&path) {
            Ok(made) => return Ok((path, made)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// A new folder in the temporary directory that only this user can enter (mode 0700),
/// named after `stem` and this process; the caller removes it.
pub fn create_private_dir(stem: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    first_free_name(
        |attempt| std::env::temp_dir().join(format!("{stem}-{}-{attempt}", std::process::id())),
        |path| std::fs::DirBuilder::new().mode(0o700).create(path),
    )
    .map(|(path, ())| path)
}

/// A [`create_private_dir`] folder, removed with everything in it when dropped (on every
/// path out of the code that made it).
#[derive(Debug)]
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// A new private folder named after `stem`.
    pub fn create(stem: &str) -> io::Result<Self> {
        create_private_dir(stem).map(Self)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the temporaries of `path` (`.tmp-PID-N-NAME` beside it) that processes which have
/// since died left behind (killed between writing one and renaming it); a live process's
/// are its own business.
fn remove_dead_temporaries(path: &Path, name: &str) {
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent,
        None => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(".tmp-"))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, rest)| {
                rest.split_once('-').is_some_and(|(attempt, rest)| {
                    rest == name && attempt.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .map(|(pid, _)| pid)
        else {
            continue;
        };
        if process_is_gone(pid) && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` through a synced temporary file beside it and a rename, so a
/// crash leaves either the old file or the new one; the temporary is removed on failure.
/// Refuses a path that holds anything but a regular file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    check_replaceable(path)?;
    let (temporary, mut file) = create_temporary(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    match written {
        Ok(()) => replace_with(&temporary, path),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(e)
        }
    }
}

/// Moves a finished `staging` file (from [`create_staging`]) over `path`, under the same rule
/// as [`write_atomically`]; `staging` is removed on failure.
pub fn replace_with(staging: &Path, path: &Path) -> io::Result<()> {
    let result = check_replaceable(path).and_then(|()| std::fs::rename(staging, path));
    if result.is_err() {
        let _ = std::fs::remove_file(staging);
    }
    result
}

/// A new, empty staging file beside `path` for a writer that opens paths itself (a plotting
/// backend), which [`replace_with`] then moves into place; it keeps `path`'s extension.
pub fn create_staging(path: &Path) -> io::Result<PathBuf> {
    create_temporary(path).map(|(staging, _)| staging)
}

/// Makes sure `base/relative` is a directory, creating what is missing, where every folder
/// from `base` down is a real directory: a link found there (inside an input, such as a
/// checkpoint's `eval`) is refused, never followed. `base` itself is the caller's and is
/// created as given.
pub fn create_dir_inside(base: &Path, relative: &Path) -> io::Result<PathBuf> {
    if let Ok(metadata) = std::fs::metadata(base)
        && !metadata.is_dir()
    {
        return Err(refused(format!(
            "is {}; outputs go only into directories",
            kind_of(metadata.file_type())
        )));
    }
    std::fs::create_dir_all(base)?;
    let mut current = base.to_path_buf();
    let mut inside = PathBuf::new();
    for component in relative.components() {
        let std::path::Component::Normal(name) = component else {
            return Err(refused(format!(
                "`{}` leaves the folder it must stay inside",
                relative.display()
            )));
        };
        current.push(name);
        inside.push(name);
        match std::fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_dir() => {}
            Ok(metadata) => {
                return Err(refused(format!(
                    "`{}` is {}; outputs go only into real directories",
                    inside.display(),
                    kind_of(metadata.file_type())
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&current)?,
            Err(e) => return Err(e),
        }
    }
    Ok(current)
}

/// Checks that files can be created in `dir` (by creating and removing one), so that a
/// long computation does not find out only at its end that its output cannot be written.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    let (probe, file) = create_temporary(&dir.join("write-probe"))?;
    drop(file);
    std::fs::remove_file(probe)
}

/// Opens `path` for appending without following a link there (and creates it if missing);
/// anything but a regular file is refused.
pub fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refused("is a symbolic link; outputs are never written through links".into())
            } else {
                e
            }
        })?;
    regular(file)
}

/// Files that become visible together or not at all (an evaluation's episodes and its
/// summary): written into a hidden staging folder beside their folder, which one rename then
/// swaps in. Whatever else the folder held (other outputs, a user's files) is carried over
/// into the new one; only the set's own files of the old one are removed. Dropped before
/// [`commit`](Self::commit), the staging folder is removed. A staging folder of a process
/// that died is cleaned up by the next set: its carried files are put back.
#[derive(Debug)]
pub struct OutputSet {
    dir: PathBuf,
    staging: PathBuf,
    names: Vec<String>,
    committed: bool,
}

/// The hidden staging folders beside `dir` start with this, then the process id.
fn staging_prefix(dir: &Path) -> io::Result<String> {
    let name = dir
        .file_name()
        .ok_or_else(|| refused("is not a folder path".into()))?
        .to_string_lossy()
        .into_owned();
    Ok(format!(".{name}.staging-"))
}

impl OutputSet {
    /// Starts a set for `dir`, whose parent must exist, of the files `names` (no others
    /// are written); `dir` itself, where it exists, must be a real directory.
    pub fn begin(dir: &Path, names: &[&str]) -> io::Result<Self> {
        if let Ok(metadata) = std::fs::symlink_metadata(dir)
            && !metadata.file_type().is_dir()
        {
            return Err(refused(format!(
                "is {}; outputs go only into real directories",
                kind_of(metadata.file_type())
            )));
        }
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        recover_dead_staging(dir, &names)?;
        let staging = dir.with_file_name(format!("{}{}", staging_prefix(dir)?, std::process::id()));
        if std::fs::symlink_metadata(&staging).is_ok() {
            // This process's own, left by a set whose removal failed: start it afresh.
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir(&staging)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            staging,
            names,
            committed: false,
        })
    }

    /// Writes one file of the set (synced, so the swap never shows an empty file).
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        if !self.names.iter().any(|n| n == name) {
            return Err(refused(format!(
                "`{name}` is not a file of this output set"
            )));
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.staging.join(name))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Makes the set visible in one rename and carries the folder's other entries over.
    pub fn commit(mut self) -> io::Result<()> {
        if std::fs::symlink_metadata(&self.dir).is_err() {
            std::fs::rename(&self.staging, &self.dir)?;
            self.committed = true;
            return Ok(());
        }
        let exchanged = rustix::fs::renameat_with(
            rustix::fs::CWD,
            &self.staging,
            rustix::fs::CWD,
            &self.dir,
            rustix::fs::RenameFlags::EXCHANGE,
        );
        if exchanged.is_err() {
            // A file system without the exchange: the old folder steps aside first, so the
            // folder is briefly missing but never mixed.
            let mut aside = self.staging.clone().into_os_string();
            aside.push(".old");
            let aside = PathBuf::from(aside);
            std::fs::rename(&self.dir, &aside)?;
            if let Err(e) = std::fs::rename(&self.staging, &self.dir) {
                let _ = std::fs::rename(&aside, &self.dir);
                return Err(e);
            }
            std::fs::rename(&aside, &self.staging)?;
        }
        self.committed = true;
        // The old folder now lies at the staging path.
        carry_over(&self.staging, &self.dir, &self.names)
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Moves the entries of an old folder `old` that the new set `names` does not replace into
/// `dir`, then removes what is left (the set's old files) and `old` itself. An entry whose
/// name `dir` already has stays in `old`, which then stays too.
fn carry_over(old: &Path, dir: &Path, names: &[String]) -> io::Result<()> {
    let mut kept = false;
    for entry in std::fs::read_dir(old)? {
        let entry = entry?;
        let name = entry.file_name();
        let replaced = names.iter().any(|n| std::ffi::OsStr::new(n) == name);
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if replaced && is_file {
            std::fs::remove_file(entry.path())?;
        } else if std::fs::symlink_metadata(dir.join(&name)).is_err() {
            std::fs::rename(entry.path(), dir.join(&name))?;
        } else {
            kept = true;
        }
    }
    if kept {
        // Left in place, never removed: it holds what `dir` had a newer file for.
        Ok(())
    } else {
        std::fs::remove_dir(old)
    }
}

/// Whether the process `pid` (decimal) has ended: it is not this one and the system has no
/// process of that id.
fn process_is_gone(pid: &str) -> bool {
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && pid != std::process::id().to_string()
        && !Path::new("/proc").join(pid).exists()
}

/// Staging folders of processes that died while writing a set for `dir`: the set's files
/// there were never shown or were superseded, and go; anything else (what was being carried
/// over) goes back into `dir`.
fn recover_dead_staging(dir: &Path, names: &[String]) -> io::Result<()> {
    let prefix = staging_prefix(dir)?;
    let parent = match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent,
        None => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `.NAME.staging-PID`, or `.NAME.staging-PID.old` (the fallback's old folder).
        let pid = name
            .strip_prefix(&prefix)
            .map(|rest| rest.split('.').next().unwrap_or_default());
        let dead = pid.is_some_and(process_is_gone);
        if dead && entry.file_type().is_ok_and(|t| t.is_dir()) {
            if std::fs::symlink_metadata(dir).is_err() {
                std::fs::create_dir(dir)?;
            }
            carry_over(&entry.path(), dir, names)?;
        }
    }
    Ok(())
}

/// `bytes` in a file that has no name on disk, for a reader that takes only a path: the
/// file is created private (mode 0600) in the temporary directory and unlinked at once, so
/// nothing is left behind on any path out, a kill included, and no other user can read it.
/// The returned path (`/proc/self/fd/N`) opens it for as long as the returned file lives.
pub fn unnamed_file(bytes: &[u8]) -> io::Result<(File, PathBuf)> {
    use std::os::fd::AsRawFd;
    let (path, mut file) = first_free_name(
        |attempt| {
            std::env::temp_dir().join(format!(
                ".gradless-{}-{attempt}.unnamed",
                std::process::id()
            ))
        },
        |path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
        },
    )?;
    std::fs::remove_file(&path)?;
    file.write_all(bytes)?;
    let by_descriptor = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    Ok((file, by_descriptor))
}

/// `text` with its control characters (NUL, terminal escapes, line breaks) shown escaped, so
/// that echoing it cannot rewrite the terminal.
pub fn escape_controls(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// `text` as an error message may echo it: [escaped](escape_controls) and cut to its first
/// 80 characters, so a hostile name cannot flood or rewrite the terminal.
pub fn quoted(text: &str) -> String {
    const SHOWN: usize = 80;
    let cut: String = text.chars().take(SHOWN).collect();
    let mut shown = escape_controls(&cut);
    if text.chars().nth(SHOWN).is_some() {
        shown.push_str("...");
    }
    shown
}

/// The lock file's name inside a locked directory.
pub const LOCK_FILE: &str = ".lock";

/// An OS lock on a directory, held until dropped (or the process dies): exclusive for a
/// process that writes the directory as a whole, shared for processes that each write a
/// part of it no other touches (evaluation shards, each its own checkpoints).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the exclusive lock on `dir` (through its `.lock` file), or says who holds it.
    pub fn acquire(dir: &Path) -> io::Result<Self> {
        Self::take(dir, false)
    }

    /// Takes a shared lock on `dir`: held by any number of processes at once, never beside
    /// an exclusive one.
    pub fn acquire_shared(dir: &Path) -> io::Result<Self> {
        Self::take(dir, true)
    }

    fn take(dir: &Path, shared: bool) -> io::Result<Self> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)?;
        if !file.metadata()?.file_type().is_file() {
            return Err(refused(format!("{LOCK_FILE} is not a regular file")));
        }
        let taken = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match taken {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "is in use by another gradless process (it holds the directory's lock); \
                 wait for it to finish",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_test_support::{make_fifo, scratch, sorted_names};
    use std::io::Seek;

    #[test]
    fn an_output_base_that_is_not_a_directory_is_refused_by_name() {
        let dir = scratch("base-kinds");
        let fifo = dir.join("fifo");
        make_fifo(&fifo);
        let err = create_dir_inside(&fifo, Path::new("eval"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a FIFO"), "{err}");
        std::fs::write(dir.join("file"), b"x").unwrap();
        let err = create_dir_inside(&dir.join("file"), Path::new(""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outputs go only into directories"), "{err}");
        assert!(
            create_dir_inside(&dir.join("new"), Path::new("a/b"))
                .unwrap()
                .is_dir()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const SET: [&str; 2] = ["episodes.jsonl", "summary.json"];

    #[test]
    fn an_output_set_replaces_its_files_together_and_keeps_the_rest() {
        let parent = scratch("output-set");
        let dir = parent.join("eval");
        let mut first = OutputSet::begin(&dir, &SET).unwrap();
        first.write("episodes.jsonl", b"old episodes").unwrap();
        first.write("summary.json", b"old summary").unwrap();
        assert!(!dir.exists(), "nothing shows before the commit");
        first.commit().unwrap();
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        std::fs::create_dir(dir.join("videos")).unwrap();

        let mut second = OutputSet::begin(&dir, &SET).unwrap();
        second.write("episodes.jsonl", b"new episodes").unwrap();
        assert!(second.write("other.txt", b"x").is_err());
        // Half-written: the old set is still the one shown, whole.
        assert_eq!(
            std::fs::read(dir.join("summary.json")).unwrap(),
            b"old summary"
        );
        second.write("summary.json", b"new summary").unwrap();
        second.commit().unwrap();
        assert_eq!(
            std::fs::read(dir.join("episodes.jsonl")).unwrap(),
            b"new episodes"
        );
        assert_eq!(
            std::fs::read(dir.join("summary.json")).unwrap(),
            b"new summary"
        );
        assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"mine");
        assert!(dir.join("videos").is_dir());
        assert_eq!(sorted_names(&parent), ["eval"], "no staging folder is left");

        // A set dropped unfinished leaves the shown one and no staging folder.
        let mut dropped = OutputSet::begin(&dir, &SET).unwrap();
        dropped.write("episodes.jsonl", b"never shown").unwrap();
        drop(dropped);
        assert_eq!(
            std::fs::read(dir.join("episodes.jsonl")).unwrap(),
            b"new episodes"
        );
        assert_eq!(sorted_names(&parent), ["eval"]);
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_dead_writers_staging_folder_gives_back_what_it_carried() {
        let parent = scratch("output-set-dead");
        let dir = parent.join("eval");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("summary.json"), b"shown").unwrap();
        // A process killed after the swap, before it carried the user's file back.
        let dead = parent.join(".eval.staging-4000000000");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("summary.json"), b"superseded").unwrap();
        std::fs::write(dead.join("notes.txt"), b"mine").unwrap();
        // A live process's staging folder (process 1 always lives) is its own business.
        let live = parent.join(".eval.staging-1");
        std::fs::create_dir(&live).unwrap();
        std::fs::write(live.join("summary.json"), b"being written").unwrap();
        let set = OutputSet::begin(&dir, &SET).unwrap();
        assert_eq!(
            std::fs::read(live.join("summary.json")).unwrap(),
            b"being written"
        );
        std::fs::remove_dir_all(&live).unwrap();
        assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"mine");
        assert_eq!(std::fs::read(dir.join("summary.json")).unwrap(), b"shown");
        drop(set);
        assert_eq!(sorted_names(&parent), ["eval"]);
        // Links and files are refused as the set's folder.
        let link = parent.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(
            OutputSet::begin(&link, &SET)
                .unwrap_err()
                .to_string()
                .contains("link")
        );
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn unnamed_files_leave_nothing_on_disk() {
        let own = format!(".gradless-{}-", std::process::id());
        let named_here = || {
            sorted_names(&std::env::temp_dir())
                .into_iter()
                .filter(|name| name.starts_with(&own) && name.ends_with(".unnamed"))
                .count()
        };
        let (mut file, path) = unnamed_file(b"tensors").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"tensors");
        file.rewind().unwrap();
        assert_eq!(named_here(), 0, "the file has no name while it is read");
        drop(file);
        assert!(std::fs::read(&path).is_err());
    }

    #[test]
    fn private_dirs_are_new_and_for_this_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let first = create_private_dir("gradless-test-private").unwrap();
        let second = create_private_dir("gradless-test-private").unwrap();
        assert_ne!(first, second);
        let mode = std::fs::metadata(&first).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::remove_dir(&first).unwrap();
        std::fs::remove_dir(&second).unwrap();
        let guarded = PrivateDir::create("gradless-test-private").unwrap();
        let path = guarded.path().to_path_buf();
        std::fs::write(path.join("inside"), b"x").unwrap();
        drop(guarded);
        assert!(!path.exists(), "removed with what it held");
    }

    #[test]
    fn echoed_text_is_escaped_and_cut() {
        assert_eq!(quoted("CartPole-v1"), "CartPole-v1");
        assert_eq!(quoted("a\0b\x1b[2Jc"), "a\\u{0}b\\u{1b}[2Jc");
        let long = quoted(&"x".repeat(5_000_000));
        assert_eq!(long.len(), 83);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn shared_locks_coexist_and_keep_the_exclusive_one_out() {
        let dir = scratch("shared-locks");
        let first = DirLock::acquire_shared(&dir).unwrap();
        let second = DirLock::acquire_shared(&dir).unwrap();
        let refused = DirLock::acquire(&dir).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::WouldBlock);
        drop((first, second));
        let exclusive = DirLock::acquire(&dir).unwrap();
        assert!(DirLock::acquire_shared(&dir).is_err());
        drop(exclusive);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_writes_replace_regular_files_and_nothing_else() {
        let dir = scratch("atomic");
        let path = dir.join("out.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");

        let target = dir.join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomically(&link, b"x").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );

        let fifo = dir.join("fifo");
        make_fifo(&fifo);
        let err = write_atomically(&fifo, b"x").unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );

        let err = write_atomically(Path::new("/dev/null"), b"x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("character device"), "{err}");
        assert!(
            std::fs::symlink_metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
        let err = write_atomically(&dir, b"x").unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");

        // Only the written file, the link's target, the link and the FIFO: no temporaries.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dead_writers_temporaries_are_removed_and_a_live_ones_kept() {
        let dir = scratch("dead-temporaries");
        // No process has an id past the kernel's largest (2^22); process 1 always lives.
        let dead = dir.join(".tmp-4000000000-0-out.json");
        let live = dir.join(".tmp-1-0-out.json");
        let other = dir.join(".tmp-4000000000-0-other.json");
        for path in [&dead, &live, &other] {
            std::fs::write(path, b"partial").unwrap();
        }
        write_atomically(&dir.join("out.json"), b"whole").unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_take_regular_files_within_their_bound() {
        let dir = scratch("read");
        let path = dir.join("small");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap(), b"12345");
        let err = read_bounded(&path, 4).unwrap_err().to_string();
        assert!(err.contains("5 bytes") && err.contains('4'), "{err}");
        let fifo = dir.join("fifo");
        make_fifo(&fifo);
        // Returns at once instead of waiting for a writer.
        let err = read_bounded(&fifo, 100).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
        let err = read_bounded(Path::new("/dev/zero"), 100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("character device"), "{err}");
        assert!(
            read_bounded(&dir, 100)
                .unwrap_err()
                .to_string()
                .contains("directory")
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_text_bounded(&path, 10).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn folders_inside_inputs_are_never_links() {
        let dir = scratch("inside");
        let elsewhere = scratch("inside-elsewhere");
        let made = create_dir_inside(&dir, Path::new("a/b")).unwrap();
        assert!(made.is_dir() && made.ends_with("a/b"));
        create_dir_inside(&dir, Path::new("a/b")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("eval")).unwrap();
        let err = create_dir_inside(&dir, Path::new("eval"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("eval") && err.contains("symbolic link"),
            "{err}"
        );
        assert!(create_dir_inside(&dir, Path::new("../x")).is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

        let log = dir.join("log");
        std::os::unix::fs::symlink(elsewhere.join("log"), &log).unwrap();
        let err = open_append(&log).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!elsewhere.join("log").exists());
        writeln!(open_append(&dir.join("real")).unwrap(), "line").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }

    #[test]
    fn unwritable_folders_are_found_before_writing() {
        let dir = scratch("writable");
        check_writable(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        assert!(check_writable(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_locked_directory_refuses_a_second_lock_until_released() {
        let dir = scratch("lock");
        let first = DirLock::acquire(&dir).unwrap();
        let err = DirLock::acquire(&dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("in use"), "{err}");
        drop(first);
        DirLock::acquire(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
