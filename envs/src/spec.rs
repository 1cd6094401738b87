//! What the registry knows of an id, and the keyword arguments `make` takes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What Gymnasium's registry says about an id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnvSpec {
    /// The id, e.g. `CartPole-v1`.
    pub id: &'static str,
    /// The `TimeLimit` that truncates episodes.
    pub max_episode_steps: Option<u32>,
    /// The return at which the task counts as solved.
    pub reward_threshold: Option<f64>,
}

/// Every id this crate registers, in Gymnasium's order.
pub const SPECS: [EnvSpec; 6] = [
    EnvSpec {
        id: "CartPole-v0",
        max_episode_steps: Some(200),
        reward_threshold: Some(195.0),
    },
    EnvSpec {
        id: "CartPole-v1",
        max_episode_steps: Some(500),
        reward_threshold: Some(475.0),
    },
    EnvSpec {
        id: "MountainCar-v0",
        max_episode_steps: Some(200),
        reward_threshold: Some(-110.0),
    },
    EnvSpec {
        id: "MountainCarContinuous-v0",
        max_episode_steps: Some(999),
        reward_threshold: Some(90.0),
    },
    EnvSpec {
        id: "Pendulum-v1",
        max_episode_steps: Some(200),
        reward_threshold: None,
    },
    EnvSpec {
        id: "Acrobot-v1",
        max_episode_steps: Some(500),
        reward_threshold: Some(-100.0),
    },
];

/// Keyword arguments of `gym.make` that the tasks accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, serde_json::Value>",
    into = "BTreeMap<String, serde_json::Value>"
)]
pub struct MakeOptions {
    /// CartPole only: Sutton & Barto's reward (0 per step, -1 on failure).
    pub sutton_barto_reward: bool,
    /// When `TimeLimit` truncates an episode (`gym.make`'s `max_episode_steps`).
    pub step_limit: StepLimit,
    /// Pendulum only: its gravitational acceleration (Gymnasium's `g`).
    pub gravity: Option<f64>,
}

/// The steps an episode may take before it is truncated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StepLimit {
    /// The registered `max_episode_steps`.
    #[default]
    Registered,
    /// This many steps (at least one).
    Steps(u32),
    /// Never truncated here: a wrapper outside (Gymnasium's `TimeLimit`) counts the steps.
    Unlimited,
}

/// A keyword argument's value as `gym.make` would be given it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KwargValue<'a> {
    /// Python's `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(&'a str),
}

impl KwargValue<'_> {
    /// What kind of value it is, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "a bool",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Str(_) => "a string",
        }
    }
}

/// Why a keyword argument was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KwargError {
    /// `make` takes no such keyword argument.
    #[error("unexpected keyword argument `{0}` (known: {known})", known = KWARGS.join(", "))]
    Unknown(String),
    /// A value of the wrong type.
    #[error("`{key}` must be {expected}, got {got}")]
    WrongType {
        /// The keyword.
        key: String,
        /// What it takes.
        expected: &'static str,
        /// What it was given.
        got: &'static str,
    },
    /// A value of the right type out of range.
    #[error("`{key}`: {why}")]
    BadValue {
        /// The keyword.
        key: String,
        /// Why.
        why: String,
    },
}

/// Every keyword argument [`MakeOptions::set`] takes (which env takes which is `make`'s to
/// check).
pub const KWARGS: [&str; 4] = [
    "sutton_barto_reward",
    "g",
    "max_episode_steps",
    "render_mode",
];

impl MakeOptions {
    /// Sets `gym.make`'s keyword argument `key` (Gymnasium's name for it). `render_mode`
    /// changes nothing an agent sees and is taken for any value; `max_episode_steps: None`
    /// is the registered limit.
    pub fn set(&mut self, key: &str, value: KwargValue<'_>) -> Result<(), KwargError> {
        let wrong = |expected| KwargError::WrongType {
            key: key.into(),
            expected,
            got: value.kind(),
        };
        match (key, value) {
            ("sutton_barto_reward", KwargValue::Bool(on)) => self.sutton_barto_reward = on,
            ("sutton_barto_reward", _) => return Err(wrong("a bool")),
            ("g", KwargValue::Int(g)) => self.gravity = Some(g as f64),
            ("g", KwargValue::Float(g)) if g.is_finite() => self.gravity = Some(g),
            ("g", KwargValue::Float(g)) => {
                return Err(KwargError::BadValue {
                    key: key.into(),
                    why: format!("must be finite, got {g}"),
                });
            }
            ("g", _) => return Err(wrong("a number")),
            ("max_episode_steps", KwargValue::None) => self.step_limit = StepLimit::Registered,
            ("max_episode_steps", KwargValue::Int(steps)) => {
                self.step_limit = u32::try_from(steps)
                    .ok()
                    .filter(|&steps| steps > 0)
                    .map(StepLimit::Steps)
                    .ok_or_else(|| KwargError::BadValue {
                        key: key.into(),
                        why: format!("must be between 1 and {}, got {steps}", u32::MAX),
                    })?;
            }
            ("max_episode_steps", _) => return Err(wrong("an integer or None")),
            ("render_mode", _) => {}
            _ => return Err(KwargError::Unknown(key.into())),
        }
        Ok(())
    }

    /// The keyword arguments that differ from `gym.make(id)`'s, by Gymnasium's names
    /// (a step limit of [`StepLimit::Unlimited`] has no keyword and is not among them).
    pub fn kwargs(&self) -> BTreeMap<String, serde_json::Value> {
        let mut kwargs = BTreeMap::new();
        if self.sutton_barto_reward {
            kwargs.insert("sutton_barto_reward".into(), true.into());
        }
        if let Some(g) = self.gravity {
            kwargs.insert("g".into(), g.into());
        }
        if let StepLimit::Steps(steps) = self.step_limit {
            kwargs.insert("max_episode_steps".into(), steps.into());
        }
        kwargs
    }

    /// Whether these are `gym.make(id)`'s own settings.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl From<MakeOptions> for BTreeMap<String, serde_json::Value> {
    fn from(options: MakeOptions) -> Self {
        options.kwargs()
    }
}

impl TryFrom<BTreeMap<String, serde_json::Value>> for MakeOptions {
    type Error = KwargError;
    fn try_from(kwargs: BTreeMap<String, serde_json::Value>) -> Result<Self, KwargError> {
        let mut options = Self::default();
        for (key, value) in &kwargs {
            let value = match value {
                serde_json::Value::Null => KwargValue::None,
                serde_json::Value::Bool(b) => KwargValue::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => KwargValue::Int(i),
                    None => KwargValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) => KwargValue::Str(s),
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                    return Err(KwargError::WrongType {
                        key: key.clone(),
                        expected: "a number, a bool, a string or null",
                        got: "a list or a map",
                    });
                }
            };
            options.set(key, value)?;
        }
        Ok(options)
    }
}

/// `gym.make(id, **kwargs)`: an env id with the keyword arguments it is made with.
#[derive(Debug, Clone, PartialEq)]
pub struct MakeArgs {
    /// The id, e.g. `Pendulum-v1`.
    pub id: String,
    /// Its keyword arguments.
    pub options: MakeOptions,
}

impl MakeArgs {
    /// `gym.make(id)`, with the registered settings.
    pub fn registered(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            options: MakeOptions::default(),
        }
    }
}

/// The keyword arguments that differ from `gym.make(id)`'s: `g=2.0, max_episode_steps=100`
/// (nothing for the registered settings).
impl fmt::Display for MakeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .kwargs()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&shown.join(", "))
    }
}

/// `Pendulum-v1`, or `Pendulum-v1(g=2.0, max_episode_steps=100)` with keyword arguments.
impl fmt::Display for MakeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)?;
        if !self.options.is_default() {
            write!(f, "({})", self.options)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_arguments_set_options_and_read_back() {
        let mut options = MakeOptions::default();
        options.set("g", KwargValue::Int(2)).unwrap();
        options
            .set("max_episode_steps", KwargValue::Int(100))
            .unwrap();
        options
            .set("render_mode", KwargValue::Str("rgb_array"))
            .unwrap();
        assert_eq!(options.gravity, Some(2.0));
        assert_eq!(options.step_limit, StepLimit::Steps(100));
        let json = serde_json::to_string(&options).unwrap();
        assert_eq!(json, r#"{"g":2.0,"max_episode_steps":100}"#);
        assert_eq!(serde_json::from_str::<MakeOptions>(&json).unwrap(), options);
        let args = MakeArgs {
            id: "Pendulum-v1".into(),
            options,
        };
        assert_eq!(
            args.to_string(),
            "Pendulum-v1(g=2.0, max_episode_steps=100)"
        );
        assert_eq!(
            MakeArgs::registered("CartPole-v1").to_string(),
            "CartPole-v1"
        );
        assert!(MakeOptions::default().is_default() && !options.is_default());
    }

    #[test]
    fn bad_keyword_arguments_are_refused_by_name() {
        let mut options = MakeOptions::default();
        let cases = [
            ("goal_velocity", KwargValue::Float(0.1), "goal_velocity"),
            ("g", KwargValue::Str("9.8"), "must be a number"),
            ("g", KwargValue::Float(f64::NAN), "finite"),
            ("sutton_barto_reward", KwargValue::Int(1), "must be a bool"),
            ("max_episode_steps", KwargValue::Int(0), "between 1"),
            ("max_episode_steps", KwargValue::Int(1 << 40), "between 1"),
            ("max_episode_steps", KwargValue::Float(5.0), "an integer"),
        ];
        for (key, value, says) in cases {
            let error = options.set(key, value).unwrap_err().to_string();
            assert!(error.contains(key) && error.contains(says), "{error}");
        }
        assert!(options.is_default(), "a refused argument changes nothing");
        assert!(serde_json::from_str::<MakeOptions>(r#"{"g":[1]}"#).is_err());
    }
}
