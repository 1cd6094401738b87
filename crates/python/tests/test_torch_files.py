"""Files `torch.save` writes, read by gradless whatever they are named. Skipped where torch is
not installed."""

import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradless  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "crates/import/tests/fixtures"


def test_a_cleanrl_model_of_every_name_length_loads(tmp_path):
    """torch.save roots its archive in a folder named after the file's stem, and PyTorch's
    Zip64 records once made a 21-character stem (ppo_continuous_action) unreadable."""
    state = torch.load(FIXTURES / "cleanrl_ppo_pendulum.cleanrl_model", weights_only=True)
    reference = None
    for length in range(1, 141):
        path = tmp_path / ("p" * length + ".cleanrl_model")
        torch.save(state, path)
        returns = gradless.evaluate(path, "Pendulum-v1", episodes=1, device="flex").returns
        if reference is None:
            reference = returns
        np.testing.assert_array_equal(returns, reference, err_msg=f"stem of {length}")
        path.unlink()
