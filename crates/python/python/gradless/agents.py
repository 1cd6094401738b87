"""Live agents read off as weights: Stable-Baselines3 models, PyTorch ``nn.Sequential``
modules and ``VecNormalize`` statistics. Neither torch nor stable-baselines3 is imported
here: an object that is one of theirs is recognised by its class, and torch is only used
through the object itself."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradless._native import UnsupportedAgentError

MODULE_ACTIONS = ("argmax", "identity", "tanh_scale")
ACTIVATIONS = ("Tanh", "ReLU")


@dataclass(frozen=True)
class Weights:
    """What the native evaluator takes of a live agent."""

    kind: str
    """``"sb3"`` or how a module's outputs become actions (``MODULE_ACTIONS``)."""
    state_dict: dict[str, np.ndarray]
    source: str
    activation: str | None = None
    step: int | None = None


def is_sb3_model(agent: Any) -> bool:
    """Whether ``agent`` is a Stable-Baselines3 (or sb3-contrib) algorithm object."""
    return any(
        cls.__name__ == "BaseAlgorithm" and cls.__module__.startswith("stable_baselines3")
        for cls in type(agent).__mro__
    )


def is_torch_module(agent: Any) -> bool:
    """Whether ``agent`` is a ``torch.nn.Module`` (torch is loaded if it is one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(agent, torch.nn.Module)


def _numpy_state(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """The floating-point tensors of a state dict as float32 NumPy arrays."""
    return {
        name: tensor.detach().cpu().float().numpy()
        for name, tensor in state.items()
        if tensor.is_floating_point()
    }


def sb3_weights(model: Any) -> Weights:
    """A Stable-Baselines3 model's policy weights, activation and training steps."""
    name = f"{type(model).__name__} model"
    activation_fn = getattr(model.policy, "activation_fn", None)
    activation = getattr(activation_fn, "__name__", None)
    if activation is not None and activation not in ACTIVATIONS:
        raise UnsupportedAgentError(
            f"{name}: activation {activation}: only Tanh and ReLU networks are covered"
        )
    return Weights(
        kind="sb3",
        state_dict=_numpy_state(model.policy.state_dict()),
        source=name,
        activation=activation,
        step=int(getattr(model, "num_timesteps", 0)) or None,
    )


def module_weights(module: Any, action: str | None) -> Weights:
    """An ``nn.Sequential`` of ``Linear`` layers with one activation (``Tanh`` or ``ReLU``)
    between each two, renumbered ``0, 2, 4, ...``; with ``action="tanh_scale"`` a final
    ``Tanh`` is the squashing itself and is not applied twice."""
    torch = sys.modules["torch"]
    if action not in MODULE_ACTIONS:
        raise ValueError(
            f"action {action!r}: a torch module needs action= \"argmax\", \"identity\" or "
            "\"tanh_scale\" (how its outputs become actions)"
        )
    if not isinstance(module, torch.nn.Sequential):
        raise UnsupportedAgentError(
            f"{type(module).__name__}: a torch module is read as an nn.Sequential of Linear "
            "layers and Tanh or ReLU activations"
        )
    layers = list(module)
    if action == "tanh_scale" and layers and type(layers[-1]).__name__ == "Tanh":
        layers = layers[:-1]
    linears = layers[0::2]
    activations = layers[1::2]
    names = {type(layer).__name__ for layer in activations}
    shape_ok = len(layers) % 2 == 1 and all(isinstance(l, torch.nn.Linear) for l in linears)
    if not shape_ok or not names <= set(ACTIVATIONS) or len(names) > 1:
        found = ", ".join(type(layer).__name__ for layer in module)
        raise UnsupportedAgentError(
            f"nn.Sequential({found}): expected Linear layers with one activation, Tanh or "
            "ReLU, between each two"
        )
    state = {}
    for k, linear in enumerate(linears):
        state[f"{2 * k}.weight"] = linear.weight
        state[f"{2 * k}.bias"] = (
            linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
        )
    return Weights(
        kind=action,
        state_dict=_numpy_state(state),
        source="nn.Sequential",
        activation=names.pop().lower() if names else None,
    )


def normalizer_of(normalize: Any) -> dict[str, Any] | None:
    """A ``VecNormalize``'s observation statistics as the native evaluator takes them
    (``mean``, ``var``, ``count``, ``epsilon``, ``clip``); ``None`` when it does not
    normalise observations."""
    try:
        if not normalize.norm_obs:
            return None
        rms = normalize.obs_rms
        mean = np.asarray(rms.mean, dtype=np.float64).ravel()
        var = np.asarray(rms.var, dtype=np.float64).ravel()
        return {
            "mean": mean,
            "var": var,
            "count": float(rms.count),
            "epsilon": float(normalize.epsilon),
            "clip": float(normalize.clip_obs),
        }
    except AttributeError as error:
        raise TypeError(
            "normalize must be a VecNormalize (its obs_rms, epsilon, clip_obs and norm_obs "
            f"are read): {error}"
        ) from None


def env_id_of(env: Any) -> str | None:
    """The env id a Gymnasium env, an SB3 VecEnv (or VecNormalize around one) or an SB3
    model's env was made from, without gradless's namespace; ``None`` when it names none."""
    spec = getattr(env, "spec", None)
    if spec is None and hasattr(env, "get_attr"):
        try:
            spec = env.get_attr("spec", [0])[0]
        except Exception:  # a VecEnv whose envs have no spec
            spec = None
    env_id = getattr(spec, "id", None)
    if env_id is None:
        return None
    return env_id.removeprefix("gradless/")
