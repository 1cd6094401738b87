//! Actions, one env's or a batch's, borrowed so that stepping allocates nothing.

use std::fmt;

/// An action, borrowed so that stepping allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'a> {
    /// An index into a `Discrete` space.
    Discrete(i64),
    /// A vector in a `Box` space (float32, as Gymnasium's Box actions).
    Continuous(&'a [f32]),
}

impl fmt::Display for Action<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Discrete(a) => write!(f, "{a}"),
            Action::Continuous(values) => write!(f, "{values:?}"),
        }
    }
}

/// One action per sub-environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Actions<'a> {
    /// A discrete action per env.
    Discrete(&'a [i64]),
    /// The Box actions of all envs, concatenated (`num_envs * action_dim` values).
    Continuous(&'a [f32]),
}

impl<'a> Actions<'a> {
    /// Env `i`'s action out of a batch for `num_envs` envs.
    #[inline]
    pub fn get(&self, i: usize, num_envs: usize) -> Action<'a> {
        match *self {
            Actions::Discrete(a) => Action::Discrete(a[i]),
            Actions::Continuous(a) => {
                let dim = a.len() / num_envs;
                Action::Continuous(&a[i * dim..(i + 1) * dim])
            }
        }
    }
}

impl<'a> Actions<'a> {
    /// The actions of envs `envs` out of a batch for `num_envs` envs.
    pub fn slice(&self, envs: std::ops::Range<usize>, num_envs: usize) -> Actions<'a> {
        match *self {
            Actions::Discrete(a) => Actions::Discrete(&a[envs]),
            Actions::Continuous(a) => {
                let dim = a.len() / num_envs;
                Actions::Continuous(&a[envs.start * dim..envs.end * dim])
            }
        }
    }
}
