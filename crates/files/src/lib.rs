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
    let mut attempt = 0u32;
    loop {
        let temporary =
            path.with_file_name(format!(".tmp-{}-{attempt}-{name}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
        {
            Ok(file) => return Ok((temporary, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
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
    use gradless_test_support::{make_fifo, scratch};

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
