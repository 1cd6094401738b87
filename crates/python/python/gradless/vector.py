"""Gymnasium vector envs stepped in Rust: ``make_vec`` and the ``VectorEnv`` it returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import gymnasium
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from gradless import _native
from gradless.spaces import space_from_parts

_MODES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
}


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        chosen = mode
    else:
        by_value = {m.value: m for m in AutoresetMode}
        chosen = _MODES.get(mode) or by_value.get(mode)
        if chosen is None:
            raise ValueError(
                f'autoreset_mode must be "next_step" or "same_step", got {mode!r}'
            )
    if chosen not in _MODES.values():
        raise ValueError(f"autoreset_mode {chosen} is not supported (next_step, same_step)")
    return chosen


class VectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of a classic-control env stepped together in Rust.

    Gymnasium's ``VectorEnv`` API and semantics: ``reset(seed=S)`` seeds sub-env ``i``
    with ``S + i`` (a list seeds each), float32 observations, float64 rewards, bool
    flags, next-step or same-step autoreset, and ``infos["episode"]`` /
    ``infos["_episode"]`` as ``RecordEpisodeStatistics`` writes them. The same seeds and
    actions give the trajectories of ``gymnasium.make_vec(id, n,
    vectorization_mode="sync")`` bit for bit.

    The arrays ``reset`` and ``step`` return (``infos["episode"]``'s and
    ``infos["_episode"]`` included) are this env's own buffers, filled again by the next
    call: copy what must outlive it (``obs.copy()``).
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        *,
        seed: int | None = None,
        autoreset_mode: AutoresetMode | str = "next_step",
        max_episode_steps: int | None = None,
        threads: int | None = None,
        **kwargs: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(f"num_envs must be an int, got {type(num_envs).__name__}")
        mode = _autoreset_mode(autoreset_mode)
        native_mode = "next_step" if mode == AutoresetMode.NEXT_STEP else "same_step"
        self._env = _native.VectorEnv(
            env_id,
            int(num_envs),
            native_mode,
            max_episode_steps,
            1 if threads is None else threads,
            **kwargs,
        )
        self.num_envs = int(num_envs)
        self.single_observation_space = space_from_parts(self._env.observation_space())
        self.single_action_space = space_from_parts(self._env.action_space())
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": mode, "render_modes": []}
        self._first_seed = seed
        self._was_reset = False

    def reset(
        self,
        *,
        seed: int | list[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options:
            raise ValueError(
                f"options {sorted(options)} are not supported by gradless's vector envs"
            )
        if seed is None and not self._was_reset:
            seed = self._first_seed
        if isinstance(seed, (list, tuple, np.ndarray)):
            observations = self._env.reset(seeds=[_seed(s) for s in seed])
        else:
            observations = self._env.reset(seed=None if seed is None else _seed(seed))
        self._was_reset = True
        return observations, {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        return self._env.step(actions)

    def close_extras(self, **kwargs: Any) -> None:
        self._env = None


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seeds must be ints, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seeds must be between 0 and 2**64 - 1, got {seed}")
    return int(seed)


def make_vec(
    env_id: str,
    num_envs: int = 1,
    *,
    seed: int | None = None,
    autoreset_mode: AutoresetMode | str = "next_step",
    threads: int | None = None,
    max_episode_steps: int | None = None,
    **kwargs: Any,
) -> VectorEnv:
    """``num_envs`` copies of ``env_id`` (``CartPole-v1``, ``Acrobot-v1``, ...) stepped in Rust.

    ``seed`` seeds the first ``reset()`` that names none (sub-env ``i`` with ``seed + i``);
    ``threads`` splits the envs between that many threads (``None``: the calling thread
    alone; trajectories do not depend on it); ``max_episode_steps`` replaces the registered
    time limit; ``kwargs`` are the env's own keyword arguments, as Gymnasium's
    (``sutton_barto_reward`` for CartPole, ``g`` for Pendulum).
    """
    return VectorEnv(
        env_id,
        num_envs,
        seed=seed,
        autoreset_mode=autoreset_mode,
        max_episode_steps=max_episode_steps,
        threads=threads,
        **kwargs,
    )
