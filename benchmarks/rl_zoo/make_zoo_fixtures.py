"""Makes the RL Zoo fixtures of gradless's import tests: agents trained by RL Zoo's own
entry point with its own hyperparameter files (short budgets), kept in RL Zoo's layout, with
the returns SB3 gives them on Gymnasium with RL Zoo's saved normalisation, episode by
episode.

Run by hand, not by CI (the fixtures are committed):

    python3 -m venv .venv && .venv/bin/pip install rl_zoo3 sb3-contrib "pandas<3"
    .venv/bin/python benchmarks/rl_zoo/make_zoo_fixtures.py crates/import/tests/fixtures/zoo

Writes, under the folder, `<algo>/<EnvId>_1/<EnvId>.zip` and `<algo>/<EnvId>_1/<EnvId>/`
with `vecnormalize.pkl` (where RL Zoo normalises), `config.yml` and `args.yml`, as
`python -m rl_zoo3.train -f logs` leaves them (its monitor files and evaluations left out),
and `expected_returns.json`: per zip, its env, the first seed and the greedy returns. Episode
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
EPISODES = 20
RUNS = [("ppo", "Acrobot-v1", 30_000)]


def returns_of(zip_path, env_id, statistics):
    algo = zip_path.parts[-3]
    model = ALGOS[algo].load(zip_path, device="cpu")
    normalize = None
    if statistics.exists():
        normalize = VecNormalize.load(statistics, DummyVecEnv([lambda: gym.make(env_id)]))
        normalize.training = False
        normalize.norm_reward = False
    env = gym.make(env_id)
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
    with tempfile.TemporaryDirectory() as logs:
        for algo, env_id, steps in RUNS:
            subprocess.run(
                [sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", env_id,
                 "-n", str(steps), "-f", logs, "--seed", "1"],
                check=True, capture_output=True,
            )
            source = Path(logs) / algo / f"{env_id}_1"
            run = out / algo / f"{env_id}_1"
            (run / env_id).mkdir(parents=True, exist_ok=True)
            shutil.copy(source / f"{env_id}.zip", run / f"{env_id}.zip")
            for name in ("vecnormalize.pkl", "config.yml", "args.yml"):
                if (source / env_id / name).exists():
                    shutil.copy(source / env_id / name, run / env_id / name)
            zip_path = run / f"{env_id}.zip"
            expected[str(zip_path.relative_to(out))] = {
                "env": env_id,
                "first_seed": FIRST_SEED,
                "returns": returns_of(zip_path, env_id, run / env_id / "vecnormalize.pkl"),
            }
    (out / "expected_returns.json").write_text(json.dumps(expected, indent=1) + "\n")
    for name, entry in expected.items():
        print(name, entry["env"], sum(entry["returns"]) / len(entry["returns"]))


if __name__ == "__main__":
    main()
