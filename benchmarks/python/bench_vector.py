"""Random-action env steps per second from Python: gradless.make_vec against EnvPool and
Gymnasium's own vector env (and gymnasium.make at one env), in alternating rounds.

    python benchmarks/python/bench_vector.py --num-envs 1 1024 65536 --threads 2 --rounds 3

Each round times every contender for --seconds after a short warm-up; the actions are
drawn before timing (the same pool of arrays for every contender), so what is timed is
the step call and what it returns. Prints one JSON line per contender and size with the
median over rounds and each round's rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import gymnasium

import gradless


def contenders(env_id: str, num_envs: int, threads: int):
    """(name, make) pairs; make returns (step, reset) callables."""

    def ours():
        env = gradless.make_vec(env_id, num_envs, threads=None if threads == 1 else threads)
        return env.step, env.reset

    def gymnasium_vector():
        env = gymnasium.make_vec(env_id, num_envs)
        return env.step, env.reset

    def gymnasium_single():
        env = gymnasium.make(env_id)

        def step(action):
            result = env.step(int(action[0]))
            if result[2] or result[3]:
                env.reset()
            return result

        return step, env.reset

    def envpool_vector():
        import envpool

        env = envpool.make_gymnasium(env_id, num_envs=num_envs, num_threads=threads, seed=0)
        return env.step, env.reset

    found = [("gradless", ours), ("gymnasium.make_vec", gymnasium_vector)]
    if num_envs == 1:
        found.append(("gymnasium.make", gymnasium_single))
    try:
        import envpool  # noqa: F401

        found.append((f"envpool ({threads} threads)", envpool_vector))
    except ImportError:
        pass
    return found


def rate(step, reset, actions, seconds: float, num_envs: int) -> float:
    reset(seed=0)
    for a in actions[:8]:
        step(a)
    steps, started = 0, time.perf_counter()
    while True:
        for a in actions:
            step(a)
        steps += len(actions)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return steps * num_envs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 1024, 65536])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for num_envs in args.num_envs:
        actions = [rng.integers(0, 2, num_envs).astype(np.int64) for _ in range(16)]
        made = [(name, make()) for name, make in contenders(args.env, num_envs, args.threads)]
        rates: dict[str, list[float]] = {name: [] for name, _ in made}
        for _ in range(args.rounds):
            for name, (step, reset) in made:
                rates[name].append(rate(step, reset, actions, args.seconds, num_envs))
        for name, rounds in rates.items():
            print(json.dumps({
                "env": args.env,
                "num_envs": num_envs,
                "contender": name,
                "steps_per_sec": statistics.median(rounds),
                "rounds": [round(r) for r in rounds],
            }))


if __name__ == "__main__":
    main()
