"""Gymnasium spaces from the parts the native module describes them with."""

from __future__ import annotations

import numpy as np
import gymnasium


def space_from_parts(parts: tuple) -> gymnasium.spaces.Space:
    """``(n, low, high)``: ``Discrete(n)`` when ``n`` is set, else a float32 ``Box``."""
    n, low, high = parts
    if n is not None:
        return gymnasium.spaces.Discrete(n)
    return gymnasium.spaces.Box(
        low=np.asarray(low, dtype=np.float32),
        high=np.asarray(high, dtype=np.float32),
        dtype=np.float32,
    )
