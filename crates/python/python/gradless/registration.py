"""gradless's envs in Gymnasium's registry, as ``gradless/<id>``."""

from __future__ import annotations

import functools

import gymnasium

from gradless import _native
from gradless.single import Env
from gradless.vector import VectorEnv

NAMESPACE = "gradless"


def register_envs() -> None:
    """Registers ``gradless/CartPole-v1`` and the others with Gymnasium (once), with the
    step limits and reward thresholds of Gymnasium's own ids: ``gymnasium.make`` gives one
    env, ``gymnasium.make_vec`` a gradless ``VectorEnv``."""
    for env_id in _native.known_ids():
        name = f"{NAMESPACE}/{env_id}"
        if name in gymnasium.registry:
            continue
        theirs = gymnasium.spec(env_id)
        gymnasium.register(
            id=name,
            entry_point=functools.partial(Env, env_id),
            vector_entry_point=functools.partial(VectorEnv, env_id),
            max_episode_steps=theirs.max_episode_steps,
            reward_threshold=theirs.reward_threshold,
        )
