"""Types of gradless's native module (see the Rust crate ``crates/python``)."""

from typing import Any, Optional

import numpy as np
import numpy.typing as npt

SpaceParts = tuple[Optional[int], list[float], list[float]]
StepResult = tuple[
    npt.NDArray[np.float32],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
    dict[str, Any],
]

class GradlessError(Exception): ...
class CheckpointError(GradlessError): ...
class UnsupportedAgentError(GradlessError): ...

# `run`: {"env_id", "episodes", "seed", "num_envs", "deterministic", "device"}.
def evaluate_path(
    path: str, run: dict[str, Any], activation: Optional[str] = None
) -> dict[str, Any]: ...
def evaluate_weights(
    kind: str,
    state_dict: dict[str, npt.NDArray[np.float32]],
    source: str,
    run: dict[str, Any],
    activation: Optional[str] = None,
    step: Optional[int] = None,
    # {"mean", "var": float64 arrays, "count", "epsilon", "clip": floats}
    normalizer: Optional[dict[str, Any]] = None,
) -> dict[str, Any]: ...

def known_ids() -> list[str]: ...

class Env:
    def __init__(self, env_id: str, **kwargs: Any) -> None: ...
    def observation_space(self) -> SpaceParts: ...
    def action_space(self) -> SpaceParts: ...
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float32]: ...
    def step_discrete(
        self, action: int
    ) -> tuple[npt.NDArray[np.float32], float, bool, bool]: ...
    def step_continuous(
        self, action: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], float, bool, bool]: ...

class VectorEnv:
    num_envs: int
    def __init__(
        self,
        env_id: str,
        num_envs: int,
        autoreset_mode: str = "next_step",
        max_episode_steps: Optional[int] = None,
        threads: int = 1,
        **kwargs: Any,
    ) -> None: ...
    def observation_space(self) -> SpaceParts: ...
    def action_space(self) -> SpaceParts: ...
    def reset(
        self, seed: Optional[int] = None, seeds: Optional[list[int]] = None
    ) -> npt.NDArray[np.float32]: ...
    def step(self, actions: npt.ArrayLike) -> StepResult: ...
