"""Gymnasium's env-stepping throughput, measured the way `gradless bench envs` measures ours.

Run by hand in the Gymnasium virtualenv (see make_fixtures.py), on the machine where the
gradless figures are taken, single-threaded:

    .venv/bin/python benchmarks/gymnasium/bench_envs.py --num-envs 1,1024,65536

One JSON line per size: {"env", "num_envs", "steps_per_sec", "impl"}. The single env is
`gym.make(id)` (with its wrappers, as users get it); vector sizes use Gymnasium's numpy
`CartPoleVectorEnv`. Actions are drawn with `action_space.sample()` inside the timed loop, and
each figure is the median of several timed windows after a warm-up window.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv  # noqa: E402


def window_single(env_id, seconds, seed):
    env = gym.make(env_id)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(256):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        steps += 256
        if time.perf_counter() >= deadline:
            return steps / (time.perf_counter() - start)


def window_vector(num_envs, seconds, seed):
    envs = CartPoleVectorEnv(num_envs=num_envs)
    envs.action_space.seed(seed)
    envs.reset(seed=seed)
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        envs.step(envs.action_space.sample())
        steps += num_envs
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-envs", default="1,1024,65536")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for num_envs in (int(n) for n in args.num_envs.split(",")):
        if num_envs > 1 and not args.env.startswith("CartPole"):
            raise SystemExit("Gymnasium has a numpy vector env for CartPole only")
        measure = (lambda s: window_single(args.env, args.seconds, s)) if num_envs == 1 else (
            lambda s: window_vector(num_envs, args.seconds, s)
        )
        rates = [measure(seed) for seed in range(args.repeats + 1)][1:]  # first window warms up
        print(
            json.dumps(
                {
                    "env": args.env,
                    "num_envs": num_envs,
                    "steps_per_sec": statistics.median(rates),
                    "impl": "gym.make" if num_envs == 1 else "CartPoleVectorEnv",
                    "gymnasium": gym.__version__,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
