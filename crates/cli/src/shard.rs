//! `--shard K/N`: one process's share of a list of jobs (checkpoints to evaluate, seeds to
//! train), so that a Slurm job array or a Kubernetes Indexed Job splits the work without a
//! scheduler of ours: item `j` of the list belongs to shard `j mod N`.

use anyhow::{Context, Result, bail};

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, in 0..N.
    pub index: usize,
    /// N.
    pub count: usize,
}

/// Where a job scheduler puts a task's index: Slurm job arrays, Kubernetes Indexed Jobs.
const SHARD_INDEX_VARIABLES: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

impl Shard {
    /// `--shard`'s value: `K/N`, or `N` with K from the first of the scheduler's variables
    /// the process has.
    pub fn from_flag(spec: &str) -> Result<Self> {
        Self::parse(spec, |name| std::env::var(name).ok())
    }

    /// `K/N`, or `N` with K from the first of [`SHARD_INDEX_VARIABLES`] that `variable` has.
    fn parse(spec: &str, variable: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let number = |text: &str, what: &str| -> Result<usize> {
            text.trim()
                .parse()
                .with_context(|| format!("--shard `{spec}`: {what} `{text}` is not a whole number"))
        };
        let (index, count) = match spec.split_once('/') {
            Some((k, n)) => (number(k, "K")?, number(n, "N")?),
            None => {
                let count = number(spec, "N")?;
                let (name, value) = SHARD_INDEX_VARIABLES
                    .iter()
                    .find_map(|name| variable(name).map(|value| (*name, value)))
                    .with_context(|| {
                        format!(
                            "--shard {spec}: no shard index (give K/N, or set {})",
                            SHARD_INDEX_VARIABLES.join(" or ")
                        )
                    })?;
                (number(&value, name)?, count)
            }
        };
        if count == 0 || index >= count {
            bail!("--shard: shard {index} of {count} does not exist (K must lie in 0..N)");
        }
        Ok(Self { index, count })
    }

    /// Whether item `position` (from 0) of the list is this shard's.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// This shard's items of `items`, in order.
    pub fn share<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .enumerate()
            .filter(|(position, _)| self.owns(*position))
            .map(|(_, item)| item.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn shards_come_from_the_flag_or_the_scheduler() {
        let none = variables(&[]);
        assert_eq!(
            Shard::parse("1/4", &none).unwrap(),
            Shard { index: 1, count: 4 }
        );
        let slurm = variables(&[("SLURM_ARRAY_TASK_ID", "2"), ("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(
            Shard::parse("3", &slurm).unwrap(),
            Shard { index: 2, count: 3 }
        );
        let kubernetes = variables(&[("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(
            Shard::parse("3", &kubernetes).unwrap(),
            Shard { index: 0, count: 3 }
        );
        for (spec, word) in [
            ("4/4", "does not exist"),
            ("0/0", "does not exist"),
            ("x/2", "K `x`"),
            ("3", "no shard index"),
        ] {
            let error = Shard::parse(spec, &none).unwrap_err().to_string();
            assert!(error.contains(word), "{spec}: {error}");
        }
    }

    #[test]
    fn every_item_lands_in_exactly_one_shard() {
        let items: Vec<u64> = (1..=7).collect();
        let shares: Vec<Vec<u64>> = (0..3)
            .map(|index| Shard { index, count: 3 }.share(&items))
            .collect();
        assert_eq!(shares, [vec![1, 4, 7], vec![2, 5], vec![3, 6]]);
        assert_eq!(
            Shard { index: 4, count: 5 }.share(&[1, 2]),
            Vec::<i32>::new()
        );
    }
}
