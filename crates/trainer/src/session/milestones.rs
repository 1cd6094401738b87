//! What a run does every so often: greedy evaluations and checkpoints.

// The session's own types and imports: these are its methods, in a file of their own.
use super::*;
use gradless_envs::MakeArgs;

impl Session {
    pub(super) fn evaluate(&mut self) -> Result<(), TrainError> {
        let settings = &self.config.evaluation;
        let plan = EpisodePlan {
            first_seed: settings.seed,
            episodes: settings.episodes,
            num_envs: settings.episodes,
            stochastic: false,
        };
        let agent = self.algorithm.agent();
        let episodes = run_episodes(
            &agent,
            &MakeArgs::registered(self.config.env.as_str()),
            EnvBackend::Cpu,
            plan,
            |_| {},
            |_| {},
        )
        .map_err(|e| match e {
            gradless_policy::ActError::NonFinite => TrainError::NonFinite {
                global_step: self.algorithm.global_step(),
                what: "the policy's output".into(),
            },
            other => other.into(),
        })?;
        let returns: Vec<f64> = episodes.iter().map(|e| e.episode_return).collect();
        let mean_return = returns.iter().sum::<f64>() / returns.len() as f64;
        let evaluation = Evaluation {
            global_step: self.algorithm.global_step(),
            mean_return,
            train_seconds: self.state.train_seconds,
        };
        self.state.last_evaluation = Some(evaluation);
        let reached = settings
            .stop_at_return
            .is_some_and(|target| mean_return >= target);
        if reached {
            self.state.target_reached = Some(evaluation);
        }
        tracing::info!(
            global_step = evaluation.global_step,
            episodes = returns.len(),
            mean_return,
            min_return = returns.iter().copied().fold(f64::INFINITY, f64::min),
            train_seconds = evaluation.train_seconds,
            "greedy evaluation"
        );
        self.record(&[MetricsLine::Evaluation {
            global_step: evaluation.global_step,
            episodes: returns.len(),
            mean_return,
            returns,
            train_seconds: evaluation.train_seconds,
            target_reached: reached,
        }])
    }

    pub(super) fn checkpoint(&mut self) -> Result<(), TrainError> {
        let step = self.algorithm.global_step();
        let dir = self.run.checkpoint_path(step);
        if self.run.pointer(LATEST)?.as_ref() == Some(&dir) {
            // Written at this very step already (a run ending on a checkpoint step).
            return Ok(());
        }
        self.run.check_present()?;
        // Decided before the state is saved, so that a resumed run carries the same record.
        let training_return = self.training_return();
        let best = match (training_return, self.state.best_training_return) {
            (Some(now), Some(best)) => now > best,
            (Some(_), None) => true,
            (None, _) => self.run.pointer(BEST)?.is_none(),
        };
        if best && training_return.is_some() {
            self.state.best_training_return = training_return;
        }
        let env = gradless_envs::make(&self.config.env)?;
        let metadata = Metadata {
            format_version: gradless_policy::FORMAT_VERSION,
            algorithm: self.config.algorithm.name().to_string(),
            env_id: self.config.env.clone(),
            observation_space: env.observation_space().clone(),
            action_space: env.action_space().clone(),
            architecture: self.algorithm.architecture(),
            global_step: step,
            episodes: self.state.episodes,
            burn_version: BURN_VERSION.to_string(),
            device: self.device.clone(),
            config: serde_json::to_value(&self.config).expect("config serialises"),
            trainer_state: json!({
                "session": self.state,
                "algorithm": self.algorithm.state()?,
            }),
            observation_normalization: self.algorithm.observation_normalizer(),
            files: Default::default(),
            metadata_sha256: String::new(),
        };
        // A checkpoint already at this step is one newer than the `latest` this run resumed
        // from: replaced once the new one is complete.
        replace_checkpoint(&dir, metadata, |staging| {
            self.algorithm.write_files(staging)
        })?;
        self.run.set_pointer(LATEST, &dir)?;
        if best {
            self.run.set_pointer(BEST, &dir)?;
        }
        self.run.prune(self.config.checkpoint.keep_last, step)?;
        tracing::info!(
            checkpoint = %dir.display(),
            global_step = step,
            training_return,
            best,
            "checkpoint written"
        );
        self.record(&[MetricsLine::Checkpoint {
            global_step: step,
            path: dir,
            training_return,
            best,
        }])
    }
}
