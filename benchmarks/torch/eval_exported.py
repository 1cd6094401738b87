"""Evaluate a policy exported by `gradless export` in PyTorch on Gymnasium's own env.

Loads the safetensors file into torch.nn.Sequential(Linear, Act, ..., Linear), runs
greedy episodes (episode i from seed SEED + i, as `gradless eval` does) in Gymnasium's
own env (the one the policy was trained on, or --env), applying its observation
statistics and action transform as gradless does, and prints one JSON object: the
per-episode returns and their mean.
The returns should equal `gradless eval --json`'s for the same checkpoint and seeds.

Run by hand (not by CI):
    ~/.venvs/sb3/bin/pip install safetensors   # beside torch and gymnasium
    cargo run --release -p gradless -- export checkpoints/cartpole-v1-ppo --out /tmp/ppo.safetensors
    ~/.venvs/sb3/bin/python benchmarks/torch/eval_exported.py /tmp/ppo.safetensors --episodes 100
"""

import argparse
import json

import gymnasium as gym
import torch

from exported import greedy_action, load

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--env", default=None, help="default: the env the policy was trained on")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1_000_000)
    args = parser.parse_args()
    network, metadata = load(args.file)
    env = gym.make(args.env or metadata["env_id"])
    returns = []
    with torch.inference_mode():
        for i in range(args.episodes):
            observation, _ = env.reset(seed=args.seed + i)
            total, done = 0.0, False
            while not done:
                action = greedy_action(network, metadata, observation)
                observation, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    print(json.dumps({"episodes": len(returns), "mean_return": sum(returns) / len(returns), "returns": returns}))


if __name__ == "__main__":
    main()
