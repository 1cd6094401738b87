"""Stable-Baselines3 SAC on Gymnasium's Pendulum-v1 with RL Zoo's hyperparameters (20k
steps, learning rate 1e-3, SB3's defaults otherwise: 256-256 ReLU, batch 256, tau 0.005,
automatic entropy tuning), evaluated and timed the way `gradless train` does it with
configs/pendulum_sac.toml (greedy, 100 episodes every 5,000 steps; evaluation time left out).

Run by hand (not by CI):
    python3 -m venv ~/.venvs/sb3 && ~/.venvs/sb3/bin/pip install stable-baselines3 gymnasium
    ~/.venvs/sb3/bin/python benchmarks/sb3/sac_pendulum.py --seeds 1 2 3
Prints one JSON line per seed.
"""

import argparse
import json

import gymnasium as gym
import torch
from stable_baselines3 import SAC

from evaluation import EvaluateAndStop, learn_and_report

ENV = "Pendulum-v1"
EVAL_EVERY = 5_000
TARGET = -200.0


def run(seed, total_timesteps):
    env = gym.make(ENV)
    model = SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, device="cpu")
    callback = EvaluateAndStop(ENV, EVAL_EVERY)
    return learn_and_report(model, total_timesteps, callback, seed, TARGET, algorithm="sac")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--total-timesteps", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for seed in args.seeds:
        print(json.dumps(run(seed, args.total_timesteps)), flush=True)


if __name__ == "__main__":
    main()
