//! Observation and action spaces, named as in Gymnasium.

use serde::Serialize;

/// The set of values an observation or an action can take.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        low: Vec<f32>,
        /// Upper bound of each component.
        high: Vec<f32>,
    },
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
}
