//! RL Zoo's run folders (`logs/<algo>/<EnvId>_<n>/` holding `<EnvId>.zip`, `best_model.zip`
//! and `<EnvId>/` with `args.yml`, `config.yml` and `vecnormalize.pkl`), read for the env a
//! zip's agent was trained on (`args.yml`'s `env`; settings gradless does not reproduce
//! refuse it) and for its observation normalisation: the statistics it was trained with, to
//! be applied, or a normaliser the layout implies without its statistics, which makes the
//! zip refused (an agent evaluated on raw observations it was never trained on scores wrongly
//! without a sign).

use std::path::{Path, PathBuf};

use gradless_envs::{KwargValue, MakeArgs, MakeOptions};

/// The largest `config.yml` read: RL Zoo's are a few kilobytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The statistics file VecNormalize writes.
const STATISTICS: &str = "vecnormalize.pkl";

/// What a zip's folder says about the observations its agent was trained on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Normaliser {
    /// The `vecnormalize.pkl` holding its statistics.
    Statistics(PathBuf),
    /// Why it was trained on normalised observations whose statistics are not there.
    Missing(String),
}

/// The normaliser of the zip at `zip`, if its folder implies one: a `vecnormalize.pkl`, or a
/// `config.yml` whose `normalize` is not false, beside the zip or in the folder RL Zoo keeps
/// them in (named by the zip or by the run folder's env id).
pub(crate) fn implied_normaliser(zip: &Path) -> Option<Normaliser> {
    for folder in folders_of(zip) {
        let statistics = folder.join(STATISTICS);
        if statistics.symlink_metadata().is_ok() {
            return Some(Normaliser::Statistics(statistics));
        }
        let config = folder.join("config.yml");
        if config.symlink_metadata().is_err() {
            continue;
        }
        let text = match gradless_files::read_text_bounded(&config, MAX_CONFIG_BYTES) {
            Ok(text) => text,
            Err(e) => {
                return Some(Normaliser::Missing(format!(
                    "{} is unreadable ({e})",
                    config.display()
                )));
            }
        };
        if let Some(value) = value_of(&text, "normalize").filter(|value| normalises(value)) {
            return Some(Normaliser::Missing(format!(
                "{} sets `normalize: {value}`",
                config.display()
            )));
        }
    }
    None
}

/// What RL Zoo's `args.yml` and `config.yml` beside a zip (in the folders
/// [`implied_normaliser`] looks in) say about the env it was trained on: its id with the
/// `env_kwargs` `gym.make` got, once the settings gradless cannot reproduce are refused (an
/// `env_wrapper`, a `frame_stack`, a keyword argument our envs do not take), naming the file
/// and the key. `None` where there is no `args.yml`.
pub(crate) fn zoo_env(zip: &Path) -> Result<Option<MakeArgs>, String> {
    let Some(folder) = folders_of(zip)
        .into_iter()
        .find(|folder| folder.join("args.yml").is_file())
    else {
        return Ok(None);
    };
    let read = |name: &str| -> Result<Option<String>, String> {
        let path = folder.join(name);
        if !path.is_file() {
            return Ok(None);
        }
        gradless_files::read_text_bounded(&path, MAX_CONFIG_BYTES)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let args = read("args.yml")?.unwrap_or_default();
    let config = read("config.yml")?.unwrap_or_default();
    let shown = |name: &str| folder.join(name).display().to_string();
    for key in ["env_wrapper", "frame_stack"] {
        if let Some(value) = value_of(&config, key)
            && !is_empty_value(value)
        {
            return Err(format!(
                "{}: `{key}: {value}`: the agent saw its env through settings gradless does not \
                 reproduce, so it is refused",
                shown("config.yml")
            ));
        }
    }
    let Some(id) = value_of(&args, "env") else {
        return Ok(None);
    };
    let mut options = MakeOptions::default();
    let kwargs = mapping_of(&args, "env_kwargs")
        .map_err(|why| format!("{}: `env_kwargs`: {why}", shown("args.yml")))?;
    for (key, value) in kwargs {
        options.set(key, yaml_scalar(value)).map_err(|why| {
            format!(
                "{}: `env_kwargs`: {why}: the agent's env is not one gradless makes, so it is \
                 refused",
                shown("args.yml")
            )
        })?;
    }
    Ok(Some(MakeArgs {
        id: id.to_string(),
        options,
    }))
}

/// Whether a YAML value says "nothing": null, an empty map or false.
fn is_empty_value(value: &str) -> bool {
    matches!(value, "null" | "~" | "{}" | "" | "false")
}

/// The entries of the map under `key` in RL Zoo's `args.yml` (its ordered-dict form, where
/// the map follows `- - key` as `- a: 1` with further entries under `a`, or plain YAML with
/// the entries indented under `key:`; either may be a flow map `{a: 1, b: 2}`), as raw
/// scalars. Nothing when the key is absent, null or an empty map; an error for a value that
/// is not a map of scalars.
fn mapping_of<'a>(text: &'a str, key: &str) -> Result<Vec<(&'a str, &'a str)>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().position(|line| {
        let item = strip_dashes(line);
        item == key
            || item
                .strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
    }) else {
        return Ok(Vec::new());
    };
    let item = strip_dashes(lines[at]);
    let inline = item
        .strip_prefix(key)
        .and_then(|rest| rest.strip_prefix(':'));
    // Where the entries start and the indentation that marks one of them.
    let (first, entry_indent) = match inline.map(str::trim) {
        Some(value) if !value.is_empty() => return flow_map(value),
        Some(_) => {
            let Some(next) = lines.get(at + 1) else {
                return Ok(Vec::new());
            };
            let indent = indentation(next);
            if indent <= indentation(lines[at]) || next.trim_start().starts_with('-') {
                return Ok(Vec::new());
            }
            (at + 1, indent)
        }
        None => {
            let Some(next) = lines.get(at + 1) else {
                return Ok(Vec::new());
            };
            let value = strip_dashes(next);
            if is_empty_value(value) {
                return Ok(Vec::new());
            }
            if value.starts_with('{') {
                return flow_map(value);
            }
            (
                at + 1,
                next.len() - value.len() - (next.len() - next.trim_end().len()),
            )
        }
    };
    let mut entries = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(first) {
        let content = if i == first {
            strip_dashes(line)
        } else if indentation(line) == entry_indent && !line.trim_start().starts_with('-') {
            line.trim()
        } else if indentation(line) > entry_indent {
            return Err(format!("`{}` is not a map of plain values", line.trim()));
        } else {
            break;
        };
        entries.push(entry(content)?);
    }
    Ok(entries)
}

/// A flow map `{a: 1, b: x}`'s entries.
fn flow_map(value: &str) -> Result<Vec<(&str, &str)>, String> {
    let inner = value
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or_else(|| format!("`{value}` is not a map"))?;
    if inner.contains(['{', '[']) {
        return Err(format!("`{value}` is not a map of plain values"));
    }
    inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(entry)
        .collect()
}

/// `a: 1` as its key and raw value.
fn entry(content: &str) -> Result<(&str, &str), String> {
    let (key, value) = content
        .split_once(':')
        .ok_or_else(|| format!("`{content}` is not a `key: value` entry"))?;
    let value = value.trim();
    if value.is_empty() || value.starts_with(['{', '[', '&', '*', '!']) {
        return Err(format!("`{}` has no plain value", key.trim()));
    }
    Ok((key.trim().trim_matches(['\'', '"']), value))
}

/// A line's leading spaces.
fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A YAML scalar as `gym.make` would get it: null, a bool, an int, a float, else a string.
fn yaml_scalar(raw: &str) -> KwargValue<'_> {
    let quoted = ['\'', '"']
        .iter()
        .any(|&q| raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q));
    if quoted {
        return KwargValue::Str(&raw[1..raw.len() - 1]);
    }
    match raw {
        "null" | "Null" | "NULL" | "~" => return KwargValue::None,
        "true" | "True" | "TRUE" => return KwargValue::Bool(true),
        "false" | "False" | "FALSE" => return KwargValue::Bool(false),
        _ => {}
    }
    if let Ok(int) = raw.parse::<i64>() {
        return KwargValue::Int(int);
    }
    let looks_numeric = raw
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match raw.parse::<f64>() {
        Ok(float) if looks_numeric => KwargValue::Float(float),
        _ => KwargValue::Str(raw),
    }
}

/// Which model of an RL Zoo run folder is evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ZooModel {
    /// `<EnvId>.zip`, saved when training ended.
    #[default]
    Final,
    /// `best_model.zip`, saved by the evaluations during training.
    Best,
}

impl ZooModel {
    /// The model's file name in a run of `env_id`.
    fn file_name(self, env_id: &str) -> String {
        match self {
            Self::Final => format!("{env_id}.zip"),
            Self::Best => "best_model.zip".into(),
        }
    }
}

/// An RL Zoo run folder: `<EnvId>_<n>/` as `python -m rl_zoo3.train` leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooRun {
    /// The run folder.
    pub folder: PathBuf,
    /// The model chosen from it.
    pub model: PathBuf,
    /// The seed it was trained with (`args.yml`'s `seed`), where it says.
    pub seed: Option<u64>,
}

/// The RL Zoo run `folder` is, with the model `which` picks: `Ok(None)` when it is not one
/// (its name is not `<EnvId>_<n>`, or it holds neither `<EnvId>.zip`, `best_model.zip` nor
/// `<EnvId>/args.yml`); an error naming the model when the run lacks it.
pub fn zoo_run(folder: &Path, which: ZooModel) -> Result<Option<ZooRun>, crate::ImportError> {
    let Some(env_id) = folder
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(run_folder_env_id)
    else {
        return Ok(None);
    };
    let settings = folder.join(env_id);
    let is_run = [ZooModel::Final, ZooModel::Best]
        .iter()
        .any(|model| folder.join(model.file_name(env_id)).is_file())
        || settings.join("args.yml").is_file();
    if !is_run {
        return Ok(None);
    }
    let model = folder.join(which.file_name(env_id));
    if !model.is_file() {
        let why = match which {
            ZooModel::Final => "missing: RL Zoo saves it when training ends (did it finish?)",
            ZooModel::Best => {
                "missing: RL Zoo saves it only when it evaluates during training (--eval-freq)"
            }
        };
        return Err(crate::ImportError::File {
            path: model,
            reason: why.into(),
        });
    }
    let seed = gradless_files::read_text_bounded(&settings.join("args.yml"), MAX_CONFIG_BYTES)
        .ok()
        .and_then(|args| value_of(&args, "seed")?.parse().ok());
    Ok(Some(ZooRun {
        folder: folder.to_path_buf(),
        model,
        seed,
    }))
}

/// The zip's own folder, then the subfolders RL Zoo would use: one named as the zip
/// (`Acrobot-v1.zip` → `Acrobot-v1/`) and one named by the run folder's env id
/// (`Acrobot-v1_1/` → `Acrobot-v1/`, for `best_model.zip` and checkpoints).
fn folders_of(zip: &Path) -> Vec<PathBuf> {
    let folder = match zip.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut folders = vec![folder.clone()];
    let stem = zip.file_stem().and_then(|stem| stem.to_str());
    let env_id = folder
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(run_folder_env_id);
    for name in [stem, env_id].into_iter().flatten() {
        let candidate = folder.join(name);
        if !folders.contains(&candidate) {
            folders.push(candidate);
        }
    }
    folders
}

/// `Acrobot-v1` for RL Zoo's run folder `Acrobot-v1_3`.
fn run_folder_env_id(name: &str) -> Option<&str> {
    let (env_id, run) = name.rsplit_once('_')?;
    let numbered = !run.is_empty() && run.bytes().all(|b| b.is_ascii_digit());
    (numbered && !env_id.is_empty()).then_some(env_id)
}

/// The value of `key` in RL Zoo's `config.yml` or `args.yml`: either their ordered-dict
/// form (a `- - key` line, the value on the next as `- value`) or a plain `key: value`.
fn value_of<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let item = strip_dashes(line);
        if item == key {
            return lines.next().map(strip_dashes);
        }
        if let Some(value) = item
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
        {
            let value = value.trim();
            // `key:` with an indented block under it: the block's first line stands for it.
            let nested = lines
                .next()
                .filter(|next| next.starts_with([' ', '\t', '-']));
            return Some(match (value, nested) {
                ("", Some(next)) => strip_dashes(next),
                _ => value,
            });
        }
    }
    None
}

/// A YAML line without its indentation and list dashes.
fn strip_dashes(line: &str) -> &str {
    let mut rest = line.trim();
    while let Some(after) = rest.strip_prefix('-') {
        rest = after.trim_start();
    }
    rest.trim_end()
}

/// Whether a `normalize` value turns observation normalisation on: anything but false, an
/// empty value or a dict (as a quoted string) with `norm_obs` false.
fn normalises(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let off = matches!(lower.as_str(), "false" | "" | "null" | "~")
        || lower
            .replace(['\'', '"', ' '], "")
            .contains("norm_obs:false");
    !off
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary one, removed by the test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gradless-zoo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const ZOO_CONFIG: &str = "!!python/object/apply:collections.OrderedDict\n\
        - - - batch_size\n    - 64\n  - - n_timesteps\n    - 100000.0\n  - - normalize\n    - VALUE\n  - - policy\n    - MlpPolicy\n";

    #[test]
    fn a_normaliser_anywhere_rl_zoo_keeps_one_is_found() {
        let logs = scratch("layout");
        let run = logs.join("Acrobot-v1_1");
        let inner = run.join("Acrobot-v1");
        std::fs::create_dir_all(&inner).unwrap();
        // Nothing there: accepted.
        for zip in [
            "Acrobot-v1.zip",
            "best_model.zip",
            "rl_model_1000_steps.zip",
        ] {
            assert_eq!(implied_normaliser(&run.join(zip)), None, "{zip}");
        }
        // Statistics in <EnvId>/: every zip of the run has them, even with the config.
        std::fs::write(inner.join(STATISTICS), b"statistics").unwrap();
        std::fs::write(
            inner.join("config.yml"),
            ZOO_CONFIG.replace("VALUE", "true"),
        )
        .unwrap();
        for zip in [
            "Acrobot-v1.zip",
            "best_model.zip",
            "rl_model_1000_steps.zip",
        ] {
            assert_eq!(
                implied_normaliser(&run.join(zip)),
                Some(Normaliser::Statistics(inner.join(STATISTICS))),
                "{zip}"
            );
        }
        std::fs::remove_file(inner.join(STATISTICS)).unwrap();
        // Beside the zip, as a user might copy them.
        std::fs::write(run.join(STATISTICS), b"statistics").unwrap();
        assert_eq!(
            implied_normaliser(&run.join("best_model.zip")),
            Some(Normaliser::Statistics(run.join(STATISTICS)))
        );
        std::fs::remove_file(run.join(STATISTICS)).unwrap();
        // The statistics gone but the config saying it normalised.
        for (value, refused) in [
            ("true", true),
            ("'{''norm_obs'': True, ''norm_reward'': False}'", true),
            ("false", false),
            ("'{''norm_obs'': False, ''norm_reward'': True}'", false),
        ] {
            std::fs::write(inner.join("config.yml"), ZOO_CONFIG.replace("VALUE", value)).unwrap();
            let why = implied_normaliser(&run.join("Acrobot-v1.zip"));
            assert_eq!(why.is_some(), refused, "{value}: {why:?}");
            if let Some(Normaliser::Missing(why)) = why {
                assert!(
                    why.contains("config.yml") && why.contains("normalize"),
                    "{why}"
                );
            }
        }
        std::fs::remove_dir_all(&logs).unwrap();
    }

    #[test]
    fn folders_not_named_like_a_run_add_only_the_zips_own() {
        let folders = folders_of(Path::new("agents/ppo.zip"));
        assert_eq!(
            folders,
            [PathBuf::from("agents"), PathBuf::from("agents/ppo")]
        );
        assert_eq!(folders_of(Path::new("ppo.zip"))[0], PathBuf::from("."));
        assert_eq!(
            run_folder_env_id("MountainCar-v0_12"),
            Some("MountainCar-v0")
        );
        for name in ["MountainCar-v0", "ppo_", "_3", "runs_a1"] {
            assert_eq!(run_folder_env_id(name), None, "{name}");
        }
    }

    #[test]
    fn a_run_folder_gives_the_model_asked_for() {
        let logs = scratch("runs");
        let run = logs.join("CartPole-v1_3");
        std::fs::create_dir_all(run.join("CartPole-v1")).unwrap();
        assert_eq!(
            zoo_run(&run, ZooModel::Final).unwrap(),
            None,
            "nothing in it"
        );
        std::fs::write(run.join("CartPole-v1/args.yml"), "algo: ppo\nseed: 7\n").unwrap();
        let error = zoo_run(&run, ZooModel::Final).unwrap_err().to_string();
        assert!(
            error.contains("CartPole-v1.zip") && error.contains("missing"),
            "{error}"
        );
        std::fs::write(run.join("CartPole-v1.zip"), b"zip").unwrap();
        let found = zoo_run(&run, ZooModel::Final).unwrap().unwrap();
        assert_eq!(
            (found.model, found.seed),
            (run.join("CartPole-v1.zip"), Some(7))
        );
        let error = zoo_run(&run, ZooModel::Best).unwrap_err().to_string();
        assert!(
            error.contains("best_model.zip") && error.contains("--eval-freq"),
            "{error}"
        );
        std::fs::write(run.join("best_model.zip"), b"zip").unwrap();
        let best = zoo_run(&run, ZooModel::Best).unwrap().unwrap();
        assert_eq!(best.model, run.join("best_model.zip"));
        let unnumbered = logs.join("CartPole-v1");
        std::fs::create_dir_all(&unnumbered).unwrap();
        std::fs::write(unnumbered.join("CartPole-v1.zip"), b"zip").unwrap();
        assert_eq!(zoo_run(&unnumbered, ZooModel::Final).unwrap(), None);
        std::fs::remove_dir_all(&logs).unwrap();
    }

    #[test]
    fn env_kwargs_are_read_in_every_form_rl_zoo_and_users_write() {
        let ordered = "!!python/object/apply:collections.OrderedDict\n\
            - - - env\n    - Pendulum-v1\n  - - env_kwargs\n    - g: 2.0\n      \
            max_episode_steps: 100\n      render_mode: null\n  - - eval_env_kwargs\n    - null\n";
        assert_eq!(
            mapping_of(ordered, "env_kwargs").unwrap(),
            [
                ("g", "2.0"),
                ("max_episode_steps", "100"),
                ("render_mode", "null")
            ]
        );
        let plain = "env: CartPole-v1\nenv_kwargs:\n  sutton_barto_reward: true\nseed: 3\n";
        assert_eq!(
            mapping_of(plain, "env_kwargs").unwrap(),
            [("sutton_barto_reward", "true")]
        );
        for flow in [
            "env_kwargs: {g: 2, 'max_episode_steps': 9}\n",
            "- - env_kwargs\n  - {g: 2, 'max_episode_steps': 9}\n",
        ] {
            assert_eq!(
                mapping_of(flow, "env_kwargs").unwrap(),
                [("g", "2"), ("max_episode_steps", "9")],
                "{flow}"
            );
        }
        for none in [
            "- - env_kwargs\n  - null\n- - seed\n  - 1\n",
            "env_kwargs: {}\n",
            "env_kwargs:\nseed: 1\n",
            "seed: 1\n",
        ] {
            assert_eq!(mapping_of(none, "env_kwargs").unwrap(), [], "{none}");
        }
        for nested in [
            "env_kwargs:\n  wrapper:\n    a: 1\n",
            "env_kwargs: {a: [1, 2]}\n",
            "- - env_kwargs\n  - 5\n",
        ] {
            assert!(mapping_of(nested, "env_kwargs").is_err(), "{nested}");
        }
        assert_eq!(yaml_scalar("2.0"), KwargValue::Float(2.0));
        assert_eq!(yaml_scalar("1e-3"), KwargValue::Float(1e-3));
        assert_eq!(yaml_scalar("100"), KwargValue::Int(100));
        assert_eq!(yaml_scalar("True"), KwargValue::Bool(true));
        assert_eq!(yaml_scalar("'100'"), KwargValue::Str("100"));
        assert_eq!(yaml_scalar("inf"), KwargValue::Str("inf"));
    }

    #[test]
    fn a_run_folders_env_comes_with_its_keyword_arguments_or_is_refused_by_name() {
        let run = scratch("env-kwargs").join("Pendulum-v1_1");
        std::fs::create_dir_all(run.join("Pendulum-v1")).unwrap();
        let zip = run.join("Pendulum-v1.zip");
        let args = run.join("Pendulum-v1/args.yml");
        std::fs::write(&args, "env: Pendulum-v1\nenv_kwargs:\n  g: 2.0\n").unwrap();
        let env = zoo_env(&zip).unwrap().unwrap();
        assert_eq!(env.to_string(), "Pendulum-v1(g=2.0)");
        for (kwargs, named) in [
            ("  gravity: 2.0\n", "gravity"),
            ("  g: heavy\n", "must be a number"),
            ("  max_episode_steps: 0\n", "max_episode_steps"),
        ] {
            std::fs::write(&args, format!("env: Pendulum-v1\nenv_kwargs:\n{kwargs}")).unwrap();
            let error = zoo_env(&zip).unwrap_err();
            assert!(
                error.contains("args.yml") && error.contains(named) && error.contains("refused"),
                "{error}"
            );
        }
        std::fs::write(&args, "env: Pendulum-v1\n").unwrap();
        std::fs::write(run.join("Pendulum-v1/config.yml"), "frame_stack: 4\n").unwrap();
        let error = zoo_env(&zip).unwrap_err();
        assert!(
            error.contains("config.yml") && error.contains("frame_stack"),
            "{error}"
        );
        std::fs::remove_dir_all(run.parent().unwrap()).unwrap();
    }

    #[test]
    fn plain_yaml_and_missing_keys_are_read() {
        assert_eq!(
            value_of("gamma: 0.99\nnormalize: true\n", "normalize"),
            Some("true")
        );
        assert_eq!(value_of("gamma: 0.99\n", "normalize"), None);
        assert_eq!(value_of("normalize_kwargs: 1\n", "normalize"), None);
        assert_eq!(
            value_of("env_kwargs:\n  g: 9.8\nseed: 1\n", "env_kwargs"),
            Some("g: 9.8")
        );
        assert_eq!(value_of("env_kwargs:\nseed: 1\n", "env_kwargs"), Some(""));
        assert!(!normalises("False"));
        assert!(normalises("True"));
    }
}
