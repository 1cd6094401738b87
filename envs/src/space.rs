//! Observation and action spaces, named as in Gymnasium.

use serde::{Deserialize, Serialize};

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
}
