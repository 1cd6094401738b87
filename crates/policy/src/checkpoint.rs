//! The checkpoint format: a directory holding the network's weights (`model.bpk`, burn's
//! burnpack), whatever other state files the trainer adds (the optimizer's), and
//! `metadata.json`, which describes the run and lists every file with its SHA-256, so that a
//! truncated or flipped file is caught before anything is loaded from it.
//!
//! `metadata.json` carries a SHA-256 of its own content (`metadata_sha256`, computed over its
//! compact JSON with that field empty), so an edited or damaged metadata file is caught too,
//! and its fields are checked against one another and against the weights' shapes before any
//! network is built: a checkpoint's own description never makes loading allocate or compute
//! more than its weight file holds.
//!
//! A checkpoint is written into a temporary directory beside its final place and renamed
//! into place only once complete, so a crash mid-write never leaves a partial checkpoint
//! under the final name.
//!
//! One file because the writer, the reader and the checks share one description of the
//! format (the metadata's fields and their bounds).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::prelude::{Device, Module};
use gradless_device::DeviceReport;
use gradless_envs::Space;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::network::{ActionHead, ActorCritic, Architecture, QNetwork};
use crate::normalization::ObservationNormalizer;
use crate::soft_actor_critic::{ActionBounds, SoftActorCritic, SquashedGaussianActor, TwinQ};

/// The metadata file's name inside a checkpoint directory.
pub const METADATA_FILE: &str = "metadata.json";
/// The weights file's name inside a checkpoint directory.
pub const MODEL_FILE: &str = "model.bpk";
/// The version of this format; readers refuse others. Version 2 added `metadata_sha256` and
/// the device as a typed record.
pub const FORMAT_VERSION: u32 = 2;

/// The burn version this build uses, which every checkpoint records (checked against
/// Cargo.lock by a test).
pub const BURN_VERSION: &str = "0.22.1";

/// The largest `metadata.json` read (the trainer's state lives there, env snapshots included).
pub const MAX_METADATA_BYTES: u64 = 64 << 20;

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
    /// The device it was trained on.
    pub device: DeviceReport,
    /// The full run configuration, as the trainer resolved it.
    pub config: serde_json::Value,
    /// Trainer state needed to resume exactly (generator states, schedules, ...).
    pub trainer_state: serde_json::Value,
    /// The observation statistics the policy's inputs are normalised with, when it was
    /// trained with normalisation (absent otherwise, so older checkpoints read and hash as
    /// they were written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation_normalization: Option<ObservationNormalizer>,
    /// Every other file of the checkpoint, with its SHA-256 in hex.
    pub files: BTreeMap<String, String>,
    /// The SHA-256 of this metadata's compact JSON with this field empty.
    #[serde(default)]
    pub metadata_sha256: String,
}

impl Metadata {
    /// The SHA-256 of this metadata with `metadata_sha256` left out, in hex.
    pub fn content_sha256(&self) -> String {
        let unsealed = Metadata {
            metadata_sha256: String::new(),
            ..self.clone()
        };
        hex_sha256(&serde_json::to_vec(&unsealed).expect("metadata serialises"))
    }

    /// Checks the fields against one another: sizes within bounds, the network fitting the
    /// spaces, the config (when it names them) agreeing on env, algorithm and network.
    fn check_consistency(&self) -> Result<(), String> {
        self.architecture
            .check_sizes()
            .map_err(|reason| format!("architecture: {reason}"))?;
        let (input, outputs) = self.architecture.input_output();
        let kinds_fit = matches!(
            (&self.architecture, &self.action_space),
            (
                Architecture::ActorCritic {
                    head: ActionHead::Categorical { .. },
                    ..
                } | Architecture::QNetwork { .. },
                Space::Discrete { .. }
            ) | (
                Architecture::ActorCritic {
                    head: ActionHead::Gaussian { .. },
                    ..
                },
                Space::Box { .. }
            )
        ) || (matches!(self.architecture, Architecture::SoftActorCritic { .. })
            && ActionBounds::of(&self.action_space).is_some());
        let action_outputs = match &self.action_space {
            Space::Discrete { n } => *n as usize,
            space => space.flat_dim(),
        };
        if input != self.observation_space.flat_dim() || !kinds_fit || outputs != action_outputs {
            return Err(format!(
                "the architecture does not fit the spaces it records ({} -> {})",
                self.observation_space.describe(),
                self.action_space.describe()
            ));
        }
        if let Some(normalizer) = &self.observation_normalization {
            normalizer
                .check(input)
                .map_err(|reason| format!("observation_normalization: {reason}"))?;
        }
        let named = |key: &str| self.config.get(key).and_then(serde_json::Value::as_str);
        if let Some(env) = named("env")
            && env != self.env_id
        {
            return Err(format!("env_id is {} but config.env is {env}", self.env_id));
        }
        if let Some(algorithm) = named("algorithm")
            && algorithm != self.algorithm
        {
            return Err(format!(
                "algorithm is {} but config.algorithm is {algorithm}",
                self.algorithm
            ));
        }
        if let Some(network) = self.config.get("network").filter(|n| !n.is_null()) {
            let hidden: Option<Vec<usize>> = network
                .get("hidden")
                .and_then(|h| serde_json::from_value(h.clone()).ok());
            let activation = network
                .get("activation")
                .and_then(|a| serde_json::from_value(a.clone()).ok());
            if hidden.as_deref() != Some(self.architecture.hidden())
                || activation != Some(self.architecture.activation())
            {
                return Err("config.network does not match the architecture".into());
            }
        }
        Ok(())
    }
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
        let text = gradless_files::read_text_bounded(&metadata_path, MAX_METADATA_BYTES)
            .map_err(io_error(&metadata_path))?;
        let invalid = |reason: String| CheckpointError::Metadata {
            path: metadata_path.clone(),
            reason,
        };
        // The version first, so that another format's fields are not what the error is about.
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(invalid(format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        let metadata: Metadata =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if metadata.metadata_sha256 != metadata.content_sha256() {
            return Err(invalid(
                "metadata_sha256 does not match its content (the file was edited or damaged)"
                    .into(),
            ));
        }
        metadata.check_consistency().map_err(invalid)?;
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

    /// The path of one of its files (for messages; files are read through
    /// [`listed_file`](Self::listed_file)).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The path of a file the metadata lists (each was hashed when the checkpoint was
    /// opened), checked to be a regular file: a file the metadata leaves out is never
    /// opened, whatever stands at its name (a FIFO would never end). Readers bound what they
    /// read by what the run's file can hold.
    pub fn listed_file(&self, name: &str) -> Result<PathBuf, CheckpointError> {
        let path = self.file(name);
        if !self.metadata.files.contains_key(name) {
            return Err(CheckpointError::Metadata {
                path: self.file(METADATA_FILE),
                reason: format!(
                    "does not list {name}, which this checkpoint needs (every file a checkpoint needs is listed with its SHA-256)"
                ),
            });
        }
        gradless_files::open_regular(&path).map_err(io_error(&path))?;
        Ok(path)
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
            } => {
                self.check_weight_shapes(
                    MODEL_FILE,
                    self.metadata.architecture.parameter_shapes(),
                )?;
                self.load_weights(
                    MODEL_FILE,
                    ActorCritic::unset(*observation_dim, hidden, *activation, *head, device),
                )
            }
            other => Err(self.wrong_architecture("actor-critic", other)),
        }
    }

    /// Builds the Q-network the metadata describes on `device` and loads its weights.
    pub fn load_q_network(&self, device: &Device) -> Result<QNetwork, CheckpointError> {
        self.load_q_network_from(MODEL_FILE, device)
    }

    /// The same from another weight file of the checkpoint with the same architecture (DQN's
    /// target network).
    pub fn load_q_network_from(
        &self,
        file: &str,
        device: &Device,
    ) -> Result<QNetwork, CheckpointError> {
        match &self.metadata.architecture {
            Architecture::QNetwork {
                observation_dim,
                hidden,
                activation,
                actions,
            } => {
                self.check_weight_shapes(file, self.metadata.architecture.parameter_shapes())?;
                self.load_weights(
                    file,
                    QNetwork::unset(*observation_dim, hidden, *activation, *actions, device),
                )
            }
            other => Err(self.wrong_architecture("Q-network", other)),
        }
    }

    /// Builds SAC's actor and online critics as the metadata describes them on `device` and
    /// loads their weights; the actor maps onto the recorded action box.
    pub fn load_soft_actor_critic(
        &self,
        device: &Device,
    ) -> Result<SoftActorCritic, CheckpointError> {
        let (observation_dim, hidden, activation, bounds) = self.soft_actor_critic_parts()?;
        self.check_weight_shapes(MODEL_FILE, self.metadata.architecture.parameter_shapes())?;
        let action_dim = bounds.scale.len();
        self.load_weights(
            MODEL_FILE,
            SoftActorCritic {
                actor: SquashedGaussianActor::unset(
                    observation_dim,
                    hidden,
                    activation,
                    bounds,
                    device,
                ),
                critics: TwinQ::unset(observation_dim, action_dim, hidden, activation, device),
            },
        )
    }

    /// SAC's critics from a file that holds only them (its target networks).
    pub fn load_twin_q_from(&self, file: &str, device: &Device) -> Result<TwinQ, CheckpointError> {
        let (observation_dim, hidden, activation, bounds) = self.soft_actor_critic_parts()?;
        self.check_weight_shapes(file, self.metadata.architecture.critic_parameter_shapes())?;
        self.load_weights(
            file,
            TwinQ::unset(
                observation_dim,
                bounds.scale.len(),
                hidden,
                activation,
                device,
            ),
        )
    }

    fn soft_actor_critic_parts(
        &self,
    ) -> Result<(usize, &[usize], crate::Activation, ActionBounds), CheckpointError> {
        match &self.metadata.architecture {
            Architecture::SoftActorCritic {
                observation_dim,
                hidden,
                activation,
                ..
            } => {
                // Opening checked that the action space is a finite box of this size.
                let bounds = ActionBounds::of(&self.metadata.action_space)
                    .expect("checked when the checkpoint was opened");
                Ok((*observation_dim, hidden, *activation, bounds))
            }
            other => Err(self.wrong_architecture("soft actor-critic", other)),
        }
    }

    /// Reads the weight file's tensor names and shapes (not its data) and checks them against
    /// what the architecture has there, before a module of that architecture is built.
    fn check_weight_shapes(
        &self,
        file: &str,
        expected: Vec<(String, Vec<usize>)>,
    ) -> Result<(), CheckpointError> {
        let path = self.listed_file(file)?;
        let weights = |reason: String| CheckpointError::Weights {
            path: path.clone(),
            reason,
        };
        let limit = weight_file_limit(&expected);
        let size = std::fs::metadata(&path).map_err(io_error(&path))?.len();
        if size > limit {
            return Err(weights(format!(
                "is {size} bytes, more than the {limit} the metadata's architecture can take"
            )));
        }
        let found: BTreeMap<String, Vec<usize>> = burn_pack::Reader::from_file_exact(&path)
            .and_then(burn_pack::Reader::into_tensors)
            .map_err(|e| weights(e.to_string()))?
            .into_iter()
            .map(|tensor| (tensor.name, tensor.shape.to_vec()))
            .collect();
        let expected: BTreeMap<String, Vec<usize>> = expected.into_iter().collect();
        for (name, shape) in &expected {
            match found.get(name) {
                Some(held) if held == shape => {}
                Some(held) => {
                    return Err(weights(format!(
                        "`{name}` has shape {held:?}, but the metadata's architecture needs {shape:?}"
                    )));
                }
                None => {
                    return Err(weights(format!(
                        "no tensor `{name}`, which the metadata's architecture needs"
                    )));
                }
            }
        }
        if let Some(extra) = found.keys().find(|name| !expected.contains_key(*name)) {
            return Err(weights(format!(
                "holds `{extra}`, which the metadata's architecture does not have"
            )));
        }
        Ok(())
    }

    /// Loads `file`, whose tensors [`check_weight_shapes`](Self::check_weight_shapes)
    /// checked, into `module`.
    fn load_weights<M: Module>(&self, file: &str, module: M) -> Result<M, CheckpointError> {
        let path = self.file(file);
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
                Architecture::SoftActorCritic { .. } => "soft actor-critic",
            },
        }
    }
}

/// Writes a checkpoint to `dir`, which must not exist yet. `write_files` puts the weights
/// (as [`MODEL_FILE`]) and any other files into the directory it is given; then every file
/// is hashed into `metadata.files`, the metadata is written and the directory renamed into
/// place. On any error the temporary directory is removed.
pub fn write_checkpoint(
    dir: &Path,
    metadata: Metadata,
    write_files: impl FnOnce(&Path) -> Result<(), CheckpointError>,
) -> Result<Checkpoint, CheckpointError> {
    write_checkpoint_into(dir, metadata, write_files, false)
}

/// [`write_checkpoint`] where a checkpoint may already stand at `dir` (one a resumed run
/// writes again): the old one is set aside only once the new one is complete, and removed
/// once the new one is in its place.
pub fn replace_checkpoint(
    dir: &Path,
    metadata: Metadata,
    write_files: impl FnOnce(&Path) -> Result<(), CheckpointError>,
) -> Result<Checkpoint, CheckpointError> {
    write_checkpoint_into(dir, metadata, write_files, true)
}

fn write_checkpoint_into(
    dir: &Path,
    mut metadata: Metadata,
    write_files: impl FnOnce(&Path) -> Result<(), CheckpointError>,
    replace: bool,
) -> Result<Checkpoint, CheckpointError> {
    let existing = std::fs::symlink_metadata(dir).ok();
    if existing
        .as_ref()
        .is_some_and(|m| !replace || !m.file_type().is_dir())
    {
        return Err(CheckpointError::Io {
            path: dir.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "checkpoint exists"),
        });
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dir.with_file_name(crate::run_layout::half_written_name(&name));
    let result = (|| {
        if let Some(parent) = staging.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        // A new directory, never one (or a link to one) that is already there.
        std::fs::create_dir(&staging).map_err(io_error(&staging))?;
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
        metadata.metadata_sha256 = metadata.content_sha256();
        let metadata_path = staging.join(METADATA_FILE);
        let json =
            serde_json::to_string_pretty(&metadata).map_err(|e| CheckpointError::Metadata {
                path: metadata_path.clone(),
                reason: e.to_string(),
            })?;
        write_synced(&metadata_path, json.as_bytes())?;
        if existing.is_some() {
            // Set aside, not deleted, until the new checkpoint stands in its place.
            let aside = dir.with_file_name(format!(".{name}.superseded-{}", std::process::id()));
            std::fs::rename(dir, &aside).map_err(io_error(dir))?;
            if let Err(e) = std::fs::rename(&staging, dir) {
                let _ = std::fs::rename(&aside, dir);
                return Err(io_error(dir)(e));
            }
            std::fs::remove_dir_all(&aside).map_err(io_error(&aside))
        } else {
            std::fs::rename(&staging, dir).map_err(io_error(dir))
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result?;
    Checkpoint::open(dir)
}

/// The most bytes a weight file holding `tensors` can take: four bytes a value (f32), with
/// room for burnpack's header and names, and as much again for wider storage.
fn weight_file_limit(tensors: &[(String, Vec<usize>)]) -> u64 {
    let values: u64 = tensors
        .iter()
        .map(|(_, shape)| shape.iter().map(|&d| d as u64).product::<u64>())
        .sum();
    values.saturating_mul(8).saturating_add(1 << 20)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// The SHA-256 of a file, in lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, CheckpointError> {
    let mut file = gradless_files::open_regular(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer).map_err(io_error(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Activation;
    use burn::prelude::{Tensor, TensorData};
    use gradless_envs::EnvRng;
    use gradless_test_support::{make_fifo, scratch};

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
            device: DeviceReport {
                backend: gradless_device::Backend::Flex,
                adapter: None,
                target: None,
                hardware: false,
            },
            config: serde_json::json!({"env": "CartPole-v1", "algorithm": "ppo", "ppo": {"lr": 2.5e-4}}),
            trainer_state: serde_json::json!({}),
            observation_normalization: None,
            files: BTreeMap::new(),
            metadata_sha256: String::new(),
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

    /// One change to a checkpoint's metadata.
    type Edit = Box<dyn FnOnce(&mut Metadata)>;

    /// Rewrites a checkpoint's metadata through `edit`, sealing it again when `reseal`, as
    /// a careless or hostile editor might.
    fn edit_metadata(dir: &Path, reseal: bool, edit: impl FnOnce(&mut Metadata)) {
        let path = dir.join(METADATA_FILE);
        let mut meta: Metadata =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut meta);
        if reseal {
            meta.metadata_sha256 = meta.content_sha256();
        }
        std::fs::write(&path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    }

    fn hidden(sizes: &[usize]) -> impl FnOnce(&mut Metadata) {
        let sizes = sizes.to_vec();
        move |meta: &mut Metadata| {
            meta.architecture = Architecture::ActorCritic {
                observation_dim: 4,
                hidden: sizes,
                activation: Activation::Tanh,
                head: ActionHead::Categorical { n: 2 },
            }
        }
    }

    #[test]
    fn edited_metadata_is_refused_by_its_checksum() {
        let device = Device::flex();
        let dir = scratch("edited").join("ckpt");
        save_actor_critic(&dir, &device);
        let original = std::fs::read(dir.join(METADATA_FILE)).unwrap();
        let edits: [(&str, Edit); 3] = [
            (
                "activation",
                Box::new(|meta| {
                    meta.architecture = Architecture::ActorCritic {
                        observation_dim: 4,
                        hidden: vec![16, 16],
                        activation: Activation::Relu,
                        head: ActionHead::Categorical { n: 2 },
                    }
                }),
            ),
            (
                "global_step",
                Box::new(|meta| meta.global_step = 999_999_999),
            ),
            (
                "trainer_state",
                Box::new(|meta| meta.trainer_state = serde_json::json!({"x": 1})),
            ),
        ];
        for (what, edit) in edits {
            edit_metadata(&dir, false, edit);
            let err = Checkpoint::open(&dir).unwrap_err().to_string();
            assert!(
                err.contains("metadata.json") && err.contains("metadata_sha256"),
                "{what}: {err}"
            );
            std::fs::write(dir.join(METADATA_FILE), &original).unwrap();
        }
        Checkpoint::open(&dir).unwrap();
    }

    #[test]
    fn metadata_fields_are_checked_against_one_another() {
        let device = Device::flex();
        let dir = scratch("consistency").join("ckpt");
        save_actor_critic(&dir, &device);
        let original = std::fs::read(dir.join(METADATA_FILE)).unwrap();
        let edits: [(&str, Edit); 6] = [
            (
                "config.env",
                Box::new(|meta| meta.env_id = "CartPole-v0".into()),
            ),
            (
                "does not fit the spaces",
                Box::new(|meta| {
                    meta.architecture = Architecture::SoftActorCritic {
                        observation_dim: 4,
                        hidden: vec![64, 64],
                        activation: crate::Activation::Tanh,
                        action_dim: 2,
                    }
                }),
            ),
            (
                "observation_normalization: statistics of 3 and 3 components",
                Box::new(|meta| {
                    meta.observation_normalization =
                        Some(ObservationNormalizer::new(3, 10.0, 1e-8));
                }),
            ),
            (
                "config.algorithm",
                Box::new(|meta| meta.algorithm = "dqn".into()),
            ),
            (
                "does not fit the spaces",
                Box::new(|meta| meta.action_space = Space::Discrete { n: 3 }),
            ),
            (
                "at most 4096",
                Box::new(hidden(&[1_000_000_000, 1_000_000_000])),
            ),
        ];
        for (expected, edit) in edits {
            edit_metadata(&dir, true, edit);
            let err = Checkpoint::open(&dir).unwrap_err().to_string();
            assert!(
                err.contains("metadata.json") && err.contains(expected),
                "{err}"
            );
            std::fs::write(dir.join(METADATA_FILE), &original).unwrap();
        }
    }

    /// Shapes come from the weight file before any module is built: metadata claiming
    /// wide layers costs nothing (an [8192, 8192] orthogonal init took minutes).
    #[test]
    fn weights_of_another_shape_are_refused_before_building_anything() {
        let device = Device::flex();
        let dir = scratch("shape").join("ckpt");
        save_actor_critic(&dir, &device);
        for sizes in [&[32, 32][..], &[4096, 4096], &[16]] {
            edit_metadata(&dir, true, hidden(sizes));
            let started = std::time::Instant::now();
            let err = Checkpoint::open(&dir)
                .unwrap()
                .load_actor_critic(&device)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("model.bpk") && err.contains("weights do not load"),
                "{err}"
            );
            assert!(started.elapsed().as_secs_f64() < 1.0, "{sizes:?}");
        }
        edit_metadata(&dir, true, hidden(&[16, 16]));
        Checkpoint::open(&dir)
            .unwrap()
            .load_actor_critic(&device)
            .unwrap();
    }

    #[test]
    fn non_regular_and_oversized_files_are_refused() {
        let device = Device::flex();
        let dir = scratch("fifo").join("ckpt");
        save_actor_critic(&dir, &device);
        let model = dir.join(MODEL_FILE);
        std::fs::remove_file(&model).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &model).unwrap();
        let err = Checkpoint::open(&dir).unwrap_err().to_string();
        assert!(
            err.contains("model.bpk") && err.contains("character device"),
            "{err}"
        );
        let metadata = dir.join(METADATA_FILE);
        std::fs::remove_file(&metadata).unwrap();
        make_fifo(&metadata);
        let err = Checkpoint::open(&dir).unwrap_err().to_string();
        assert!(
            err.contains("metadata.json") && err.contains("FIFO"),
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
