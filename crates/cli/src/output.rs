//! Writing results: stdout lines and files that are never left half-written.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Prints one value as a JSON line on stdout.
pub fn print_json_line<T: Serialize>(value: &T) -> Result<()> {
    let line = serde_json::to_string(value).context("serialising a result")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").context("writing to stdout")
}

/// An error and its causes on one line, leaving out a cause whose text the line already
/// holds (many errors end their message with their source's). Messages that span lines
/// (burn's execution errors list their causes one per line) are joined with spaces.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    let joined = line
        .lines()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Whatever a message echoes of the input, the terminal gets no escape sequence or NUL.
    gradless_files::escape_controls(&joined)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash never leaves a truncated file behind; a path holding anything but a regular file
/// (a device, a FIFO, a link) is refused, not replaced (see [`gradless_files`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    gradless_files::write_atomically(path, bytes).with_context(|| format!("{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_keep_every_cause_once() {
        let io = std::io::Error::other("disk full");
        let repeated = anyhow::Error::new(io).context("out.json: disk full");
        assert_eq!(error_line(&repeated), "out.json: disk full");
        let chained = anyhow::anyhow!("disk full").context("writing out.json");
        assert_eq!(error_line(&chained), "writing out.json: disk full");
        let hostile = anyhow::anyhow!("unknown device `\x1b[2J\0`");
        assert_eq!(error_line(&hostile), "unknown device `\\u{1b}[2J\\u{0}`");
        let spanning = anyhow::anyhow!("execution failed\nCaused by:\n  out of memory\n");
        assert_eq!(
            error_line(&spanning),
            "execution failed Caused by: out of memory"
        );
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let folder = std::env::temp_dir().join(format!("gradless-output-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("result.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
        let missing = folder.join("no-such-folder").join("x.json");
        let err = write_atomically(&missing, b"x").unwrap_err();
        assert!(format!("{err:#}").contains("no-such-folder"));
        let err = error_line(&write_atomically(Path::new("/dev/null"), b"x").unwrap_err());
        assert!(
            err.starts_with("/dev/null: ") && err.contains("character device"),
            "{err}"
        );
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
