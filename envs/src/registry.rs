//! The registered ids, with Gymnasium's episode limits, and `make`.

use crate::classic::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
use crate::env::{ClassicEnv, Dynamics, Env};
use crate::error::EnvError;
use crate::spec::{EnvSpec, MakeArgs, MakeOptions, SPECS, StepLimit};
use crate::vector::{AutoresetMode, SyncVectorEnv, VectorEnv};

/// Every spec `make` accepts: Gymnasium's ids, then those of optional adapters.
pub fn registered_specs() -> Vec<EnvSpec> {
    let specs = SPECS.to_vec();
    #[cfg(feature = "gym-rs")]
    let specs = [specs, crate::gym_rs::SPECS.to_vec()].concat();
    specs
}

/// An id's registered spec, or an error listing the known ids.
pub fn spec(id: &str) -> Result<EnvSpec, EnvError> {
    registered_specs()
        .into_iter()
        .find(|spec| spec.id == id)
        .ok_or_else(|| EnvError::UnknownEnv {
            // Echoed in messages: a hostile id is shown escaped and cut short.
            id: gradless_files::quoted(id),
            known: known_ids(),
        })
}

/// Every id `make` accepts, including those of optional adapters.
pub fn known_ids() -> Vec<String> {
    registered_specs()
        .iter()
        .map(|spec| spec.id.to_string())
        .collect()
}

/// Code that works with any task's dynamics, so each id is dispatched once, here.
trait WithDynamics {
    type Output;
    fn run<D: Dynamics>(self, dynamics: D, spec: EnvSpec) -> Self::Output;
}

fn with_dynamics<W: WithDynamics>(
    id: &str,
    options: MakeOptions,
    work: W,
) -> Result<W::Output, EnvError> {
    let mut spec = spec(id)?;
    spec.max_episode_steps = match options.step_limit {
        StepLimit::Registered => spec.max_episode_steps,
        StepLimit::Steps(0) => {
            return Err(EnvError::InvalidOption {
                env: id.to_string(),
                reason: "max_episode_steps must be at least 1".into(),
            });
        }
        StepLimit::Steps(steps) => Some(steps),
        StepLimit::Unlimited => None,
    };
    if let Some(gravity) = options.gravity
        && (id != "Pendulum-v1" || !gravity.is_finite())
    {
        return Err(EnvError::InvalidOption {
            env: id.to_string(),
            reason: format!("g (gravity) applies to Pendulum-v1 only, finite; got {gravity}"),
        });
    }
    if options.sutton_barto_reward && !id.starts_with("CartPole") {
        return Err(EnvError::InvalidOption {
            env: id.to_string(),
            reason: "sutton_barto_reward applies to CartPole only".into(),
        });
    }
    Ok(match id {
        "CartPole-v0" | "CartPole-v1" => work.run(
            CartPole {
                sutton_barto_reward: options.sutton_barto_reward,
            },
            spec,
        ),
        "Acrobot-v1" => work.run(Acrobot, spec),
        "MountainCar-v0" => work.run(MountainCar, spec),
        "MountainCarContinuous-v0" => work.run(MountainCarContinuous, spec),
        "Pendulum-v1" => work.run(
            Pendulum {
                gravity: options.gravity.unwrap_or(Pendulum::default().gravity),
            },
            spec,
        ),
        // Adapter ids reach here only through `make_vector`: they have no vector form.
        other => {
            return Err(EnvError::InvalidOption {
                env: other.to_string(),
                reason: "only Gymnasium's classic-control ids run as vector envs".into(),
            });
        }
    })
}

impl MakeArgs {
    /// The env these arguments make.
    pub fn make(&self) -> Result<Box<dyn Env>, EnvError> {
        make_with(&self.id, self.options)
    }
}

/// `gym.make(id)`: the environment with its registered step limit.
pub fn make(id: &str) -> Result<Box<dyn Env>, EnvError> {
    make_with(id, MakeOptions::default())
}

/// `gym.make(id, **options)`.
pub fn make_with(id: &str, options: MakeOptions) -> Result<Box<dyn Env>, EnvError> {
    #[cfg(feature = "gym-rs")]
    if let Some(env) = crate::gym_rs::make(id, options)? {
        return Ok(env);
    }
    Ok(make_classic(id, options)?)
}

/// `gym.make(id, **options)` for Gymnasium's own ids (no adapter's), as an env that may move
/// between threads.
pub fn make_classic(id: &str, options: MakeOptions) -> Result<Box<dyn Env + Send>, EnvError> {
    struct Single;
    impl WithDynamics for Single {
        type Output = Box<dyn Env + Send>;
        fn run<D: Dynamics>(self, dynamics: D, spec: EnvSpec) -> Box<dyn Env + Send> {
            Box::new(ClassicEnv::new(dynamics, spec))
        }
    }
    with_dynamics(id, options, Single)
}

/// `gym.make_vec(id, num_envs)`: `num_envs` copies stepped together, each with its own
/// generator, resetting themselves as `mode` says.
pub fn make_vector(
    id: &str,
    num_envs: usize,
    mode: AutoresetMode,
    options: MakeOptions,
) -> Result<Box<dyn VectorEnv>, EnvError> {
    if num_envs == 0 {
        return Err(EnvError::InvalidOption {
            env: id.to_string(),
            reason: "num_envs must be at least 1".into(),
        });
    }
    struct Vector {
        num_envs: usize,
        mode: AutoresetMode,
    }
    impl WithDynamics for Vector {
        type Output = Box<dyn VectorEnv>;
        fn run<D: Dynamics>(self, dynamics: D, spec: EnvSpec) -> Box<dyn VectorEnv> {
            Box::new(SyncVectorEnv::new(dynamics, spec, self.num_envs, self.mode))
        }
    }
    with_dynamics(id, options, Vector { num_envs, mode })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;

    #[test]
    fn unknown_id_lists_the_known_ones() {
        let err = make("CartPole-v9").err().unwrap();
        let message = err.to_string();
        assert!(message.contains("CartPole-v9"), "{message}");
        assert!(message.contains("Acrobot-v1"), "{message}");
        assert!(message.contains("Pendulum-v1"), "{message}");
        // A hostile id is echoed escaped and cut short, not raw.
        let hostile = format!("\x1b[2J\0{}", "x".repeat(5_000_000));
        let message = make(&hostile).err().unwrap().to_string();
        assert!(message.len() < 1000, "{} bytes", message.len());
        assert!(message.contains("\\u{1b}[2J\\u{0}"), "{message}");
    }

    #[test]
    fn every_spec_can_be_made() {
        for spec in SPECS {
            let env = make(spec.id).unwrap();
            assert_eq!(env.spec().id, spec.id);
        }
    }

    #[test]
    fn sutton_barto_reward_is_refused_outside_cartpole() {
        let options = MakeOptions {
            sutton_barto_reward: true,
            ..MakeOptions::default()
        };
        assert!(make_with("CartPole-v1", options).is_ok());
        assert!(matches!(
            make_with("Pendulum-v1", options),
            Err(EnvError::InvalidOption { .. })
        ));
    }

    /// `max_episode_steps` as `gym.make` takes it: a limit of its own, none (for a wrapper
    /// to count), never zero.
    #[test]
    fn step_limits_replace_the_registered_one() {
        let limited = |step_limit| {
            make_with(
                "Pendulum-v1",
                MakeOptions {
                    step_limit,
                    ..MakeOptions::default()
                },
            )
        };
        let steps_until_truncated = |mut env: Box<dyn Env>| {
            env.reset(Some(0));
            (1..=1000)
                .find(|_| env.step(Action::Continuous(&[0.0])).unwrap().truncated)
                .unwrap_or(0)
        };
        assert_eq!(
            steps_until_truncated(limited(StepLimit::Registered).unwrap()),
            200
        );
        assert_eq!(
            steps_until_truncated(limited(StepLimit::Steps(7)).unwrap()),
            7
        );
        assert_eq!(
            steps_until_truncated(limited(StepLimit::Unlimited).unwrap()),
            0
        );
        assert!(matches!(
            limited(StepLimit::Steps(0)),
            Err(EnvError::InvalidOption { .. })
        ));
        let vector = make_vector(
            "Pendulum-v1",
            2,
            AutoresetMode::NextStep,
            MakeOptions {
                step_limit: StepLimit::Steps(3),
                ..MakeOptions::default()
            },
        )
        .unwrap();
        assert_eq!(vector.spec().max_episode_steps, Some(3));
    }

    /// Pendulum's `g`: its own physics, refused elsewhere and when not finite.
    #[test]
    fn gravity_reaches_pendulum_only() {
        let with_gravity = |id, gravity| {
            make_with(
                id,
                MakeOptions {
                    gravity: Some(gravity),
                    ..MakeOptions::default()
                },
            )
        };
        let fall = |mut env: Box<dyn Env>| {
            env.set_state(&[1.0, 0.0]).unwrap();
            env.step(Action::Continuous(&[0.0])).unwrap().observation[2]
        };
        let default = fall(make("Pendulum-v1").unwrap());
        assert_eq!(fall(with_gravity("Pendulum-v1", 10.0).unwrap()), default);
        assert!(fall(with_gravity("Pendulum-v1", 5.0).unwrap()) < default);
        assert!(with_gravity("CartPole-v1", 9.8).is_err());
        assert!(with_gravity("Pendulum-v1", f64::NAN).is_err());
    }

    #[test]
    fn zero_envs_is_an_error() {
        assert!(
            make_vector(
                "CartPole-v1",
                0,
                AutoresetMode::NextStep,
                MakeOptions::default()
            )
            .is_err()
        );
    }
}
