"""Evaluation throughput of PyTorch + Gymnasium: the same network as a gradless checkpoint
(loaded from `gradless export`'s safetensors), greedy actions under torch.inference_mode(),
stepping Gymnasium's vectorised CartPoleVectorEnv (numpy). Counterpart of
`gradless bench eval`: the median of timed windows after a warm-up window, one JSON line per
size.

Run by hand (not by CI):
    cargo run --release -p gradless -- export checkpoints/cartpole-v1-ppo --out /tmp/ppo.safetensors
    ~/.venvs/sb3/bin/python benchmarks/torch/bench_eval.py /tmp/ppo.safetensors --num-envs 1 16 1024
"""

import argparse
import json
import statistics
import time

import gymnasium as gym
import torch

from exported import load


def window(network, envs, observations, num_envs, seconds):
    steps = 0
    start = time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - start < seconds:
            logits = network(torch.from_numpy(observations))
            actions = logits.argmax(dim=1).numpy()
            observations, _, _, _, _ = envs.step(actions)
            steps += num_envs
    return observations, steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 16, 1024])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    network, metadata = load(args.file)
    for num_envs in args.num_envs:
        envs = gym.make_vec(metadata["env_id"], num_envs=num_envs, vectorization_mode="vector_entry_point")
        observations, _ = envs.reset(seed=0)
        rates = []
        for repeat in range(args.repeats + 1):
            observations, rate = window(network, envs, observations, num_envs, args.seconds)
            if repeat > 0:
                rates.append(rate)
        envs.close()
        print(json.dumps({
            "library": "pytorch+gymnasium",
            "torch_threads": torch.get_num_threads(),
            "num_envs": num_envs,
            "steps_per_sec": statistics.median(rates),
            "repeats": args.repeats,
        }), flush=True)


if __name__ == "__main__":
    main()
