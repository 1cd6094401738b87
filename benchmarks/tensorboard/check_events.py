"""Reads a gradless run's TensorBoard event files with the real `tensorboard` package and
checks them against the run's metrics.jsonl: every episode's return at its step, every PPO
update's value loss, and the config text.

    python3 -m venv /tmp/tb && /tmp/tb/bin/pip install tensorboard
    cargo run --release -p gradless -- train --config configs/cartpole_ppo.toml \
        --device flex --out /tmp/tb-run --set total_timesteps=20480
    /tmp/tb/bin/python benchmarks/tensorboard/check_events.py /tmp/tb-run
"""

import json
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(run: Path) -> int:
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    episodes = [line for line in lines if line["event"] == "episode"]
    updates = [line for line in lines if line["event"] == "update"]

    returns = accumulator.Scalars("charts/episodic_return")
    want = [(e["global_step"], e["return"]) for e in episodes]
    got = [(s.step, s.value) for s in returns]
    assert got == [(step, float(value)) for step, value in want], "episodic returns differ"

    if updates and "value_loss" in updates[0]:
        losses = accumulator.Scalars("losses/value_loss")
        assert len(losses) == len(updates), (len(losses), len(updates))
        for scalar, update in zip(losses, updates):
            assert scalar.step == update["global_step"]
            assert abs(scalar.value - update["value_loss"]) <= 1e-6 * max(1.0, abs(scalar.value))

    config = accumulator.Tensors("config")[0]
    text = config.tensor_proto.string_val[0].decode()
    assert "algorithm" in text, text

    print(f"scalar tags: {sorted(tags['scalars'])}")
    print(f"{len(returns)} episodes and {len(updates)} updates read back by tensorboard; all agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
