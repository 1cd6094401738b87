"""gradless: Gymnasium's classic-control envs, exact to the bit, stepped in Rust.

``gradless.make_vec("CartPole-v1", 1024)`` returns a ``gymnasium.vector.VectorEnv``;
importing gradless also registers ``gradless/CartPole-v1`` (and the other ids) with
Gymnasium, for ``gymnasium.make`` and ``gymnasium.make_vec``. ``gradless.evaluate(path)``
runs an agent's seeded episodes in inference mode, as ``gradless eval`` does (a saved
one, or a live Stable-Baselines3 model or torch module); ``gradless.sb3.evaluate_policy``
is a drop-in for SB3's.
"""

from gradless._native import CheckpointError, GradlessError, UnsupportedAgentError, known_ids
from gradless import sb3
from gradless.evaluation import Evaluation, evaluate
from gradless.registration import register_envs
from gradless.single import Env
from gradless.vector import VectorEnv, make_vec

ENV_IDS: tuple = tuple(known_ids())

register_envs()

__all__ = [
    "ENV_IDS",
    "CheckpointError",
    "Env",
    "Evaluation",
    "GradlessError",
    "UnsupportedAgentError",
    "VectorEnv",
    "evaluate",
    "make_vec",
    "register_envs",
    "sb3",
]
