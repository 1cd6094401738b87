//! Where an evaluation is written and what: `episodes.jsonl`, `summary.json` and
//! `summary.csv`, shown together or not at all, and read back.

use std::path::{Path, PathBuf};

use crate::{CheckpointEvaluation, EvalError};

/// Where `gradless eval` writes a checkpoint's evaluation by default, as `(base, relative)`
/// for [`prepare_output_dir`]: `eval` inside a checkpoint directory (an input: no link
/// there is followed), `<file name>-eval` beside another tool's policy file.
pub fn default_eval_place(checkpoint: &Path) -> (PathBuf, PathBuf) {
    if checkpoint.is_file() {
        beside_file(checkpoint, "eval")
    } else {
        (checkpoint.to_path_buf(), PathBuf::from("eval"))
    }
}

/// Where outputs about a policy file of another tool go by default, as `(base, relative)`
/// for [`prepare_output_dir`]: a folder `<file name>-<what>` beside it.
pub fn beside_file(file: &Path, what: &str) -> (PathBuf, PathBuf) {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
    (
        parent.unwrap_or(Path::new(".")).to_path_buf(),
        PathBuf::from(format!("{name}-{what}")),
    )
}

/// Makes the folder `relative` inside `base` for an evaluation's files, before any episode
/// runs: every folder below `base` must be a real directory (a checkpoint's `eval` that is a
/// link is refused, never followed) and files must be creatable there.
pub fn prepare_output_dir(base: &Path, relative: &Path) -> Result<PathBuf, EvalError> {
    let dir = base.join(relative);
    gradless_files::create_dir_inside(base, relative)
        .and_then(|dir| gradless_files::check_writable(&dir))
        .map_err(|source| EvalError::Io {
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

/// The files of one checkpoint's evaluation, shown together or not at all.
const EVALUATION_FILES: [&str; 3] = ["episodes.jsonl", "summary.json", "summary.csv"];

/// Writes `episodes.jsonl`, `summary.json` and `summary.csv` into `dir` (made by
/// [`prepare_output_dir`]) as one [`gradless_files::OutputSet`]: a reader, or a process
/// killed midway, sees the old three files or the new three, never a mix.
pub fn write_outputs(evaluation: &CheckpointEvaluation, dir: &Path) -> Result<(), EvalError> {
    let io = |source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut lines = String::new();
    for episode in &evaluation.episodes {
        lines.push_str(&serde_json::to_string(episode).expect("episodes serialise"));
        lines.push('\n');
    }
    let summary = serde_json::to_string_pretty(evaluation).expect("summaries serialise");
    let row = summary_row(evaluation);
    let header: Vec<&str> = row.iter().map(|cell| cell.name).collect();
    let values: Vec<String> = row.iter().map(|cell| cell.value.csv()).collect();
    let csv = format!("{}\n{}\n", header.join(","), values.join(","));
    let mut set = gradless_files::OutputSet::begin(dir, &EVALUATION_FILES).map_err(io)?;
    for (name, text) in EVALUATION_FILES
        .into_iter()
        .zip([lines, summary + "\n", csv])
    {
        set.write(name, text.as_bytes()).map_err(io)?;
    }
    set.commit().map_err(io)
}

/// The largest `summary.json` read back.
const MAX_SUMMARY_BYTES: u64 = 1 << 20;

/// The evaluation saved in `dir` (its `summary.json`, as [`write_outputs`] writes it; the
/// episodes are not read back), if there is a readable one.
pub fn saved_evaluation(dir: &Path) -> Option<CheckpointEvaluation> {
    let path = dir.join("summary.json");
    let text = gradless_files::read_text_bounded(&path, MAX_SUMMARY_BYTES).ok()?;
    match serde_json::from_str(&text) {
        Ok(saved) => Some(saved),
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "ignoring an unreadable evaluation summary");
            None
        }
    }
}

/// One column of a checkpoint's summary row, as `summary.csv` and `gradless eval`'s table
/// both show it.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryCell {
    /// The CSV column.
    pub name: &'static str,
    /// The table's heading; `None` for columns the table leaves out (they are the same for
    /// every row of one `gradless eval`).
    pub heading: Option<&'static str>,
    /// The value.
    pub value: SummaryValue,
}

/// A summary value, with how it is written.
#[derive(Debug, Clone, PartialEq)]
pub enum SummaryValue {
    /// A name or path.
    Text(String),
    /// A count.
    Count(u64),
    /// A return statistic.
    Return(f64),
    /// A fraction in `[0, 1]` (the table shows a percentage).
    Fraction(f64),
    /// A yes/no setting.
    Flag(bool),
}

impl SummaryValue {
    /// The value in full, CSV-quoted where it needs it.
    pub fn csv(&self) -> String {
        match self {
            SummaryValue::Text(text) => csv_field(text),
            SummaryValue::Count(n) => n.to_string(),
            SummaryValue::Return(x) | SummaryValue::Fraction(x) => x.to_string(),
            SummaryValue::Flag(flag) => flag.to_string(),
        }
    }

    /// The value for a table column `width` wide: returns to one decimal, fractions as
    /// whole percentages.
    pub fn table(&self, width: usize) -> String {
        match self {
            SummaryValue::Text(text) => format!("{text:<width$}"),
            SummaryValue::Count(n) => format!("{n:>width$}"),
            SummaryValue::Return(x) => format!("{x:>width$.1}"),
            SummaryValue::Fraction(x) => format!("{:>width$}", format!("{:.0}%", 100.0 * x)),
            SummaryValue::Flag(flag) => format!("{flag:>width$}"),
        }
    }
}

/// A checkpoint's summary row: the one definition of `summary.csv`'s columns and of
/// `gradless eval`'s table.
pub fn summary_row(evaluation: &CheckpointEvaluation) -> Vec<SummaryCell> {
    use SummaryValue::{Count, Flag, Fraction, Return, Text};
    let s = &evaluation.summary;
    let cell = |name, heading, value| SummaryCell {
        name,
        heading,
        value,
    };
    vec![
        cell(
            "checkpoint",
            Some("checkpoint"),
            Text(evaluation.checkpoint.display().to_string()),
        ),
        cell(
            "step",
            Some("step"),
            evaluation
                .step
                .map_or_else(|| Text("unknown".into()), Count),
        ),
        cell("env", None, Text(evaluation.env.clone())),
        cell(
            "env_kwargs",
            None,
            Text(if evaluation.env_kwargs.is_default() {
                "none".into()
            } else {
                evaluation.env_kwargs.to_string()
            }),
        ),
        cell("stochastic", None, Flag(evaluation.stochastic)),
        cell("epsilon", None, Return(evaluation.epsilon)),
        cell(
            "env_backend",
            None,
            Text(evaluation.env_backend.to_string()),
        ),
        cell("episodes", Some("eps"), Count(s.episodes as u64)),
        cell("mean_return", Some("mean"), Return(s.mean_return)),
        cell("std_return", Some("std"), Return(s.std_return)),
        cell("median_return", Some("median"), Return(s.median_return)),
        cell("min_return", Some("min"), Return(s.min_return)),
        cell("max_return", Some("max"), Return(s.max_return)),
        cell("iqm", Some("IQM"), Return(s.iqm)),
        cell("iqm_ci95_lo", Some("CI95 lo"), Return(s.iqm_ci95[0])),
        cell("iqm_ci95_hi", Some("CI95 hi"), Return(s.iqm_ci95[1])),
        cell(
            "truncated_fraction",
            Some("trunc"),
            Fraction(s.truncated_fraction),
        ),
        cell(
            "observation_normalization",
            None,
            Text(match &evaluation.observation_normalization {
                None => "none".into(),
                Some(n) => format!(
                    "clip {}, epsilon {:e}, {:.0} samples",
                    n.clip, n.epsilon, n.moments.count
                ),
            }),
        ),
    ]
}

/// Quotes a CSV field when it needs it.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}
