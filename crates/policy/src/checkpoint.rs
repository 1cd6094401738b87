//! The checkpoint format: a directory holding the network's weights (`model.bpk`, burn's
//! burnpack), whatever other state files the trainer adds (the optimizer's), and
//! `metadata.json`, which describes the run and lists every file with its SHA-256, so that a
//! truncated or flipped file is caught before anything is loaded from it.
//!
//! A checkpoint is written into a temporary directory beside its final place and renamed
//! into place only once complete, so a crash mid-write never leaves a partial checkpoint
//! under the final name.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::prelude::{Device, Module};
use gradless_envs::{EnvRng, Space};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::network::{ActionHead, ActorCritic, Architecture, QNetwork};

/// The metadata file's name inside a checkpoint directory.
pub const METADATA_FILE: &str = "metadata.json";
/// The weights file's name inside a checkpoint directory.
pub const MODEL_FILE: &str = "model.bpk";
/// The version of this format; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;

/// What can be wrong with a checkpoint; every variant names the file.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    // Not a `source` field: the message already ends with it, and a chain would repeat it.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// `metadata.json` is not valid metadata.
    #[error("{path}: invalid checkpoint metadata: {reason}")]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A listed file's contents do not match its recorded SHA-256.
    #[error("{path}: SHA-256 mismatch (the file is corrupt or was changed after writing)")]
    HashMismatch {
        /// The file.
        path: PathBuf,
    },
    /// The checkpoint holds another kind of network than asked for.
    #[error("{path}: holds a {found} network, not a {expected}")]
    Architecture {
        /// The metadata file.
        path: PathBuf,
        /// What the caller needs.
        expected: &'static str,
        /// What the checkpoint has.
        found: &'static str,
    },
    /// The weights do not fit the architecture the metadata describes.
    #[error("{path}: weights do not load: {reason}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What burn reported.
        reason: String,
    },
    /// Another state file (optimizer, replay buffer, trainer state) is invalid or does not
    /// fit the run.
    #[error("{path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |cause| CheckpointError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Everything a checkpoint says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// [`FORMAT_VERSION`] at writing.
    pub format_version: u32,
    /// The algorithm that trained it (`ppo`, `dqn`).
    pub algorithm: String,
    /// The environment id it was trained on.
    pub env_id: String,
    /// That environment's observation space.
    pub observation_space: Space,
    /// That environment's action space.
    pub action_space: Space,
    /// The network, to rebuild it before loading its weights.
    pub architecture: Architecture,
    /// Environment steps taken when it was written.
    pub global_step: u64,
    /// Episodes finished when it was written.
    pub episodes: u64,
    /// The burn version that wrote the weights.
    pub burn_version: String,
    /// The device it was trained on (`wgpu: <adapter>`, `flex`).
    pub device: String,
    /// The full run configuration, as the trainer resolved it.
    pub config: serde_json::Value,
    /// Trainer state needed to resume exactly (generator states, schedules, ...).
    pub trainer_state: serde_json::Value,
    /// Every other file of the checkpoint, with its SHA-256 in hex.
    pub files: BTreeMap<String, String>,
}

/// A checkpoint whose files all matched their recorded hashes when it was opened.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
    metadata: Metadata,
}

impl Checkpoint {
    /// Opens the checkpoint in `dir`: reads its metadata and checks every listed file.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let metadata_path = dir.join(METADATA_FILE);
        let text = std::fs::read_to_string(&metadata_path).map_err(io_error(&metadata_path))?;
        let invalid = |reason: String| CheckpointError::Metadata {
            path: metadata_path.clone(),
            reason,
        };
        let metadata: Metadata = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if metadata.format_version != FORMAT_VERSION {
            return Err(invalid(format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                metadata.format_version
            )));
        }
        if !metadata.files.contains_key(MODEL_FILE) {
            return Err(invalid(format!("does not list {MODEL_FILE}")));
        }
        for (name, expected) in &metadata.files {
            if name.contains(['/', '\\']) || name == METADATA_FILE {
                return Err(invalid(format!("lists an invalid file name `{name}`")));
            }
            let path = dir.join(name);
            if &sha256_file(&path)? != expected {
                return Err(CheckpointError::HashMismatch { path });
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            metadata,
        })
    }

    /// The checkpoint's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The path of one of its files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Builds the actor-critic the metadata describes on `device` and loads its weights; the
    /// module's tensors take `device`'s autodiff setting.
    pub fn load_actor_critic(&self, device: &Device) -> Result<ActorCritic, CheckpointError> {
        match &self.metadata.architecture {
            Architecture::ActorCritic {
                observation_dim,
                hidden,
                activation,
                head,
            } => self.load_weights(ActorCritic::new(
                *observation_dim,
                hidden,
                *activation,
                *head,
                &mut placeholder_rng(),
                device,
            )),
            other => Err(self.wrong_architecture("actor-critic", other)),
        }
    }

    /// Builds the Q-network the metadata describes on `device` and loads its weights.
    pub fn load_q_network(&self, device: &Device) -> Result<QNetwork, CheckpointError> {
        match &self.metadata.architecture {
            Architecture::QNetwork {
                observation_dim,
                hidden,
                activation,
                actions,
            } => self.load_weights(QNetwork::new(
                *observation_dim,
                hidden,
                *activation,
                *actions,
                &mut placeholder_rng(),
                device,
            )),
            other => Err(self.wrong_architecture("Q-network", other)),
        }
    }

    fn load_weights<M: Module>(&self, module: M) -> Result<M, CheckpointError> {
        let path = self.file(MODEL_FILE);
        module
            .try_load_file(&path)
            .map_err(|e| CheckpointError::Weights {
                path,
                reason: e.to_string(),
            })
    }

    fn wrong_architecture(&self, expected: &'static str, found: &Architecture) -> CheckpointError {
        CheckpointError::Architecture {
            path: self.file(METADATA_FILE),
            expected,
            found: match found {
                Architecture::ActorCritic {
                    head: ActionHead::Categorical { .. },
                    ..
                } => "categorical actor-critic",
                Architecture::ActorCritic { .. } => "Gaussian actor-critic",
                Architecture::QNetwork { .. } => "Q-network",
            },
        }
    }
}

/// The generator for initial weights that loading replaces.
fn placeholder_rng() -> EnvRng {
    EnvRng::from_seed(0)
}

/// Writes a checkpoint to `dir`, which must not exist yet. `write_files` puts the weights
/// (as [`MODEL_FILE`]) and any other files into the directory it is given; then every file
/// is hashed into `metadata.files`, the metadata is written and the directory renamed into
/// place. On any error the temporary directory is removed.
pub fn write_checkpoint(
    dir: &Path,
    mut metadata: Metadata,
    write_files: impl FnOnce(&Path) -> Result<(), CheckpointError>,
) -> Result<Checkpoint, CheckpointError> {
    if dir.exists() {
        return Err(CheckpointError::Io {
            path: dir.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "checkpoint exists"),
        });
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
        write_files(&staging)?;
        metadata.format_version = FORMAT_VERSION;
        metadata.files.clear();
        for entry in std::fs::read_dir(&staging).map_err(io_error(&staging))? {
            let path = entry.map_err(io_error(&staging))?.path();
            let file_name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if path.is_file() && file_name != METADATA_FILE {
                metadata.files.insert(file_name, sha256_file(&path)?);
            }
        }
        let metadata_path = staging.join(METADATA_FILE);
        let json =
            serde_json::to_string_pretty(&metadata).map_err(|e| CheckpointError::Metadata {
                path: metadata_path.clone(),
                reason: e.to_string(),
            })?;
        write_synced(&metadata_path, json.as_bytes())?;
        std::fs::rename(&staging, dir).map_err(io_error(dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result?;
    Checkpoint::open(dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// The SHA-256 of a file, in lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, CheckpointError> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer).map_err(io_error(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Activation;
    use burn::prelude::{Tensor, TensorData};

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gradless-checkpoint-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn metadata(architecture: Architecture) -> Metadata {
        Metadata {
            format_version: 0,
            algorithm: "ppo".into(),
            env_id: "CartPole-v1".into(),
            observation_space: Space::symmetric_box(&[4.8, f32::INFINITY, 0.42, f32::INFINITY]),
            action_space: Space::Discrete { n: 2 },
            architecture,
            global_step: 1024,
            episodes: 40,
            burn_version: "0.22.1".into(),
            device: "flex".into(),
            config: serde_json::json!({"ppo": {"lr": 2.5e-4}}),
            trainer_state: serde_json::json!({}),
            files: BTreeMap::new(),
        }
    }

    fn actor_critic_architecture() -> Architecture {
        Architecture::ActorCritic {
            observation_dim: 4,
            hidden: vec![16, 16],
            activation: Activation::Tanh,
            head: ActionHead::Categorical { n: 2 },
        }
    }

    fn save_actor_critic(dir: &Path, device: &Device) -> (Checkpoint, ActorCritic) {
        let model = ActorCritic::new(
            4,
            &[16, 16],
            Activation::Tanh,
            ActionHead::Categorical { n: 2 },
            &mut EnvRng::from_seed(5),
            device,
        );
        let saved = model.clone();
        let checkpoint = write_checkpoint(dir, metadata(actor_critic_architecture()), |staging| {
            saved
                .save_file(staging.join(MODEL_FILE))
                .map_err(|e| CheckpointError::Weights {
                    path: staging.join(MODEL_FILE),
                    reason: e.to_string(),
                })
        })
        .unwrap();
        (checkpoint, model)
    }

    #[test]
    fn round_trip_gives_the_same_outputs() {
        let device = Device::flex();
        let dir = scratch("round-trip").join("step-1024");
        let (checkpoint, model) = save_actor_critic(&dir, &device);
        assert_eq!(checkpoint.metadata().format_version, FORMAT_VERSION);
        assert!(checkpoint.metadata().files.contains_key(MODEL_FILE));
        let loaded = Checkpoint::open(&dir)
            .unwrap()
            .load_actor_critic(&device)
            .unwrap();
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![0.1f32, -0.2, 0.03, 0.4], [1, 4]),
            &device,
        );
        assert_eq!(
            model.actor(x.clone()).into_data(),
            loaded.actor(x).into_data()
        );
        // No temporary directory is left beside the checkpoint.
        assert_eq!(std::fs::read_dir(dir.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_truncated_and_foreign_checkpoints_are_errors_naming_the_file() {
        let device = Device::flex();
        let dir = scratch("corrupt").join("ckpt");
        save_actor_critic(&dir, &device);
        let model_path = dir.join(MODEL_FILE);
        let original = std::fs::read(&model_path).unwrap();

        let mut flipped = original.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x01;
        std::fs::write(&model_path, &flipped).unwrap();
        let err = Checkpoint::open(&dir).unwrap_err().to_string();
        assert!(
            err.contains("model.bpk") && err.contains("SHA-256"),
            "{err}"
        );

        std::fs::write(&model_path, &original[..original.len() / 3]).unwrap();
        assert!(matches!(
            Checkpoint::open(&dir),
            Err(CheckpointError::HashMismatch { .. })
        ));

        std::fs::write(&model_path, &original).unwrap();
        let checkpoint = Checkpoint::open(&dir).unwrap();
        let err = checkpoint.load_q_network(&device).unwrap_err().to_string();
        assert!(
            err.contains("metadata.json") && err.contains("not a Q-network"),
            "{err}"
        );

        std::fs::write(dir.join(METADATA_FILE), "{\"format_version\": 1").unwrap();
        let err = Checkpoint::open(&dir).unwrap_err().to_string();
        assert!(
            err.contains("metadata.json") && err.contains("invalid checkpoint metadata"),
            "{err}"
        );

        let missing = Checkpoint::open(&dir.with_file_name("nothing-here"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nothing-here"), "{missing}");
    }

    #[test]
    fn weights_of_another_shape_are_refused() {
        let device = Device::flex();
        let dir = scratch("shape").join("ckpt");
        save_actor_critic(&dir, &device);
        // Metadata edited to claim wider hidden layers, with its hash list intact.
        let path = dir.join(METADATA_FILE);
        let mut meta: Metadata =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        meta.architecture = Architecture::ActorCritic {
            observation_dim: 4,
            hidden: vec![32, 32],
            activation: Activation::Tanh,
            head: ActionHead::Categorical { n: 2 },
        };
        std::fs::write(&path, serde_json::to_string(&meta).unwrap()).unwrap();
        let err = Checkpoint::open(&dir)
            .unwrap()
            .load_actor_critic(&device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.bpk") && err.contains("weights do not load"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let parent = scratch("failed");
        let dir = parent.join("ckpt");
        let result = write_checkpoint(&dir, metadata(actor_critic_architecture()), |staging| {
            std::fs::write(staging.join(MODEL_FILE), b"half").unwrap();
            Err(CheckpointError::Weights {
                path: staging.join(MODEL_FILE),
                reason: "simulated failure".into(),
            })
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
    }
}
