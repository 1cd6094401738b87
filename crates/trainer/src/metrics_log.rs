//! Reading a run's metrics log (`metrics.jsonl`) back for figures: its training episodes,
//! its updates' numeric statistics and its greedy evaluations.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::TrainError;
use crate::run_dir::{MAX_METRICS_BYTES, METRICS_FILE};

/// The longest line read: an evaluation line lists every episode's return.
const MAX_LINE_BYTES: u64 = 64 << 20;

/// A finished training episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedEpisode {
    /// The step at which it ended.
    pub global_step: u64,
    /// Its return.
    pub episode_return: f64,
}

/// An update's numeric statistics by name (`value_loss`, `td_loss`, `sps`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedUpdate {
    /// The step after it.
    pub global_step: u64,
    /// Its statistics.
    pub values: BTreeMap<String, f64>,
}

/// A greedy evaluation during training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedEvaluation {
    /// The step it ran at.
    pub global_step: u64,
    /// Its number of episodes.
    pub episodes: u64,
    /// Their mean return.
    pub mean_return: f64,
}

/// What a run's metrics log holds, in the order it was logged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsLog {
    /// Training episodes.
    pub episodes: Vec<LoggedEpisode>,
    /// Updates (PPO) or training rounds' reports (DQN, SAC).
    pub updates: Vec<LoggedUpdate>,
    /// Greedy evaluations.
    pub evaluations: Vec<LoggedEvaluation>,
}

/// Why a line could not be read.
fn bad_line(path: &Path, number: usize, why: &str) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {number}: {why}"),
        ),
    }
}

/// Reads the metrics log of the run in `run`. A last line cut short (a process killed while
/// writing it) is left out; any other line that is not a metrics record is an error naming
/// the file and the line.
pub fn read_metrics(run: &Path) -> Result<MetricsLog, TrainError> {
    let path: PathBuf = run.join(METRICS_FILE);
    let io = |source| TrainError::Io {
        path: path.clone(),
        source,
    };
    let file = gradless_files::open_regular(&path).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();
    if length > MAX_METRICS_BYTES {
        return Err(bad_line(
            &path,
            0,
            &format!("the log is {length} bytes, more than the {MAX_METRICS_BYTES} read"),
        ));
    }
    let mut reader = BufReader::new(file);
    let mut log = MetricsLog::default();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if read == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && read as u64 > MAX_LINE_BYTES {
            return Err(bad_line(
                &path,
                number,
                &format!("longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        match parse_line(&line) {
            Ok(Some(record)) => log.push(record),
            Ok(None) => {}
            Err(_) if !complete => break,
            Err(why) => return Err(bad_line(&path, number, &why)),
        }
    }
    Ok(log)
}

/// The `(step, mean return)` of the greedy evaluations the run in `run` logged while it
/// trained, for curves: none for a folder without a metrics log (another tool's run), and
/// none, with a warning naming the file, for a log that cannot be read (a figure is drawn
/// without them rather than not at all).
pub fn logged_evaluations(run: &Path) -> Vec<(u64, f64)> {
    if !run.join(METRICS_FILE).exists() {
        return Vec::new();
    }
    match read_metrics(run) {
        Ok(log) => log
            .evaluations
            .iter()
            .map(|e| (e.global_step, e.mean_return))
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "the evaluations logged during training are left out");
            Vec::new()
        }
    }
}

/// One parsed line.
enum Record {
    Episode(LoggedEpisode),
    Update(LoggedUpdate),
    Evaluation(LoggedEvaluation),
}

impl MetricsLog {
    fn push(&mut self, record: Record) {
        match record {
            Record::Episode(episode) => self.episodes.push(episode),
            Record::Update(update) => self.updates.push(update),
            Record::Evaluation(evaluation) => self.evaluations.push(evaluation),
        }
    }
}

/// A line as a record; `None` for events figures do not use (checkpoints) and blank lines.
fn parse_line(line: &[u8]) -> Result<Option<Record>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
    let field = |name: &str| value.get(name).ok_or_else(|| format!("no `{name}`"));
    let number = |name: &str| {
        field(name)?
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{name}` is not a finite number"))
    };
    let step = || {
        field("global_step")?
            .as_u64()
            .ok_or_else(|| "`global_step` is not a step".to_string())
    };
    let event = field("event")?
        .as_str()
        .ok_or_else(|| "`event` is not a name".to_string())?;
    Ok(match event {
        "episode" => Some(Record::Episode(LoggedEpisode {
            global_step: step()?,
            episode_return: number("return")?,
        })),
        "update" => {
            let object = value.as_object().expect("has fields, so an object");
            let values = object
                .iter()
                .filter(|(name, _)| !matches!(name.as_str(), "event" | "global_step"))
                .filter_map(|(name, v)| Some((name.clone(), v.as_f64()?)))
                .collect();
            Some(Record::Update(LoggedUpdate {
                global_step: step()?,
                values,
            }))
        }
        "evaluation" => Some(Record::Evaluation(LoggedEvaluation {
            global_step: step()?,
            episodes: field("episodes")?
                .as_u64()
                .ok_or_else(|| "`episodes` is not a count".to_string())?,
            mean_return: number("mean_return")?,
        })),
        "checkpoint" => None,
        other => return Err(format!("unknown event `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricsLine, PpoLosses, PpoUpdate, Update};
    use gradless_test_support::scratch;

    fn lines() -> Vec<MetricsLine> {
        vec![
            MetricsLine::Episode {
                episode: 1,
                episode_return: 12.0,
                length: 12,
                terminated: true,
                global_step: 24,
            },
            MetricsLine::Update {
                global_step: 64,
                training_return: Some(12.0),
                stats: Update::Ppo(PpoUpdate {
                    update: 1,
                    learning_rate: 2.5e-4,
                    losses: PpoLosses {
                        policy_loss: -0.5,
                        value_loss: 20.0,
                        entropy: 0.69,
                        approx_kl: 0.0,
                        clip_fraction: 0.0,
                        grad_norm: 4.0,
                    },
                    explained_variance: f64::NAN,
                    sps: 6000.0,
                    rollout_seconds: 0.01,
                }),
            },
            MetricsLine::Evaluation {
                global_step: 64,
                episodes: 2,
                mean_return: 9.5,
                returns: vec![9.0, 10.0],
                train_seconds: 0.1,
                target_reached: false,
            },
            MetricsLine::Checkpoint {
                global_step: 64,
                path: PathBuf::from("checkpoints/step-64"),
                training_return: None,
                best: true,
            },
        ]
    }

    fn write_log(name: &str, text: &str) -> PathBuf {
        let run = scratch(name);
        std::fs::write(run.join(METRICS_FILE), text).unwrap();
        run
    }

    #[test]
    fn what_the_trainer_logs_reads_back() {
        let text: String = lines().iter().map(|l| l.to_json() + "\n").collect();
        let run = write_log("metrics-log-read", &text);
        let log = read_metrics(&run).unwrap();
        assert_eq!(
            log.episodes,
            [LoggedEpisode {
                global_step: 24,
                episode_return: 12.0
            }]
        );
        assert_eq!(log.updates.len(), 1);
        let values = &log.updates[0].values;
        assert_eq!(log.updates[0].global_step, 64);
        assert_eq!(values["value_loss"], 20.0);
        assert_eq!(values["training_return"], 12.0);
        // A NaN is logged as null: not a value.
        assert!(!values.contains_key("explained_variance"));
        assert_eq!(
            log.evaluations,
            [LoggedEvaluation {
                global_step: 64,
                episodes: 2,
                mean_return: 9.5
            }]
        );
        // A last line cut short by a kill is left out.
        std::fs::write(run.join(METRICS_FILE), format!("{text}{{\"event\":\"epi")).unwrap();
        assert_eq!(read_metrics(&run).unwrap(), log);
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn a_bad_line_is_named() {
        let good = lines()[0].to_json();
        for (text, why) in [
            (format!("{good}\nnot json\n{good}\n"), "line 2: not JSON"),
            (
                format!("{good}\n{{\"event\":\"episode\",\"global_step\":1}}\n"),
                "line 2: no `return`",
            ),
            (
                "{\"event\":\"restart\",\"global_step\":1}\n".to_string(),
                "line 1: unknown event `restart`",
            ),
        ] {
            let run = write_log("metrics-log-bad", &text);
            let error = read_metrics(&run).unwrap_err().to_string();
            assert!(
                error.contains(METRICS_FILE) && error.contains(why),
                "{error}"
            );
            std::fs::remove_dir_all(&run).unwrap();
        }
    }
}
