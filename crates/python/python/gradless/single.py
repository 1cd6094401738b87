"""One env for ``gymnasium.make("gradless/<id>")``."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import gymnasium

from gradless import _native
from gradless.spaces import space_from_parts


class Env(gymnasium.Env):
    """One classic-control env stepped in Rust, with no time limit of its own:
    ``gymnasium.make`` adds ``TimeLimit`` from the registered ``max_episode_steps``."""

    metadata = {"render_modes": []}

    def __init__(self, env_id: str, **kwargs: Any):
        self._env = _native.Env(env_id, **kwargs)
        self.observation_space = space_from_parts(self._env.observation_space())
        self.action_space = space_from_parts(self._env.action_space())
        self._discrete = isinstance(self.action_space, gymnasium.spaces.Discrete)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options:
            raise ValueError(f"options {sorted(options)} are not supported by gradless's envs")
        super().reset(seed=seed)
        return self._env.reset(seed), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._discrete:
            # An index, not int(): int() would truncate 0.5 into action 0 without a word.
            index = operator.index(action)
            observation, reward, terminated, truncated = self._env.step_discrete(index)
        else:
            flat = np.ascontiguousarray(action, dtype=np.float32).reshape(-1)
            observation, reward, terminated, truncated = self._env.step_continuous(flat)
        return observation, reward, terminated, truncated, {}
