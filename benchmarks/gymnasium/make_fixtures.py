"""Record reference trajectories from the real Gymnasium for gradless-envs' parity tests.

Run by hand (not by CI) in a virtualenv with Gymnasium 1.4:

    python3 -m venv .venv && .venv/bin/pip install gymnasium==1.4.0
    .venv/bin/python benchmarks/gymnasium/make_fixtures.py envs/tests/fixtures

Writes, into the given folder:
  replay_input.json     cases in the replay input format (env, init_state, actions[, options])
  replay_expected.json  what Gymnasium returned for each case (obs, reward, terminated, truncated)
  resets.json           seeded reset observations and states
  vector.json           seeded sync vector envs stepped with fixed actions (next-step autoreset,
                        with RecordEpisodeStatistics)
"""

import json
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

IDS = [
    "CartPole-v0",
    "CartPole-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
    "Acrobot-v1",
]
CONTINUOUS = {"MountainCarContinuous-v0", "Pendulum-v1"}


def to_env_action(env_id, action):
    if env_id in CONTINUOUS:
        return np.array([action], dtype=np.float32)
    return int(action)


def run_case(env_id, init_state, policy, max_steps, options=None):
    """Starts `env_id` from `init_state` and steps `policy(obs, step)` until the episode ends.

    Returns the case (with the actions actually taken) and Gymnasium's steps."""
    env = gym.make(env_id, **(options or {}))
    env.reset(seed=0)
    env.unwrapped.state = np.array(init_state, dtype=np.float64)
    obs = None
    actions, steps = [], []
    for t in range(max_steps):
        action = policy(env.unwrapped.state, t)
        if env_id in CONTINUOUS:
            action = float(np.float32(action))
        obs, reward, terminated, truncated, _ = env.step(to_env_action(env_id, action))
        actions.append(action)
        steps.append(
            {
                "obs": [float(v) for v in np.asarray(obs, dtype=np.float32)],
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
            }
        )
        if terminated or truncated:
            break
    case = {"env": env_id, "init_state": [float(v) for v in init_state], "actions": actions}
    if options:
        case["options"] = options
    return case, {"env": env_id, "steps": steps}


def random_policy(env_id, seed):
    rng = np.random.default_rng(seed)
    if env_id == "Pendulum-v1":
        return lambda s, t: rng.uniform(-3.0, 3.0)  # beyond the bounds: the env clips
    if env_id == "MountainCarContinuous-v0":
        return lambda s, t: rng.uniform(-1.5, 1.5)
    n = gym.make(env_id).action_space.n
    return lambda s, t: int(rng.integers(n))


def controlled_policy(env_id):
    """Simple controllers that reach the interesting ends of each task."""
    if env_id.startswith("CartPole"):
        return lambda s, t: int(s[2] + 0.5 * s[3] > 0)  # balances: reaches truncation
    if env_id == "MountainCar-v0":
        return lambda s, t: 2 if s[1] >= 0 else 0  # pumps energy: reaches the flag
    if env_id == "MountainCarContinuous-v0":
        return lambda s, t: 1.0 if s[1] >= 0 else -1.0
    if env_id == "Acrobot-v1":
        return lambda s, t: 2 if s[3] >= 0 else 0  # pumps the second link: swings up, terminates
    if env_id == "Pendulum-v1":
        return lambda s, t: float(np.clip(-8.0 * math.sin(s[0]) - 2.0 * s[1], -2.0, 2.0))
    raise ValueError(env_id)


def reset_state(env_id, seed):
    env = gym.make(env_id)
    env.reset(seed=seed)
    return [float(v) for v in np.asarray(env.unwrapped.state, dtype=np.float64)]


# Starts next to the termination thresholds and the walls, where strict inequalities and
# clipping decide the outcome.
EDGE_STATES = {
    "CartPole-v0": [[2.39, 0.6, 0.0, 0.0], [0.0, 0.0, 0.205, 0.3]],
    "CartPole-v1": [[-2.38, -0.9, 0.05, 0.0], [0.0, 0.0, -0.2, -0.4], [1.0, 0.0, 0.0, 0.0]],
    "MountainCar-v0": [[0.45, 0.05, ], [-1.19, -0.06], [0.49, 0.0]],
    "MountainCarContinuous-v0": [[0.42, 0.04], [-1.19, -0.06]],
    "Pendulum-v1": [[math.pi, 0.0], [0.1, 7.9], [-3.0, -8.0]],
    "Acrobot-v1": [[2.8, 0.3, 1.0, 0.5], [-3.1, 3.1, 12.0, 28.0]],
}


def replay_cases():
    inputs, expected = [], []

    def add(*args, **kwargs):
        case, result = run_case(*args, **kwargs)
        inputs.append(case)
        expected.append(result)

    for index, env_id in enumerate(IDS):
        limit = gym.make(env_id).spec.max_episode_steps
        for seed in (1, 2):
            add(env_id, reset_state(env_id, seed), random_policy(env_id, 100 * index + seed), limit + 5)
        add(env_id, reset_state(env_id, 3), controlled_policy(env_id), limit + 5)
        for k, state in enumerate(EDGE_STATES[env_id]):
            add(env_id, state, random_policy(env_id, 1000 * index + k), limit + 5)
    options = {"sutton_barto_reward": True}
    add("CartPole-v1", reset_state("CartPole-v1", 4), random_policy("CartPole-v1", 7), 600, options)
    add("CartPole-v1", [0.0, 0.0, 0.2, 0.5], lambda s, t: 1, 20, options)
    return {"cases": inputs}, {"cases": expected}


def resets():
    out = []
    for env_id in IDS:
        for seed in (0, 1, 42, 2**33 + 7):
            env = gym.make(env_id)
            obs, _ = env.reset(seed=seed)
            second, _ = env.reset()  # continues the same generator
            out.append(
                {
                    "env": env_id,
                    "seed": seed,
                    "obs": [float(v) for v in obs],
                    "state": [float(v) for v in np.asarray(env.unwrapped.state, dtype=np.float64)],
                    "next_reset_obs": [float(v) for v in second],
                }
            )
    return out


def vector_runs():
    runs = []
    for env_id, num_envs, steps in (("CartPole-v1", 4, 300), ("MountainCar-v0", 3, 420), ("Pendulum-v1", 2, 420)):
        envs = gym.wrappers.vector.RecordEpisodeStatistics(
            gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
        )
        obs, _ = envs.reset(seed=123)
        rng = np.random.default_rng(5)
        record = {"env": env_id, "num_envs": num_envs, "seed": 123, "reset_obs": obs.tolist(), "steps": []}
        for _ in range(steps):
            if env_id in CONTINUOUS:
                actions = rng.uniform(-2.0, 2.0, size=(num_envs, 1)).astype(np.float32)
                json_actions = [float(a[0]) for a in actions]
            else:
                actions = rng.integers(envs.single_action_space.n, size=num_envs)
                json_actions = [int(a) for a in actions]
            obs, rewards, terminated, truncated, info = envs.step(actions)
            episodes = []
            if "episode" in info:
                for i in np.nonzero(info["_episode"])[0]:
                    episodes.append(
                        {"env_index": int(i), "return": float(info["episode"]["r"][i]), "length": int(info["episode"]["l"][i])}
                    )
            record["steps"].append(
                {
                    "actions": json_actions,
                    "obs": np.asarray(obs, dtype=np.float32).tolist(),
                    "rewards": [float(r) for r in rewards],
                    "terminated": [bool(b) for b in terminated],
                    "truncated": [bool(b) for b in truncated],
                    "episodes": episodes,
                }
            )
        runs.append(record)
    return runs


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "envs/tests/fixtures")
    out.mkdir(parents=True, exist_ok=True)
    replay_input, replay_expected = replay_cases()
    documents = {
        "replay_input.json": replay_input,
        "replay_expected.json": replay_expected,
        "resets.json": {"gymnasium": gym.__version__, "numpy": np.__version__, "resets": resets()},
        "vector.json": {"gymnasium": gym.__version__, "runs": vector_runs()},
    }
    for name, document in documents.items():
        (out / name).write_text(json.dumps(document, separators=(",", ":")) + "\n")
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
