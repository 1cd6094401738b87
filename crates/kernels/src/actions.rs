//! Actions in the form the envs take, and the greedy choice among a network's outputs.

use gradless_envs::Actions;

/// A network put out NaN or infinite values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFinite;

/// One action per env, in the form the vector envs take.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionBatch {
    /// One discrete action per env.
    Discrete(Vec<i64>),
    /// `dim` values per env, concatenated.
    Continuous(Vec<f32>),
}

impl ActionBatch {
    /// The batch as the envs take it.
    pub fn as_actions(&self) -> Actions<'_> {
        match self {
            ActionBatch::Discrete(a) => Actions::Discrete(a),
            ActionBatch::Continuous(a) => Actions::Continuous(a),
        }
    }
}

/// The index of the largest value (the first of equals, as `argmax` everywhere).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(best, max), (k, &v)| {
            if v > max { (k, v) } else { (best, max) }
        })
        .0
}

/// Greedy actions from read-back outputs (`rows` of them): each row's argmax, or the
/// Gaussian means as they are.
pub fn greedy_actions(outputs: Vec<f32>, rows: usize, continuous: bool) -> ActionBatch {
    if continuous {
        return ActionBatch::Continuous(outputs);
    }
    let width = outputs.len() / rows;
    ActionBatch::Discrete(
        outputs
            .chunks(width)
            .map(|row| argmax(row) as i64)
            .collect(),
    )
}
