"""Wall time of evaluating an SB3 PPO CartPole model over 100 episodes: gradless.evaluate
(and gradless.sb3.evaluate_policy) against Stable-Baselines3's evaluate_policy, in
alternating rounds, imports excluded.

    python benchmarks/python/bench_evaluate.py --gradless target/release/gradless --rounds 5

The model is the shipped PPO agent (checkpoints/cartpole-v1-ppo, 64-64 tanh, SB3's default
MlpPolicy shape) moved into an SB3 PPO: `gradless export` writes its actor as safetensors,
read here with NumPy, and copied into the policy's `mlp_extractor.policy_net` and
`action_net`. Its greedy episodes last 500 steps, so every contender steps the same ~50,000
env steps. SB3 is timed on one env (its usual call) and on 16 (a DummyVecEnv: the batch
gradless steps). Prints one JSON line per contender with every round's seconds, the
median, and the median of the per-round ratios SB3 / gradless.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import struct
import subprocess
import tempfile
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

import gradless

ROOT = pathlib.Path(__file__).resolve().parents[2]
EPISODES = 100


def read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file (8-byte header size, JSON header, data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    data = raw[8 + size :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", entry
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=np.float32).reshape(entry["shape"])
    return tensors


def shipped_as_sb3(binary: str) -> PPO:
    """An SB3 PPO whose actor is the shipped agent's."""
    with tempfile.TemporaryDirectory() as scratch:
        out = pathlib.Path(scratch) / "policy.safetensors"
        subprocess.run(
            [binary, "export", str(ROOT / "checkpoints/cartpole-v1-ppo"), "--out", str(out)],
            check=True,
            capture_output=True,
        )
        exported = read_safetensors(out)
    model = PPO("MlpPolicy", "CartPole-v1", device="cpu", seed=0)
    state = model.policy.state_dict()
    for ours, theirs in (
        ("0", "mlp_extractor.policy_net.0"),
        ("2", "mlp_extractor.policy_net.2"),
        ("4", "action_net"),
    ):
        for part in ("weight", "bias"):
            state[f"{theirs}.{part}"] = torch.as_tensor(exported[f"{ours}.{part}"].copy())
    model.policy.load_state_dict(state)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gradless", required=True, help="the gradless CLI (for export)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    model = shipped_as_sb3(args.gradless)
    one_env = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    sixteen = DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(16)])
    contenders = {
        "gradless.evaluate": lambda: gradless.evaluate(
            model, "CartPole-v1", episodes=EPISODES, device="flex"
        ).returns,
        "gradless.sb3.evaluate_policy": lambda: gradless.sb3.evaluate_policy(
            model, "CartPole-v1", n_eval_episodes=EPISODES, return_episode_rewards=True
        )[0],
        "sb3 evaluate_policy, 1 env": lambda: evaluate_policy(
            model, one_env, n_eval_episodes=EPISODES, return_episode_rewards=True
        )[0],
        "sb3 evaluate_policy, 16 envs": lambda: evaluate_policy(
            model, sixteen, n_eval_episodes=EPISODES, return_episode_rewards=True
        )[0],
    }
    for run in contenders.values():  # warm-up: first calls, lazy imports, allocations
        run()
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    means: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            returns = run()
            seconds[name].append(time.perf_counter() - start)
            means[name] = float(np.mean(returns))
    ours = seconds["gradless.evaluate"]
    for name, times in seconds.items():
        ratios = [t / o for t, o in zip(times, ours)]
        print(
            json.dumps(
                {
                    "contender": name,
                    "episodes": EPISODES,
                    "mean_return": means[name],
                    "median_s": statistics.median(times),
                    "rounds_s": [round(t, 4) for t in times],
                    "median_ratio_to_gradless_evaluate": statistics.median(ratios),
                }
            )
        )


if __name__ == "__main__":
    main()
