"""``gradless.evaluate``: seeded episodes of a saved agent, in inference mode, as ``gradless eval``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradless import _native


@dataclass(frozen=True)
class Evaluation:
    """The episodes of one evaluation (episode ``i`` ran from seed ``seeds[i]``) and the
    summary ``gradless eval`` prints."""

    returns: np.ndarray
    lengths: np.ndarray
    seeds: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    mean: float
    std: float
    median: float
    iqm: float
    iqm_ci95: tuple[float, float]
    truncated_fraction: float
    checkpoint: str
    env: str
    env_backend: str

    def to_dict(self) -> dict[str, Any]:
        """The summary and the episodes as plain Python values (lists for the arrays)."""
        return {
            key: value.tolist() if isinstance(value, np.ndarray) else value
            for key, value in self.__dict__.items()
        }


def evaluate(
    agent: str | os.PathLike,
    env_id: str | None = None,
    *,
    episodes: int = 100,
    seed: int = 1_000_000,
    num_envs: int = 16,
    deterministic: bool = True,
    device: str = "auto",
    activation: str | None = None,
) -> Evaluation:
    """Runs ``episodes`` seeded episodes of ``agent`` (episode ``i`` from seed ``seed + i``)
    with autodiff off and returns them with their summary.

    ``agent`` is a path: a gradless checkpoint, or a run directory (its latest
    checkpoint), or another tool's file (a Stable-Baselines3 zip, a CleanRL model, a state
    dict in ``gradless export``'s layout), which needs ``env_id`` (and ``activation``,
    ``"tanh"`` or ``"relu"``, where the file names none and its format's default is not
    it: CleanRL's files name none, and tanh is assumed). ``env_id`` also
    evaluates a checkpoint on another env that fits it. ``num_envs`` envs step side by side
    (no episode depends on it); ``device`` is ``"auto"``, ``"flex"`` or ``"wgpu"``.
    Damaged checkpoints raise ``CheckpointError``, agents gradless cannot read or that do not
    fit the env ``UnsupportedAgentError``.
    """
    if not isinstance(agent, (str, os.PathLike)):
        raise TypeError(
            "agent must be a path (a checkpoint, a run directory or another tool's file), "
            f"got {type(agent).__name__}"
        )
    for name, value in (("episodes", episodes), ("num_envs", num_envs), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be between 0 and 2**64 - 1, got {seed}")
    result = _native.evaluate_path(
        os.fspath(agent),
        env_id,
        int(episodes),
        int(seed),
        int(num_envs),
        bool(deterministic),
        device,
        activation,
    )
    return Evaluation(**result)
