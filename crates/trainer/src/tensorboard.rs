//! The run's TensorBoard log: every metrics line also as scalars under CleanRL's tag names
//! (`charts/episodic_return`, `losses/value_loss`, ...) against `global_step`, in an event
//! file in the run directory, and the config as text. Opened on the first line written, so
//! a run that turns it off leaves no file.

use std::path::{Path, PathBuf};

use gradless_tensorboard::EventWriter;

use crate::TrainError;
use crate::metrics::{MetricsLine, Update};

/// Whether and where the run's TensorBoard events go.
#[derive(Debug)]
pub(crate) enum TensorBoardLog {
    /// Not written.
    Off,
    /// Written from the first line on, with the config text first.
    Pending {
        /// The run directory.
        dir: PathBuf,
        /// The run's `config.toml`.
        config: String,
    },
    /// Being written.
    Open(EventWriter),
}

impl TensorBoardLog {
    /// A log for the run in `dir` with `config`, opened when first written.
    pub(crate) fn new(dir: &Path, config: String) -> Self {
        Self::Pending {
            dir: dir.to_path_buf(),
            config,
        }
    }

    /// Writes `lines` as scalars and flushes them.
    pub(crate) fn write(&mut self, lines: &[MetricsLine]) -> Result<(), TrainError> {
        if let Self::Pending { dir, config } = self {
            let io = |source| TrainError::Io {
                path: dir.clone(),
                source,
            };
            let mut writer = EventWriter::create(dir).map_err(io)?;
            writer
                .text("config", 0, &format!("```toml\n{config}\n```"))
                .map_err(io)?;
            *self = Self::Open(writer);
        }
        let Self::Open(writer) = self else {
            return Ok(());
        };
        let path = writer.path().to_path_buf();
        let io = |source| TrainError::Io {
            path: path.clone(),
            source,
        };
        for line in lines {
            let (step, values) = scalars(line);
            for (tag, value) in values {
                writer.scalar(tag, step as i64, value as f32).map_err(io)?;
            }
        }
        writer.flush().map_err(io)
    }
}

/// A metrics line's scalars and the step they belong to.
fn scalars(line: &MetricsLine) -> (u64, Vec<(&'static str, f64)>) {
    match line {
        MetricsLine::Episode {
            episode_return,
            length,
            global_step,
            ..
        } => (
            *global_step,
            vec![
                ("charts/episodic_return", *episode_return),
                ("charts/episodic_length", f64::from(*length)),
            ],
        ),
        MetricsLine::Update {
            global_step,
            stats: Update::Ppo(u),
            ..
        } => (
            *global_step,
            vec![
                ("charts/SPS", u.sps),
                ("charts/learning_rate", u.learning_rate),
                ("losses/value_loss", u.losses.value_loss.into()),
                ("losses/policy_loss", u.losses.policy_loss.into()),
                ("losses/entropy", u.losses.entropy.into()),
                ("losses/approx_kl", u.losses.approx_kl.into()),
                ("losses/clipfrac", u.losses.clip_fraction.into()),
                ("losses/grad_norm", u.losses.grad_norm.into()),
                ("losses/explained_variance", u.explained_variance),
            ],
        ),
        MetricsLine::Update {
            global_step,
            stats: Update::Dqn(u),
            ..
        } => (
            *global_step,
            vec![
                ("losses/td_loss", u.td_loss),
                ("losses/q_values", u.q_values),
                ("losses/grad_norm", u.grad_norm),
                ("charts/epsilon", u.epsilon),
            ],
        ),
        MetricsLine::Update {
            global_step,
            stats: Update::Sac(u),
            ..
        } => (
            *global_step,
            vec![
                ("losses/qf1_values", u.qf1_values),
                ("losses/qf2_values", u.qf2_values),
                ("losses/qf1_loss", u.qf1_loss),
                ("losses/qf2_loss", u.qf2_loss),
                ("losses/qf_loss", (u.qf1_loss + u.qf2_loss) / 2.0),
                ("losses/actor_loss", u.actor_loss),
                ("losses/alpha", u.alpha),
                ("losses/alpha_loss", u.alpha_loss),
            ],
        ),
        MetricsLine::Evaluation {
            global_step,
            mean_return,
            returns,
            ..
        } => (
            *global_step,
            vec![
                ("eval/mean_return", *mean_return),
                ("eval/iqm", gradless_stats::interquartile_mean(returns)),
            ],
        ),
        MetricsLine::Checkpoint { .. } => (0, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_tensorboard::{Value, read_events};
    use gradless_test_support::scratch;

    #[test]
    fn lines_become_cleanrl_tags_after_the_config() {
        let dir = scratch("trainer-tensorboard");
        let mut log = TensorBoardLog::new(&dir, "seed = 3".into());
        log.write(&[
            MetricsLine::Episode {
                episode: 1,
                episode_return: 12.0,
                length: 12,
                terminated: true,
                global_step: 48,
            },
            MetricsLine::Evaluation {
                global_step: 512,
                episodes: 4,
                mean_return: 2.5,
                returns: vec![1.0, 2.0, 3.0, 4.0],
                train_seconds: 1.0,
                target_reached: false,
            },
        ])
        .unwrap();
        let files = gradless_tensorboard::event_files(&dir).unwrap();
        assert_eq!(files.len(), 1);
        let events = read_events(&files[0]).unwrap();
        let seen: Vec<(&str, i64, Option<Value>)> = events[1..]
            .iter()
            .map(|e| (e.tag.as_str(), e.step, e.value.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "config",
                    0,
                    Some(Value::Text("```toml\nseed = 3\n```".into()))
                ),
                ("charts/episodic_return", 48, Some(Value::Scalar(12.0))),
                ("charts/episodic_length", 48, Some(Value::Scalar(12.0))),
                ("eval/mean_return", 512, Some(Value::Scalar(2.5))),
                // The middle half of 1, 2, 3, 4.
                ("eval/iqm", 512, Some(Value::Scalar(2.5))),
            ]
        );
        let mut off = TensorBoardLog::Off;
        off.write(&[]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
