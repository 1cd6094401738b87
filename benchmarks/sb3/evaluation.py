"""Greedy evaluation and early stopping for Stable-Baselines3 runs, timed the way
`gradless train` evaluates and times itself: 100 greedy episodes, episode i from seed
1_000_000 + i, evaluation time left out of the training time."""

import time

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

EVAL_EPISODES = 100
EVAL_SEED = 1_000_000


def greedy_mean_return(model, env_id):
    """Exactly EVAL_EPISODES episodes side by side, each counted once."""
    envs = gym.make_vec(env_id, num_envs=EVAL_EPISODES, vectorization_mode="sync")
    observations, _ = envs.reset(seed=EVAL_SEED)
    returns = np.zeros(EVAL_EPISODES)
    finished = np.zeros(EVAL_EPISODES, dtype=bool)
    restarting = np.zeros(EVAL_EPISODES, dtype=bool)
    while not finished.all():
        actions, _ = model.predict(observations, deterministic=True)
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        # Next-step autoreset: an env that just ended returns a reset step next.
        counting = ~finished & ~restarting
        returns[counting] += rewards[counting]
        ended = (terminated | truncated) & counting
        finished |= ended
        restarting = terminated | truncated
    envs.close()
    return float(returns.mean())


class EvaluateAndStop(BaseCallback):
    """Evaluates every `every` steps; stops at `target` when one is given."""

    def __init__(self, env_id, every, target=None, evaluate=True):
        super().__init__()
        self.env_id, self.every, self.target, self.evaluate = env_id, every, target, evaluate
        self.eval_seconds = 0.0
        self.evaluations = []

    def _on_step(self):
        if not self.evaluate or self.num_timesteps % self.every != 0:
            return True
        started = time.perf_counter()
        mean = greedy_mean_return(self.model, self.env_id)
        self.eval_seconds += time.perf_counter() - started
        self.evaluations.append((self.num_timesteps, mean))
        return self.target is None or mean < self.target

    def first_reaching(self, target):
        return next((step for step, mean in self.evaluations if mean >= target), None)


def learn_and_report(model, total_timesteps, callback, seed, target, **fields):
    """Trains `model` with `callback` evaluating and stopping it, and reports the run as
    `gradless train` does: training seconds without the evaluations, the step at which the
    greedy mean first reached `target`, every evaluation. `fields` go in after the library."""
    import torch

    started = time.perf_counter()
    model.learn(total_timesteps=total_timesteps, callback=callback)
    elapsed = time.perf_counter() - started
    return {
        "library": "stable-baselines3",
        **fields,
        "seed": seed,
        "torch_threads": torch.get_num_threads(),
        "global_step": int(model.num_timesteps),
        "train_seconds": elapsed - callback.eval_seconds,
        "target_reached_at": callback.first_reaching(target),
        "evaluations": callback.evaluations,
    }
