"""``gradless.evaluate``: seeded episodes of an agent, saved or live, in inference mode, as
``gradless eval`` runs them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradless import _native, agents


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
    #: The keyword arguments the env was made with (an RL Zoo run's ``env_kwargs``).
    env_kwargs: dict[str, Any]
    env_backend: str

    def to_dict(self) -> dict[str, Any]:
        """The summary and the episodes as plain Python values (lists for the arrays)."""
        return {
            key: value.tolist() if isinstance(value, np.ndarray) else value
            for key, value in self.__dict__.items()
        }


def evaluate(
    agent: Any,
    env_id: str | None = None,
    *,
    episodes: int = 100,
    seed: int = 1_000_000,
    num_envs: int = 16,
    deterministic: bool = True,
    device: str = "auto",
    activation: str | None = None,
    normalize: Any = None,
    action: str | None = None,
) -> Evaluation:
    """Runs ``episodes`` seeded episodes of ``agent`` (episode ``i`` from seed ``seed + i``)
    with autodiff off and returns them with their summary.

    ``agent`` is one of:

    - a path: a gradless checkpoint, or a run directory (its latest checkpoint), or another
      tool's file (a Stable-Baselines3 zip, a CleanRL model, a state dict in ``gradless
      export``'s layout), which needs ``env_id`` (and ``activation``, ``"tanh"`` or
      ``"relu"``, where the file names none and its format's default is not it: CleanRL's
      files name none, and tanh is assumed);
    - a Stable-Baselines3 model (PPO, A2C, DQN, SAC, TD3, DDPG with ``MlpPolicy``): its
      policy's weights, on ``env_id`` or the env the model holds; ``normalize`` is the
      ``VecNormalize`` it was trained with, whose observation statistics are applied;
    - a ``torch.nn.Sequential`` of ``Linear`` layers with ``Tanh`` or ``ReLU`` between them,
      whose outputs become actions as ``action`` says: ``"argmax"`` (discrete),
      ``"identity"`` (the outputs are the action) or ``"tanh_scale"`` (``tanh`` of the
      outputs mapped onto the action box; a final ``Tanh`` in the module is that ``tanh``).

    ``env_id`` also evaluates a checkpoint on another env that fits it. ``num_envs`` envs
    step side by side (no episode depends on it); ``device`` is ``"auto"``, ``"flex"`` or
    ``"wgpu"``. Ctrl-C stops a running evaluation and raises ``KeyboardInterrupt``. Damaged
    checkpoints raise ``CheckpointError``, agents gradless cannot read or that do not fit
    the env ``UnsupportedAgentError``.
    """
    for name, value in (("episodes", episodes), ("num_envs", num_envs), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be between 0 and 2**64 - 1, got {seed}")
    run = {
        "env_id": env_id,
        "episodes": int(episodes),
        "seed": int(seed),
        "num_envs": int(num_envs),
        "deterministic": bool(deterministic),
        "device": device,
    }
    if isinstance(agent, (str, os.PathLike)):
        for name, value in (("normalize", normalize), ("action", action)):
            if value is not None:
                raise TypeError(
                    f"{name}= applies to a live agent (an SB3 model, a torch module), not to a path"
                )
        return Evaluation(**_native.evaluate_path(os.fspath(agent), run, activation))
    if agents.is_sb3_model(agent):
        if action is not None:
            raise TypeError("action= applies to a torch module; an SB3 model acts as its policy does")
        weights = agents.sb3_weights(agent)
        if env_id is None:
            run["env_id"] = agents.env_id_of(getattr(agent, "env", None))
    elif agents.is_torch_module(agent):
        if normalize is not None:
            raise TypeError("normalize= applies to an SB3 model; a torch module sees raw observations")
        weights = agents.module_weights(agent, action)
    else:
        raise TypeError(
            "agent must be a path (a checkpoint, a run directory or another tool's file), a "
            "Stable-Baselines3 model or a torch nn.Sequential, "
            f"got {type(agent).__name__}"
        )
    if run["env_id"] is None:
        raise ValueError(f"env_id: the {weights.source} names no env; give env_id")
    result = _native.evaluate_weights(
        weights.kind,
        weights.state_dict,
        weights.source,
        run,
        activation or weights.activation,
        weights.step,
        None if normalize is None else agents.normalizer_of(normalize),
    )
    return Evaluation(**result)
