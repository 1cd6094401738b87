"""Gymnasium vector envs stepped in Rust: ``make_vec`` and the ``VectorEnv`` it returns."""

from __future__ import annotations

import time
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

    The arrays ``reset`` and ``step`` return are this env's own buffers, filled again by
    the next call: copy what must outlive it (``obs.copy()``).
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        *,
        seed: int | None = None,
        autoreset_mode: AutoresetMode | str = "next_step",
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(f"num_envs must be an int, got {type(num_envs).__name__}")
        mode = _autoreset_mode(autoreset_mode)
        native_mode = "next_step" if mode == AutoresetMode.NEXT_STEP else "same_step"
        self._env = _native.VectorEnv(
            env_id, int(num_envs), native_mode, max_episode_steps, **kwargs
        )
        self.num_envs = int(num_envs)
        self.single_observation_space = space_from_parts(self._env.observation_space())
        self.single_action_space = space_from_parts(self._env.action_space())
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": mode, "render_modes": []}
        self._discrete = isinstance(self.single_action_space, gymnasium.spaces.Discrete)
        self._first_seed = seed
        self._was_reset = False
        # RecordEpisodeStatistics' "t": seconds since each sub-env's episode began.
        self._episode_start = np.zeros(self.num_envs)
        self._previous_done = np.zeros(self.num_envs, dtype=bool)

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
            seeds = [_seed(s) for s in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
            observations = self._env.reset(seeds=seeds)
        else:
            observations = self._env.reset(seed=None if seed is None else _seed(seed))
        self._was_reset = True
        self._episode_start[:] = time.perf_counter()
        self._previous_done[:] = False
        return observations, {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._discrete:
            flat = np.ascontiguousarray(actions, dtype=np.int64).reshape(-1)
            expected = self.num_envs
            step = self._env.step_discrete
        else:
            flat = np.ascontiguousarray(actions, dtype=np.float32).reshape(-1)
            expected = self.num_envs * int(np.prod(self.single_action_space.shape))
            step = self._env.step_continuous
        if flat.size != expected:
            raise ValueError(
                f"{flat.size} action values for {self.num_envs} envs (expected {expected})"
            )
        observations, rewards, terminated, truncated, episodes = step(flat)
        infos = self._infos(terminated, truncated, episodes)
        return observations, rewards, terminated, truncated, infos

    def _infos(self, terminated, truncated, episodes) -> dict[str, Any]:
        now = time.perf_counter()
        same_step = self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        if not same_step:
            # Next-step autoreset: the step after an episode ended started the next one.
            self._episode_start[self._previous_done] = now
        done = np.logical_or(terminated, truncated)
        self._previous_done = done.copy()
        infos: dict[str, Any] = {}
        if same_step and done.any():
            finals = self._env.final_observations()
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = finals[i].copy()
            infos["final_obs"] = final_obs
            infos["_final_obs"] = done.copy()
            infos["final_info"] = {}
            infos["_final_info"] = done.copy()
        indices, returns, lengths = episodes
        if indices:
            r = np.zeros(self.num_envs)
            l = np.zeros(self.num_envs, dtype=int)
            r[indices] = returns
            l[indices] = lengths
            t = np.where(done, np.round(now - self._episode_start, 6), 0.0)
            infos["episode"] = {"r": r, "l": l, "t": t}
            infos["_episode"] = done.copy()
            if same_step:
                self._episode_start[done] = now
        return infos

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
    ``max_episode_steps`` replaces the registered time limit; ``kwargs`` are the env's own
    keyword arguments (``sutton_barto_reward`` for CartPole). ``threads`` other than ``None``
    or 1 is refused for now: the envs step on the calling thread.
    """
    if threads not in (None, 1):
        raise ValueError(f"threads={threads!r}: gradless's vector envs step on one thread for now")
    return VectorEnv(
        env_id,
        num_envs,
        seed=seed,
        autoreset_mode=autoreset_mode,
        max_episode_steps=max_episode_steps,
        **kwargs,
    )
