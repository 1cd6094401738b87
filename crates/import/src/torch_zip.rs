//! `torch.save` zip archives rewritten so that the `zip` crate finds their entries.
//!
//! PyTorch writes every archive with Zip64 end records (76 bytes between the central
//! directory and the classic end record) and names its first entry `<stem>/data.pkl`, where
//! `<stem>` is the saved file's name without its extension. The `zip` crate, which
//! pytorch-reader opens archives with, guesses whether data was prepended to an archive by
//! looking for a central header where the classic end record says the directory would start
//! if nothing lay between them: 76 bytes past the real start. That is where the second
//! header is exactly when the first is 76 bytes long, 46 fixed bytes and a 30-byte name,
//! so every model saved under a 21-character stem (`ppo_continuous_action.cleanrl_model`)
//! was read at the wrong offset and refused. PyTorch never prepends anything, so the entries
//! are read here at offset 0 and handed on in an archive of their own.

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use zip::read::{ArchiveOffset, Config};
use zip::write::SimpleFileOptions;

use crate::ImportError;

/// The most entries read (an archive holds one per tensor storage and a few more).
const MAX_ENTRIES: usize = 1 << 16;

/// Room for the pickle and the small text entries beside the tensors.
const MAX_OTHER_BYTES: u64 = 16 << 20;

/// Whether the file starts as a zip archive does (a local file header); it is read from
/// its start again afterwards.
fn is_zip(file: &mut File) -> std::io::Result<bool> {
    let mut magic = Vec::with_capacity(4);
    Read::by_ref(file).take(4).read_to_end(&mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(magic == b"PK\x03\x04")
}

fn file_error(path: &Path, reason: impl ToString) -> ImportError {
    ImportError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// For a zip archive, a private copy of its entries, stored under `archive/` (the root
/// PyTorch gives in-memory saves) with no Zip64 records, that pytorch-reader reads at the
/// right offset, and the path it is read by; `None` for any other file (a legacy or TAR
/// save), read as it is. The copy has no name on disk and is gone with the returned file.
/// Archives whose entries inflate past `max_tensor_bytes` and a little more are refused.
pub(crate) fn readable_copy(
    path: &Path,
    max_tensor_bytes: u64,
) -> Result<Option<(File, PathBuf)>, ImportError> {
    let mut file = gradless_files::open_regular(path).map_err(|e| file_error(path, e))?;
    if !is_zip(&mut file).map_err(|e| file_error(path, e))? {
        return Ok(None);
    }
    let max_inflated = max_tensor_bytes.saturating_add(MAX_OTHER_BYTES);
    let fail = |reason: String| file_error(path, format!("not a readable PyTorch file: {reason}"));
    let config = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    let mut archive = zip::ZipArchive::with_config(config, std::io::BufReader::new(file))
        .map_err(|e| fail(format!("zip archive error: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(fail(format!(
            "{} entries, more than {MAX_ENTRIES}",
            archive.len()
        )));
    }
    let declared: u64 = (0..archive.len())
        .map(|i| archive.by_index_raw(i).map(|entry| entry.size()))
        .try_fold(0u64, |sum, size| size.map(|size| sum.saturating_add(size)))
        .map_err(|e| fail(format!("zip archive error: {e}")))?;
    if declared > max_inflated {
        return Err(fail(format!(
            "its entries hold {declared} bytes, more than a policy here may ({max_inflated})"
        )));
    }
    // pytorch-reader's root: the shortest directory holding a `data.pkl`.
    let root = archive
        .file_names()
        .filter_map(|name| name.ok()?.strip_suffix("data.pkl").map(str::to_string))
        .filter(|root| root.is_empty() || root.ends_with('/'))
        .min_by_key(String::len)
        .ok_or_else(|| fail("no data.pkl entry in the zip archive".into()))?;
    let mut copy = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut left = max_inflated;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| fail(format!("zip archive error: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| fail(format!("zip archive error: {e}")))?
            .to_string();
        // Entries outside the root are never read.
        let Some(below_root) = name.strip_prefix(&root) else {
            continue;
        };
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(left + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("{name}: {e}")))?;
        left = left.checked_sub(bytes.len() as u64).ok_or_else(|| {
            fail(format!(
                "its entries inflate to more than {max_inflated} bytes"
            ))
        })?;
        copy.start_file(format!("archive/{below_root}"), stored)
            .and_then(|()| copy.write_all(&bytes).map_err(Into::into))
            .map_err(|e| fail(format!("a private copy of {name}: {e}")))?;
    }
    let bytes = copy
        .finish()
        .map_err(|e| fail(format!("a private copy: {e}")))?
        .into_inner();
    gradless_files::unnamed_file(&bytes)
        .map(Some)
        .map_err(|e| file_error(path, format!("a private copy of the archive: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixture;

    /// A model saved under a 21-character stem: the `zip` crate's own guess at its offset
    /// fails, and the policy reads as the same weights saved under another name.
    #[test]
    fn a_21_character_stem_reads_as_any_other() {
        let stem21 = fixture("ppo_continuous_action.cleanrl_model");
        let file = File::open(&stem21).unwrap();
        let guessed = zip::ZipArchive::new(file).map(|archive| archive.len());
        assert!(guessed.is_err(), "the fixture no longer shows the trap");
        let read = crate::read_policy(&stem21, None).unwrap();
        let other = crate::read_policy(&fixture("cleanrl_ppo_pendulum.cleanrl_model"), None);
        assert_eq!(read.network, other.unwrap().network);
    }

    #[test]
    fn only_zip_archives_are_copied() {
        let (_kept, legacy) = gradless_files::unnamed_file(b"\x80\x02\x8a\x0alegacy").unwrap();
        assert!(readable_copy(&legacy, 1 << 20).unwrap().is_none());
        let (_kept, empty) = gradless_files::unnamed_file(b"").unwrap();
        assert!(readable_copy(&empty, 1 << 20).unwrap().is_none());
    }

    /// A small archive declaring more bytes than a policy may hold is refused before any
    /// entry is inflated.
    #[test]
    fn an_archive_inflating_past_the_bound_is_refused() {
        let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let deflated =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        archive.start_file("model/data.pkl", deflated).unwrap();
        archive
            .write_all(&vec![0u8; (MAX_OTHER_BYTES + 1) as usize])
            .unwrap();
        let bytes = archive.finish().unwrap().into_inner();
        assert!(bytes.len() < 1 << 20);
        let (_kept, path) = gradless_files::unnamed_file(&bytes).unwrap();
        let error = readable_copy(&path, 0).unwrap_err().to_string();
        assert!(error.contains("more than a policy here may"), "{error}");
    }

    #[test]
    fn an_archive_without_a_pickle_is_refused_by_name() {
        let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
        archive
            .start_file("model/version", SimpleFileOptions::default())
            .unwrap();
        archive.write_all(b"3\n").unwrap();
        let bytes = archive.finish().unwrap().into_inner();
        let (_kept, path) = gradless_files::unnamed_file(&bytes).unwrap();
        let error = readable_copy(&path, 1 << 20).unwrap_err().to_string();
        assert!(error.contains("data.pkl"), "{error}");
    }
}
