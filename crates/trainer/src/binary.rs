//! A small little-endian binary layout for the trainer's own state files (optimizer moments,
//! replay buffer): a magic tag, then numbers and arrays. Reading checks every length, so a
//! truncated or padded file is an error naming the file, never a panic.

use std::path::{Path, PathBuf};

use gradless_policy::CheckpointError;

/// Builds a state file in memory.
#[derive(Debug, Default)]
pub struct BinaryWriter {
    bytes: Vec<u8>,
}

impl BinaryWriter {
    /// A file that starts with `magic`.
    pub fn new(magic: &[u8; 8]) -> Self {
        Self {
            bytes: magic.to_vec(),
        }
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends an `f64`.
    pub fn f64(&mut self, value: f64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a length-prefixed `f32` array.
    pub fn f32s(&mut self, values: &[f32]) {
        self.u64(values.len() as u64);
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Appends a length-prefixed `i64` array.
    pub fn i64s(&mut self, values: &[i64]) {
        self.u64(values.len() as u64);
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Writes the file (inside a checkpoint's staging directory, which is renamed into place
    /// only when complete).
    pub fn write(self, path: &Path) -> Result<(), CheckpointError> {
        std::fs::write(path, &self.bytes).map_err(|cause| CheckpointError::Io {
            path: path.to_path_buf(),
            cause,
        })
    }
}

/// Reads a state file written by [`BinaryWriter`].
#[derive(Debug)]
pub struct BinaryReader {
    path: PathBuf,
    bytes: Vec<u8>,
    position: usize,
}

impl BinaryReader {
    /// Opens `path`, a regular file of at most `limit` bytes (what the run's file can
    /// hold), and checks its magic tag.
    pub fn open(path: &Path, magic: &[u8; 8], limit: u64) -> Result<Self, CheckpointError> {
        let bytes =
            gradless_files::read_bounded(path, limit).map_err(|cause| CheckpointError::Io {
                path: path.to_path_buf(),
                cause,
            })?;
        let mut reader = Self {
            path: path.to_path_buf(),
            bytes,
            position: 0,
        };
        if reader.take(8)? != magic {
            return Err(reader.invalid(format!(
                "not a {} file",
                String::from_utf8_lossy(magic).trim_end_matches('\0')
            )));
        }
        Ok(reader)
    }

    /// An error about this file.
    pub fn invalid(&self, reason: impl Into<String>) -> CheckpointError {
        CheckpointError::State {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CheckpointError> {
        if self.bytes.len() - self.position < n {
            return Err(self.invalid(format!(
                "truncated: needs {n} more bytes at offset {}, file has {}",
                self.position,
                self.bytes.len()
            )));
        }
        let slice = &self.bytes[self.position..self.position + n];
        self.position += n;
        Ok(slice)
    }

    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64, CheckpointError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// Reads an `f64`.
    pub fn f64(&mut self) -> Result<f64, CheckpointError> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn length(&mut self, element: usize) -> Result<usize, CheckpointError> {
        let n = self.u64()?;
        let remaining = (self.bytes.len() - self.position) / element;
        if n > remaining as u64 {
            return Err(self.invalid(format!(
                "truncated: an array of {n} values at offset {}, room for {remaining}",
                self.position
            )));
        }
        Ok(n as usize)
    }

    /// Reads a length-prefixed `f32` array.
    pub fn f32s(&mut self) -> Result<Vec<f32>, CheckpointError> {
        let n = self.length(4)?;
        Ok(self
            .take(4 * n)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    /// Reads a length-prefixed `i64` array.
    pub fn i64s(&mut self) -> Result<Vec<i64>, CheckpointError> {
        let n = self.length(8)?;
        Ok(self
            .take(8 * n)?
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// Checks that nothing follows what was read.
    pub fn finish(self) -> Result<(), CheckpointError> {
        if self.position != self.bytes.len() {
            return Err(self.invalid(format!(
                "{} unexpected bytes after offset {}",
                self.bytes.len() - self.position,
                self.position
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_truncation_is_an_error() {
        let path = std::env::temp_dir().join(format!("gradless-binary-{}", std::process::id()));
        let mut writer = BinaryWriter::new(b"TESTFMT\0");
        writer.u64(7);
        writer.f64(-0.5);
        writer.f32s(&[1.0, f32::MIN_POSITIVE]);
        writer.i64s(&[-3]);
        writer.write(&path).unwrap();
        let read = |path: &Path| -> Result<_, CheckpointError> {
            let mut r = BinaryReader::open(path, b"TESTFMT\0", 1 << 20)?;
            let values = (r.u64()?, r.f64()?, r.f32s()?, r.i64s()?);
            r.finish()?;
            Ok(values)
        };
        assert_eq!(
            read(&path).unwrap(),
            (7, -0.5, vec![1.0, f32::MIN_POSITIVE], vec![-3])
        );
        let bytes = std::fs::read(&path).unwrap();
        for cut in 0..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        std::fs::write(&path, &padded).unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .to_string()
                .contains("unexpected bytes")
        );
        std::fs::remove_file(&path).unwrap();
    }
}
