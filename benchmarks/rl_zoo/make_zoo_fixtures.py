"""Makes the RL Zoo fixtures of gradless's import tests: agents trained by RL Zoo's own
entry point with its own hyperparameter files (short budgets), kept in RL Zoo's layout, with
the returns SB3 gives them on Gymnasium with RL Zoo's saved normalisation, episode by
episode.

Run by hand, not by CI (the fixtures are committed):

    python3 -m venv .venv && .venv/bin/pip install rl_zoo3 sb3-contrib "pandas<3"
    .venv/bin/python benchmarks/rl_zoo/make_zoo_fixtures.py crates/import/tests/fixtures/zoo

Writes, under the folder, `<algo>/<EnvId>_1/<EnvId>.zip` (and `best_model.zip` for the runs
that evaluate during training) and `<algo>/<EnvId>_1/<EnvId>/` with `vecnormalize.pkl`
(where RL Zoo normalises), `config.yml` and `args.yml`, as `python -m rl_zoo3.train -f logs`
leaves them (its monitor files and evaluations left out), and `expected_returns.json`: per
zip, its env and keyword arguments, the first seed and the greedy returns.
`--only ALGO/ENV_ID` remakes one run, keeping the others' entries. Episode
i runs from seed FIRST_SEED + i (`env.reset(seed=...)`), observations normalised by the
run's VecNormalize loaded as RL Zoo's `enjoy` loads it (`training=False`,
`norm_reward=False`), actions from `model.predict(obs, deterministic=True)`.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
from rl_zoo3 import ALGOS
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

FIRST_SEED = 1_000_000
EPISODES = 50
# (algo, env id, training steps, evaluate during training, hyperparameters changed, env
# keyword arguments): RL Zoo's own hyperparameter files, budgets cut to keep the fixtures
# quick to make, and TD3's and DDPG's 400-300 networks and TQC's 256-256 ones (with target
# copies of the critics) cut to 64-64 to keep their files small. A2C's Pendulum agent is
# trained on a lighter pendulum with shorter episodes (`--env-kwargs`).
SMALL = ["policy_kwargs:dict(net_arch=[64, 64])"]
RUNS = [
    ("ppo", "CartPole-v1", 20_000, True, [], {}),
    ("a2c", "CartPole-v1", 20_000, False, [], {}),
    ("dqn", "CartPole-v1", 20_000, False, [], {}),
    ("qrdqn", "CartPole-v1", 20_000, False, [], {}),
    ("ppo", "Acrobot-v1", 30_000, False, [], {}),
    ("dqn", "MountainCar-v0", 120_000, False, [], {}),
    ("sac", "Pendulum-v1", 3_000, False, [], {}),
    ("td3", "Pendulum-v1", 12_000, False, SMALL, {}),
    ("ddpg", "Pendulum-v1", 12_000, False, SMALL, {}),
    ("tqc", "Pendulum-v1", 3_000, False, SMALL, {}),
    ("a2c", "Pendulum-v1", 20_000, False, [], {"g": 2.0, "max_episode_steps": 100}),
    ("ppo", "MountainCarContinuous-v0", 5_000, False, [], {}),
    ("sac", "MountainCarContinuous-v0", 3_000, False, [], {}),
]


def returns_of(zip_path, env_id, env_kwargs, statistics):
    algo = zip_path.parts[-3]
    model = ALGOS[algo].load(zip_path, device="cpu")
    normalize = None
    if statistics.exists():
        normalize = VecNormalize.load(
            statistics, DummyVecEnv([lambda: gym.make(env_id, **env_kwargs)]))
        normalize.training = False
        normalize.norm_reward = False
    env = gym.make(env_id, **env_kwargs)
    returns = []
    for i in range(EPISODES):
        obs, _ = env.reset(seed=FIRST_SEED + i)
        total, done = 0.0, False
        while not done:
            seen = obs if normalize is None else normalize.normalize_obs(obs)
            action = model.predict(seen, deterministic=True)[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def main():
    out = Path(sys.argv[1])
    expected = {}
    runs = RUNS
    if sys.argv[2:3] == ["--only"]:
        expected = json.loads((out / "expected_returns.json").read_text())
        runs = [run for run in RUNS if f"{run[0]}/{run[1]}" == sys.argv[3]]
    with tempfile.TemporaryDirectory() as logs:
        for algo, env_id, steps, evaluated, changed, env_kwargs in runs:
            evaluation = ["--eval-freq", str(steps // 2), "--eval-episodes", "2"] if evaluated \
                else ["--eval-freq", "-1"]
            hyperparams = ["--hyperparams", *changed] if changed else []
            if env_kwargs:
                hyperparams += ["--env-kwargs", *(f"{k}:{v!r}" for k, v in env_kwargs.items())]
            subprocess.run(
                [sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", env_id,
                 "-n", str(steps), "-f", logs, "--seed", "1", *evaluation, *hyperparams],
                check=True, capture_output=True,
            )
            source = Path(logs) / algo / f"{env_id}_1"
            run = out / algo / f"{env_id}_1"
            (run / env_id).mkdir(parents=True, exist_ok=True)
            models = [f"{env_id}.zip"] + (["best_model.zip"] if evaluated else [])
            for model in models:
                shutil.copy(source / model, run / model)
            for name in ("vecnormalize.pkl", "config.yml", "args.yml"):
                if (source / env_id / name).exists():
                    shutil.copy(source / env_id / name, run / env_id / name)
            for model in models:
                zip_path = run / model
                expected[str(zip_path.relative_to(out))] = {
                    "env": env_id,
                    "env_kwargs": env_kwargs,
                    "first_seed": FIRST_SEED,
                    "returns": returns_of(
                        zip_path, env_id, env_kwargs, run / env_id / "vecnormalize.pkl"),
                }
    (out / "expected_returns.json").write_text(json.dumps(expected, indent=1) + "\n")
    for name, entry in expected.items():
        print(name, entry["env"], sum(entry["returns"]) / len(entry["returns"]))


if __name__ == "__main__":
    main()
