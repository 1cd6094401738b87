//! Reference trajectories: start an env from an explicit internal state, apply a fixed list
//! of actions, record what it returns. The format is the one the Gymnasium parity fixtures
//! are written in, so the same file can be replayed here and in Gymnasium.
//!
//! Input: `{"cases": [{"env": "CartPole-v1", "init_state": [..], "actions": [..],
//! "options": {"sutton_barto_reward": true}}]}` (`options` may be left out). Output:
//! `{"cases": [{"env": .., "steps": [{"obs": [..], "reward": r, "terminated": b,
//! "truncated": b}, ..]}]}`. Unknown keys are refused, and so are actions after the step
//! that terminates or truncates: the env would ignore them, and a silently shortened
//! trajectory is not what the file describes.

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::action::Action;
use crate::registry::make_with;
use crate::space::Space;
use crate::spec::MakeOptions;

/// A replay input that cannot be run, with the case and field it is about.
#[derive(Debug, Error, PartialEq)]
#[error("{location}: {reason}")]
pub struct ReplayError {
    /// Where: `case 3, field actions[7]` or `top level`.
    pub location: String,
    /// What is wrong there.
    pub reason: String,
}

fn case_error(case: usize, field: &str, reason: impl Into<String>) -> ReplayError {
    ReplayError {
        location: format!("case {case}, field `{field}`"),
        reason: reason.into(),
    }
}

/// One action of a case, typed by the env's action space.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayAction {
    /// For `Discrete` spaces.
    Discrete(i64),
    /// For `Box` spaces.
    Continuous(Vec<f32>),
}

/// One trajectory to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayCase {
    /// The env id.
    pub env: String,
    /// Keyword arguments for `make`.
    pub options: MakeOptions,
    /// The internal state to start from (`env.unwrapped.state`).
    pub init_state: Vec<f64>,
    /// The actions, in order.
    pub actions: Vec<ReplayAction>,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayStep {
    /// The float32 observation.
    pub obs: Vec<f32>,
    /// The reward.
    pub reward: f64,
    /// Gymnasium's `terminated`.
    pub terminated: bool,
    /// Gymnasium's `truncated`.
    pub truncated: bool,
}

/// The steps one case produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayOutcome {
    /// The env id.
    pub env: String,
    /// The steps, up to the first that terminated or truncated.
    pub steps: Vec<ReplayStep>,
}

/// Parses a replay input document, checking every case against its env.
pub fn parse(json: &str) -> Result<Vec<ReplayCase>, ReplayError> {
    let top_level = |reason: String| ReplayError {
        location: "top level".into(),
        reason,
    };
    let document: Value =
        serde_json::from_str(json).map_err(|e| top_level(format!("not JSON: {e}")))?;
    let cases = document
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| top_level("expected an object with a `cases` array".into()))?;
    if let Some(key) = unknown_key(&document, &["cases"]) {
        return Err(top_level(format!("unknown key `{key}` (known: cases)")));
    }
    cases
        .iter()
        .enumerate()
        .map(|(index, case)| parse_case(index, case))
        .collect()
}

/// The first key of an object that is not among `known`.
fn unknown_key<'a>(object: &'a Value, known: &[&str]) -> Option<&'a str> {
    object
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|key| !known.contains(key))
}

fn parse_case(index: usize, case: &Value) -> Result<ReplayCase, ReplayError> {
    const KEYS: [&str; 4] = ["env", "init_state", "actions", "options"];
    if let Some(key) = unknown_key(case, &KEYS) {
        return Err(case_error(
            index,
            key,
            format!("unknown key (known: {})", KEYS.join(", ")),
        ));
    }
    let env = case
        .get("env")
        .and_then(Value::as_str)
        .ok_or_else(|| case_error(index, "env", "expected an env id string"))?
        .to_string();
    let options = match case.get("options") {
        None | Some(Value::Null) => MakeOptions::default(),
        Some(Value::Object(map)) => {
            let mut options = MakeOptions::default();
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("sutton_barto_reward", Value::Bool(flag)) => {
                        options.sutton_barto_reward = *flag
                    }
                    _ => {
                        return Err(case_error(
                            index,
                            &format!("options.{key}"),
                            "unknown option (known: sutton_barto_reward, a boolean)",
                        ));
                    }
                }
            }
            options
        }
        Some(_) => return Err(case_error(index, "options", "expected an object")),
    };
    let probe = make_with(&env, options).map_err(|e| case_error(index, "env", e.to_string()))?;
    let init_state = case
        .get("init_state")
        .and_then(Value::as_array)
        .ok_or_else(|| case_error(index, "init_state", "expected an array of numbers"))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            // Observations are f32: a state past f32's range would be observed as infinity.
            v.as_f64()
                .filter(|x| x.abs() <= f64::from(f32::MAX))
                .ok_or_else(|| {
                    case_error(
                        index,
                        &format!("init_state[{i}]"),
                        format!("expected a number within ±{:e} (f32's range)", f32::MAX),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let actions = case
        .get("actions")
        .and_then(Value::as_array)
        .ok_or_else(|| case_error(index, "actions", "expected an array"))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            parse_action(probe.action_space(), v).map_err(|reason| {
                case_error(
                    index,
                    &format!("actions[{i}]"),
                    format!("{reason} for {env}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReplayCase {
        env,
        options,
        init_state,
        actions,
    })
}

fn parse_action(space: &Space, value: &Value) -> Result<ReplayAction, String> {
    match space {
        Space::Discrete { .. } => value
            .as_i64()
            .map(ReplayAction::Discrete)
            .ok_or_else(|| format!("expected an integer action, got {value}")),
        Space::Box { low, .. } => {
            let values: Option<Vec<f32>> = match value {
                Value::Array(items) => items.iter().map(|v| v.as_f64().map(|x| x as f32)).collect(),
                number => number.as_f64().map(|x| vec![x as f32]),
            };
            values
                .filter(|v| v.len() == low.len())
                .map(ReplayAction::Continuous)
                .ok_or_else(|| format!("expected {} number(s), got {value}", low.len()))
        }
    }
}

/// Runs one case: make, start from `init_state`, step through the actions. Errors (a bad
/// state, an invalid action, an action after the episode ended) name the case index and
/// field.
pub fn run_case(index: usize, case: &ReplayCase) -> Result<ReplayOutcome, ReplayError> {
    let mut env =
        make_with(&case.env, case.options).map_err(|e| case_error(index, "env", e.to_string()))?;
    env.reset(Some(0));
    env.set_state(&case.init_state)
        .map_err(|e| case_error(index, "init_state", e.to_string()))?;
    let mut steps = Vec::new();
    for (i, action) in case.actions.iter().enumerate() {
        let action = match action {
            ReplayAction::Discrete(a) => Action::Discrete(*a),
            ReplayAction::Continuous(values) => Action::Continuous(values),
        };
        let step = env
            .step(action)
            .map_err(|e| case_error(index, &format!("actions[{i}]"), e.to_string()))?;
        if step.observation.iter().any(|v| !v.is_finite()) || !step.reward.is_finite() {
            return Err(case_error(
                index,
                &format!("actions[{i}]"),
                "the step's observation or reward is not finite (the state left f32's range)",
            ));
        }
        steps.push(ReplayStep {
            obs: step.observation.to_vec(),
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
        });
        if (step.terminated || step.truncated) && i + 1 < case.actions.len() {
            return Err(case_error(
                index,
                &format!("actions[{}]", i + 1),
                format!(
                    "the episode {} at step {} ({}); {} more action(s) follow",
                    if step.terminated {
                        "terminated"
                    } else {
                        "was truncated"
                    },
                    i + 1,
                    format_args!("actions[{i}]"),
                    case.actions.len() - i - 1
                ),
            ));
        }
    }
    Ok(ReplayOutcome {
        env: case.env.clone(),
        steps,
    })
}

/// Parses and runs a whole input document.
pub fn run(json: &str) -> Result<Vec<ReplayOutcome>, ReplayError> {
    parse(json)?
        .iter()
        .enumerate()
        .map(|(index, case)| run_case(index, case))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_until_termination_and_refuses_actions_after_it() {
        let json = r#"{"cases": [{"env": "CartPole-v1", "init_state": [0, 0, 0.2, 0.5],
            "actions": [1, 1, 1, 1, 1, 1, 1, 1]}]}"#;
        let err = run(json).unwrap_err();
        assert!(err.location.starts_with("case 0, field `actions["), "{err}");
        assert!(err.reason.contains("terminated at step"), "{err}");
        let ended_at: usize = err.reason["the episode terminated at step ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let exact = json.replace(
            "[1, 1, 1, 1, 1, 1, 1, 1]",
            &format!("{:?}", vec![1; ended_at]),
        );
        let outcome = run(&exact).unwrap();
        let steps = &outcome[0].steps;
        assert_eq!(steps.len(), ended_at);
        assert!(steps.last().unwrap().terminated);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let extra = r#"{"cases": [{"env": "CartPole-v1", "init_state": [0, 0, 0, 0],
            "actions": [1], "seed": 3}]}"#;
        let err = parse(extra).unwrap_err();
        assert_eq!(err.location, "case 0, field `seed`");
        assert!(err.reason.contains("unknown key"), "{err}");
        let top = r#"{"cases": [], "version": 2}"#;
        assert!(parse(top).unwrap_err().reason.contains("`version`"));
    }

    /// A replay file of one case.
    fn one_case(env: &str, init_state: &str, actions: &str) -> String {
        format!(
            r#"{{"cases": [{{"env": "{env}", "init_state": {init_state}, "actions": {actions}}}]}}"#
        )
    }

    #[test]
    fn errors_name_the_case_and_the_field() {
        let bad_action = r#"{"cases": [
            {"env": "CartPole-v1", "init_state": [0, 0, 0, 0], "actions": [0]},
            {"env": "CartPole-v1", "init_state": [0, 0, 0, 0], "actions": [0, 0.5]}]}"#;
        assert_eq!(
            parse(bad_action).unwrap_err().location,
            "case 1, field `actions[1]`"
        );
        for (json, expected) in [
            (
                one_case("Acrobot-v1", "[0, 0, 0, 0]", "[3]"),
                &["case 0, field `actions[0]`", "Acrobot-v1"][..],
            ),
            (
                one_case("Pendulum-v1", "[0]", "[0.1]"),
                &["init_state", "expected 2"],
            ),
            (one_case("Nope-v0", "[]", "[]"), &["known ids"]),
            (
                one_case("CartPole-v1", "[0, 0, 0.1, 3.4e38]", "[0]"),
                &["actions[0]", "not finite"],
            ),
        ] {
            let err = run(&json).unwrap_err().to_string();
            for part in expected {
                assert!(err.contains(part), "{part} missing from: {err}");
            }
        }
        assert_eq!(parse("[]").unwrap_err().location, "top level");
        assert_eq!(parse("{").unwrap_err().location, "top level");
        // States past f32's range would be observed as infinities (printed as null).
        let huge = one_case("CartPole-v1", "[1e308, 0, 0, 0]", "[0]");
        assert_eq!(
            parse(&huge).unwrap_err().location,
            "case 0, field `init_state[0]`"
        );
        // Found by the replay fuzz target: a huge joint velocity sent Acrobot's angle
        // wrapping into a loop of more turns than could ever finish.
        let spinning = one_case(
            "Acrobot-v1",
            "[-5.08, -0.05, 2, 7259]",
            "[2, 2, 2, 2, 0, 0, 0, 0, 1, 0]",
        );
        let started = std::time::Instant::now();
        let _ = run(&spinning);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn box_actions_accept_numbers_and_arrays() {
        let json = r#"{"cases": [{"env": "Pendulum-v1", "init_state": [0.5, 0],
            "actions": [0.5, [1.5], 3]}]}"#;
        let cases = parse(json).unwrap();
        assert_eq!(cases[0].actions[1], ReplayAction::Continuous(vec![1.5]));
        assert_eq!(run(json).unwrap()[0].steps.len(), 3);
    }
}
