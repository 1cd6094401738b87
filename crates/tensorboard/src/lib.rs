//! TensorBoard event files, written and read back without TensorFlow.
//!
//! An event file (`events.out.tfevents.<seconds>.<host>.<pid>`) is a TFRecord stream: each
//! record is its length (`u64`, little-endian), the masked CRC-32C of those eight bytes, the
//! data and the masked CRC-32C of the data. The data is a serialised `tensorflow.Event`: the
//! first holds the file version (`brain.Event:2`), the others a `Summary` with one value: a
//! scalar (`simple_value`), or text as the text plugin stores it (a string tensor).
//!
//! [`EventWriter`] writes them; [`read_events`] reads a file back, checking every CRC, for the
//! tests and for resumed runs, which drop what a killed run logged after its checkpoint
//! ([`drop_events_after`]).

mod crc;
mod proto;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use crc::{crc32c, masked_crc32c};
use proto::{Decoder, Encoder};

/// The largest event file read back (a long run logs some millions of scalars).
pub const MAX_EVENT_FILE_BYTES: u64 = 1 << 30;

/// The largest single record accepted when reading.
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// What an event file holds besides its version record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f32),
    /// Text (the text plugin's string tensor).
    Text(String),
}

/// One event read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The step it belongs to.
    pub step: i64,
    /// Its tag (`charts/episodic_return`); empty for the version record.
    pub tag: String,
    /// Its value; `None` for the version record.
    pub value: Option<Value>,
}

/// Appends events to a new event file in a directory.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: io::BufWriter<File>,
}

impl EventWriter {
    /// Creates a new event file in `dir` (never an existing file or a link) and writes its
    /// version record.
    pub fn create(dir: &Path) -> io::Result<Self> {
        Self::create_marked(dir, None)
    }

    /// [`create`](Self::create), with `mark` ending the file's name
    /// (`events.out.tfevents.<seconds>.<host>.<pid>.<mark>`), so that its writer can tell its
    /// own files from others in the same folder (TensorBoard reads any name holding
    /// `tfevents`).
    pub fn create_marked(dir: &Path, mark: Option<&str>) -> io::Result<Self> {
        let seconds = now().floor() as u64;
        let mut base = format!(
            "events.out.tfevents.{seconds}.{}.{}",
            hostname(),
            std::process::id()
        );
        if let Some(mark) = mark {
            base.push('.');
            base.push_str(mark);
        }
        let mut suffix = 0;
        let (path, file) = loop {
            let name = match suffix {
                0 => base.clone(),
                n => format!("{base}.{n}"),
            };
            let path = dir.join(name);
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && suffix < 100 => suffix += 1,
                Err(e) => return Err(e),
            }
        };
        let mut writer = Self {
            path,
            file: io::BufWriter::new(file),
        };
        let mut event = Encoder::default();
        event.double(1, now());
        event.string(3, "brain.Event:2");
        writer.record(&event.into_bytes())?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a scalar.
    pub fn scalar(&mut self, tag: &str, step: i64, value: f32) -> io::Result<()> {
        let mut summary_value = Encoder::default();
        summary_value.string(1, tag);
        summary_value.float(2, value);
        self.summary(step, summary_value)
    }

    /// Writes text, shown in TensorBoard's text tab (as markdown).
    pub fn text(&mut self, tag: &str, step: i64, text: &str) -> io::Result<()> {
        let mut plugin = Encoder::default();
        plugin.string(1, "text");
        let mut metadata = Encoder::default();
        metadata.message(1, plugin);
        let mut tensor = Encoder::default();
        tensor.varint_field(1, proto::DT_STRING);
        tensor.message(2, Encoder::default());
        tensor.bytes(8, text.as_bytes());
        let mut summary_value = Encoder::default();
        summary_value.string(1, tag);
        summary_value.message(8, tensor);
        summary_value.message(9, metadata);
        self.summary(step, summary_value)
    }

    /// Pushes what was written to the file, so that TensorBoard sees it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn summary(&mut self, step: i64, value: Encoder) -> io::Result<()> {
        let mut summary = Encoder::default();
        summary.message(1, value);
        let mut event = Encoder::default();
        event.double(1, now());
        event.varint_field(2, step as u64);
        event.message(5, summary);
        self.record(&event.into_bytes())
    }

    fn record(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(&frame(data))
    }
}

/// One TFRecord: length, its masked CRC, the data, the data's masked CRC.
fn frame(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(data.len() + 16);
    record.extend_from_slice(&length);
    record.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    record.extend_from_slice(data);
    record.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    record
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name for file names, as TensorFlow puts it there; `localhost` if unknown.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| {
            name.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn invalid(path: &Path, reason: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {reason}", path.display()),
    )
}

/// Every event of an event file, in order, every CRC checked; a regular file of at most
/// [`MAX_EVENT_FILE_BYTES`].
pub fn read_events(path: &Path) -> io::Result<Vec<Event>> {
    let bytes = gradless_files::read_bounded(path, MAX_EVENT_FILE_BYTES)?;
    let (records, rest) = parse_records(&bytes);
    match rest {
        Some((at, reason)) => Err(invalid(path, format!("{reason} at byte {at}"))),
        None => Ok(records.into_iter().map(|(event, _)| event).collect()),
    }
}

/// The records of an event file up to the first that is cut short or corrupt: each event
/// with its bytes' range, and where and why reading stopped, if it stopped early.
#[allow(clippy::type_complexity)]
fn parse_records(
    bytes: &[u8],
) -> (
    Vec<(Event, std::ops::Range<usize>)>,
    Option<(usize, String)>,
) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        match parse_record(&bytes[at..]) {
            Ok((event, size)) => {
                records.push((event, at..at + size));
                at += size;
            }
            Err(reason) => return (records, Some((at, reason))),
        }
    }
    (records, None)
}

/// The record at the start of `rest`: its event and its size in bytes.
fn parse_record(rest: &[u8]) -> Result<(Event, usize), String> {
    if rest.len() < 12 {
        return Err("a truncated record header".into());
    }
    let length_bytes: [u8; 8] = rest[..8].try_into().expect("eight bytes");
    let crc = u32::from_le_bytes(rest[8..12].try_into().expect("four bytes"));
    if crc != masked_crc32c(&length_bytes) {
        return Err("a record length's CRC fails".into());
    }
    let length = u64::from_le_bytes(length_bytes);
    if length > MAX_RECORD_BYTES || length > (rest.len() as u64).saturating_sub(16) {
        return Err(format!("a record of {length} bytes does not fit"));
    }
    let data = &rest[12..12 + length as usize];
    let crc_at = 12 + length as usize;
    let crc = u32::from_le_bytes(rest[crc_at..crc_at + 4].try_into().expect("four bytes"));
    if crc != masked_crc32c(data) {
        return Err("a record's data CRC fails".into());
    }
    Ok((decode_event(data)?, crc_at + 4))
}

fn decode_event(data: &[u8]) -> Result<Event, String> {
    let mut event = Event {
        wall_time: 0.0,
        step: 0,
        tag: String::new(),
        value: None,
    };
    let mut decoder = Decoder::new(data);
    while let Some((field, payload)) = decoder.next_field()? {
        match (field, payload) {
            (1, proto::Payload::Fixed64(bits)) => event.wall_time = f64::from_bits(bits),
            (2, proto::Payload::Varint(step)) => event.step = step as i64,
            (5, proto::Payload::Bytes(summary)) => decode_summary(summary, &mut event)?,
            _ => {}
        }
    }
    Ok(event)
}

fn decode_summary(data: &[u8], event: &mut Event) -> Result<(), String> {
    let mut summary = Decoder::new(data);
    while let Some((field, payload)) = summary.next_field()? {
        let (1, proto::Payload::Bytes(value)) = (field, payload) else {
            continue;
        };
        let mut value = Decoder::new(value);
        while let Some((field, payload)) = value.next_field()? {
            match (field, payload) {
                (1, proto::Payload::Bytes(tag)) => {
                    event.tag = String::from_utf8_lossy(tag).into_owned();
                }
                (2, proto::Payload::Fixed32(bits)) => {
                    event.value = Some(Value::Scalar(f32::from_bits(bits)));
                }
                (8, proto::Payload::Bytes(tensor)) => {
                    let mut tensor = Decoder::new(tensor);
                    while let Some((field, payload)) = tensor.next_field()? {
                        if let (8, proto::Payload::Bytes(text)) = (field, payload) {
                            event.value =
                                Some(Value::Text(String::from_utf8_lossy(text).into_owned()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The event files in `dir`.
pub fn event_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file()
            && entry
                .file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Rewrites each event file in `dir` without its events after `step` (what a killed run
/// logged after the checkpoint it is resumed from, which it will log again), and without a
/// record the kill cut short. Each file is replaced atomically, and only if something is
/// dropped.
pub fn drop_events_after(dir: &Path, step: i64) -> io::Result<()> {
    for path in event_files(dir)? {
        let bytes = gradless_files::read_bounded(&path, MAX_EVENT_FILE_BYTES)?;
        let (records, stopped) = parse_records(&bytes);
        if stopped.is_none() && records.iter().all(|(event, _)| event.step <= step) {
            continue;
        }
        // Records are kept byte for byte.
        let kept: Vec<u8> = records
            .iter()
            .filter(|(event, _)| event.step <= step)
            .flat_map(|(_, range)| bytes[range.clone()].iter().copied())
            .collect();
        gradless_files::write_atomically(&path, &kept)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_test_support::scratch;

    #[test]
    fn written_events_read_back_with_their_tags_steps_and_values() {
        let dir = scratch("tensorboard-roundtrip");
        let mut writer = EventWriter::create(&dir).unwrap();
        writer.scalar("charts/episodic_return", 10, 21.5).unwrap();
        writer.scalar("losses/value_loss", 512, -0.25).unwrap();
        writer.text("config", 0, "seed = 1").unwrap();
        writer.flush().unwrap();
        let name = writer
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        let events = read_events(writer.path()).unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].value, None);
        assert!(events[0].wall_time > 1.6e9);
        let rest: Vec<(&str, i64, Option<Value>)> = events[1..]
            .iter()
            .map(|e| (e.tag.as_str(), e.step, e.value.clone()))
            .collect();
        assert_eq!(
            rest,
            [
                ("charts/episodic_return", 10, Some(Value::Scalar(21.5))),
                ("losses/value_loss", 512, Some(Value::Scalar(-0.25))),
                ("config", 0, Some(Value::Text("seed = 1".into()))),
            ]
        );
        // A second writer in the same second gets a file of its own.
        let other = EventWriter::create(&dir).unwrap();
        assert_ne!(other.path(), writer.path());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_flipped_byte_or_a_cut_record_is_refused() {
        let dir = scratch("tensorboard-corrupt");
        let mut writer = EventWriter::create(&dir).unwrap();
        writer.scalar("x", 1, 1.0).unwrap();
        writer.flush().unwrap();
        let path = writer.path().to_path_buf();
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 6;
        flipped[last] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let err = read_events(&path).unwrap_err().to_string();
        assert!(err.contains("CRC"), "{err}");
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(read_events(&path).is_err());
        // A length field claiming more than the file holds allocates nothing.
        let mut huge = good.clone();
        let length = (u64::MAX / 2).to_le_bytes();
        huge[..8].copy_from_slice(&length);
        huge[8..12].copy_from_slice(&masked_crc32c(&length).to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert!(
            read_events(&path)
                .unwrap_err()
                .to_string()
                .contains("does not fit")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn events_after_a_step_are_dropped_from_every_file() {
        let dir = scratch("tensorboard-drop");
        let mut writer = EventWriter::create(&dir).unwrap();
        for step in [10, 20, 30] {
            writer.scalar("charts/SPS", step, step as f32).unwrap();
        }
        writer.flush().unwrap();
        drop_events_after(&dir, 20).unwrap();
        let steps: Vec<i64> = read_events(writer.path())
            .unwrap()
            .iter()
            .skip(1)
            .map(|e| e.step)
            .collect();
        assert_eq!(steps, [10, 20]);
        // A record cut short by a kill goes too; the file reads cleanly again.
        let path = writer.path().to_path_buf();
        let mut bytes = std::fs::read(&path).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_events(&path).is_err());
        drop_events_after(&dir, 20).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), whole);
        assert_eq!(read_events(&path).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
