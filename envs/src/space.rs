//! Observation and action spaces, named as in Gymnasium.

use serde::{Deserialize, Serialize};

use crate::action::{Action, Actions};
use crate::rng::EnvRng;

/// The set of values an observation or an action can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Space {
    /// The integers `0..n`.
    Discrete {
        /// Number of actions.
        n: u32,
    },
    /// A box of float32 vectors, bounded per component (`±inf` for unbounded).
    Box {
        /// Lower bound of each component.
        #[serde(with = "bounds")]
        low: Vec<f32>,
        /// Upper bound of each component.
        #[serde(with = "bounds")]
        high: Vec<f32>,
    },
}

/// Draws random actions from a space, as Gymnasium's `action_space.sample()` does: uniform
/// over `0..n`, or uniform within each bounded Box component.
pub struct ActionSampler {
    rng: EnvRng,
    space: Space,
}

impl ActionSampler {
    /// Draws from `space` with a generator seeded by `seed`.
    pub fn new(space: &Space, seed: u64) -> Self {
        Self {
            rng: EnvRng::from_seed(seed),
            space: space.clone(),
        }
    }

    /// One action; continuous values go into `buffer`.
    pub fn sample<'a>(&mut self, buffer: &'a mut [f32]) -> Action<'a> {
        match &self.space {
            Space::Discrete { n } => Action::Discrete(self.rng.below(u64::from(*n)) as i64),
            Space::Box { .. } => {
                self.fill_box(buffer);
                Action::Continuous(buffer)
            }
        }
    }

    /// A batch of actions, written into the buffer of the space's kind.
    pub fn sample_batch<'a>(
        &mut self,
        discrete: &'a mut [i64],
        continuous: &'a mut [f32],
    ) -> Actions<'a> {
        match self.space {
            Space::Discrete { n } => {
                for a in discrete.iter_mut() {
                    *a = self.rng.below(u64::from(n)) as i64;
                }
                Actions::Discrete(discrete)
            }
            Space::Box { .. } => {
                self.fill_box(continuous);
                Actions::Continuous(continuous)
            }
        }
    }

    fn fill_box(&mut self, out: &mut [f32]) {
        let Space::Box { low, high } = &self.space else {
            unreachable!("called for box spaces only")
        };
        for (k, a) in out.iter_mut().enumerate() {
            let d = k % low.len();
            *a = self.rng.uniform(f64::from(low[d]), f64::from(high[d])) as f32;
        }
    }
}

/// Box bounds in JSON: numbers, and `"inf"` / `"-inf"` for the unbounded components that JSON
/// numbers cannot express.
mod bounds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Number(f32),
        Text(String),
    }

    pub fn serialize<S: Serializer>(values: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
        let bounds: Vec<Bound> = values
            .iter()
            .map(|&v| match v {
                f32::INFINITY => Bound::Text("inf".into()),
                f32::NEG_INFINITY => Bound::Text("-inf".into()),
                v => Bound::Number(v),
            })
            .collect();
        bounds.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
        Vec::<Bound>::deserialize(deserializer)?
            .into_iter()
            .map(|bound| match bound {
                Bound::Number(v) => Ok(v),
                Bound::Text(text) if text == "inf" => Ok(f32::INFINITY),
                Bound::Text(text) if text == "-inf" => Ok(f32::NEG_INFINITY),
                Bound::Text(text) => Err(serde::de::Error::custom(format!(
                    "invalid bound `{text}` (expected a number, \"inf\" or \"-inf\")"
                ))),
            })
            .collect()
    }
}

impl Space {
    /// A box symmetric around zero: `[-high, high]`.
    pub fn symmetric_box(high: &[f32]) -> Self {
        Space::Box {
            low: high.iter().map(|h| -h).collect(),
            high: high.to_vec(),
        }
    }

    /// How many numbers one element of the space takes: `1` for `Discrete`.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete { .. } => 1,
            Space::Box { low, .. } => low.len(),
        }
    }

    /// Gymnasium's `repr` of the space, e.g. `Discrete(2)` or `Box(-1.0, 1.0, (1,), float32)`.
    pub fn describe(&self) -> String {
        match self {
            Space::Discrete { n } => format!("Discrete({n})"),
            Space::Box { low, high } => {
                let uniform = |v: &[f32]| v.windows(2).all(|w| w[0] == w[1]);
                if uniform(low) && uniform(high) && !low.is_empty() {
                    format!(
                        "Box({:?}, {:?}, ({},), float32)",
                        low[0],
                        high[0],
                        low.len()
                    )
                } else {
                    format!("Box({low:?}, {high:?}, ({},), float32)", low.len())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_like_gymnasium() {
        assert_eq!(Space::Discrete { n: 3 }.describe(), "Discrete(3)");
        assert_eq!(
            Space::symmetric_box(&[2.0]).describe(),
            "Box(-2.0, 2.0, (1,), float32)"
        );
        assert_eq!(Space::symmetric_box(&[1.0, 2.0]).flat_dim(), 2);
    }

    #[test]
    fn unbounded_boxes_survive_json() {
        let space = Space::symmetric_box(&[4.8, f32::INFINITY]);
        let json = serde_json::to_string(&space).unwrap();
        assert_eq!(
            json,
            r#"{"type":"Box","low":[-4.8,"-inf"],"high":[4.8,"inf"]}"#
        );
        assert_eq!(serde_json::from_str::<Space>(&json).unwrap(), space);
        assert!(serde_json::from_str::<Space>(r#"{"type":"Box","low":["x"],"high":[1]}"#).is_err());
    }

    #[test]
    fn sampled_actions_lie_in_the_space_and_follow_the_seed() {
        let mut discrete = ActionSampler::new(&Space::Discrete { n: 3 }, 7);
        let mut seen = [0usize; 3];
        for _ in 0..300 {
            let Action::Discrete(a) = discrete.sample(&mut []) else {
                panic!("a discrete space gives discrete actions")
            };
            seen[a as usize] += 1;
        }
        assert!(seen.iter().all(|&count| count > 50), "{seen:?}");
        let space = Space::Box {
            low: vec![-2.0, 0.0],
            high: vec![2.0, 0.5],
        };
        let (mut a, mut b) = (ActionSampler::new(&space, 1), ActionSampler::new(&space, 1));
        let (mut first, mut second) = ([0.0f32; 8], [0.0f32; 8]);
        let Actions::Continuous(values) = a.sample_batch(&mut [], &mut first) else {
            panic!("a box gives continuous actions")
        };
        assert!(
            values
                .chunks(2)
                .all(|v| (-2.0..=2.0).contains(&v[0]) && (0.0..=0.5).contains(&v[1]))
        );
        b.sample_batch(&mut [], &mut second);
        assert_eq!(first, second);
    }
}
