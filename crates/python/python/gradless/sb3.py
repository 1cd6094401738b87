"""A drop-in for Stable-Baselines3's ``evaluate_policy``, run by gradless's evaluator."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradless import agents
from gradless.evaluation import evaluate


def evaluate_policy(
    model: Any,
    env: Any,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    return_episode_rewards: bool = False,
) -> tuple[float, float] | tuple[list[float], list[int]]:
    """``stable_baselines3.common.evaluation.evaluate_policy``'s signature and results:
    ``(mean_reward, std_reward)``, or with ``return_episode_rewards`` the per-episode
    ``(rewards, lengths)`` lists. ``env`` is an env id, or a Gymnasium env or an SB3 VecEnv
    whose spec names one of gradless's envs; a ``VecNormalize`` around it has its
    observation statistics applied. Episodes run from gradless's seeds (``gradless.evaluate``'s
    default), with ``model`` anything ``gradless.evaluate`` takes."""
    if isinstance(env, str):
        env_id, normalize = env.removeprefix("gradless/"), None
    else:
        env_id = agents.env_id_of(env)
        if env_id is None:
            raise ValueError("env: it names no env id (give an id, or an env made from one)")
        is_normaliser = all(hasattr(env, name) for name in ("obs_rms", "norm_obs", "clip_obs"))
        normalize = env if is_normaliser else None
    result = evaluate(
        model,
        env_id,
        episodes=n_eval_episodes,
        deterministic=deterministic,
        normalize=normalize,
    )
    if return_episode_rewards:
        return [float(r) for r in result.returns], [int(n) for n in result.lengths]
    return float(np.mean(result.returns)), float(np.std(result.returns))
