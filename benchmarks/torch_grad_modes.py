"""What gradient tracking costs PyTorch when a policy only evaluates: the network of a
gradless checkpoint (loaded from `gradless export`'s safetensors) timed with grad on (the
default: parameters require grad), under torch.no_grad() and under torch.inference_mode(),
on the same inputs, as `gradless bench grad-modes` does for burn.

A policy step is: upload the observations, forward, read the outputs back, greedy selection
on the host (argmax, or the Gaussian mean), as the evaluator does. Timed windows alternate between the modes after a warm-up; the
median of each is reported. Then a forward-only rollout of --memory-steps steps per mode
(outputs dropped, no backward) measures what it leaves behind: resident memory and, on CUDA,
torch.cuda.memory_allocated(). Observations are drawn from a seeded normal distribution
(the timing does not depend on their values; no Gymnasium needed). Prints one JSON line per
batch and mode, and checks that the three modes chose the same actions.

Run by hand (not by CI):
    cargo run --release -p gradless -- export checkpoints/cartpole-v1-ppo --out /tmp/ppo.safetensors
    ~/.venvs/sb3/bin/python benchmarks/torch_grad_modes.py /tmp/ppo.safetensors --batch 1 16 256 4096
"""

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "torch"))
from exported import load  # noqa: E402

MODES = {
    "tracked": contextlib.nullcontext,
    "no_grad": torch.no_grad,
    "inference": torch.inference_mode,
}
INPUT_BATCHES = 8


def resident_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def device_bytes(device):
    return torch.cuda.memory_allocated() if device.type == "cuda" else None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_step(network, gaussian, device):
    # As `gradless bench grad-modes` (and the evaluator) take a step: outputs read back,
    # greedy actions chosen on the host.
    def step(observations):
        x = torch.from_numpy(observations).to(device)
        output = network(x).detach().cpu().numpy()
        return output if gaussian else output.argmax(axis=1)

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 256, 4096])
    parser.add_argument("--seconds", type=float, default=0.5, help="one timed window")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--memory-steps", type=int, default=10_000)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    network, metadata = load(args.file)
    network = network.to(device)
    gaussian = metadata["policy"] == "gaussian_actor_mean"
    step = make_step(network, gaussian, device)
    observation_dim = network[0].in_features
    rng = np.random.default_rng(0)
    all_identical = True
    for batch in args.batch:
        inputs = [
            rng.normal(0.0, 0.5, size=(batch, observation_dim)).astype(np.float32)
            for _ in range(INPUT_BATCHES)
        ]
        actions = {}
        for mode, context in MODES.items():
            with context():
                actions[mode] = [step(x) for x in inputs]
        identical = all(
            np.array_equal(a, b)
            for mode in MODES
            for a, b in zip(actions["inference"], actions[mode])
        )
        all_identical &= identical
        for mode, context in MODES.items():
            with context():
                for k in range(20):
                    step(inputs[k % INPUT_BATCHES])
        sync(device)
        samples = {mode: [] for mode in MODES}
        for _ in range(args.windows):
            for mode, context in MODES.items():
                with context():
                    steps, start = 0, time.perf_counter()
                    while steps == 0 or time.perf_counter() - start < args.seconds:
                        step(inputs[steps % INPUT_BATCHES])
                        steps += 1
                    samples[mode].append((time.perf_counter() - start) * 1e6 / steps)
        for mode, context in MODES.items():
            sync(device)
            resident, on_device = resident_bytes(), device_bytes(device)
            with context():
                for k in range(args.memory_steps):
                    step(inputs[k % INPUT_BATCHES])
            sync(device)
            us = statistics.median(samples[mode])
            grown_on_device = device_bytes(device)
            print(json.dumps({
                "library": "pytorch",
                "torch": torch.__version__,
                "device": args.device,
                "torch_threads": args.threads,
                "batch": batch,
                "mode": mode,
                "us_per_step": us,
                "steps_per_sec": batch * 1e6 / us,
                "windows": args.windows,
                "memory_steps": args.memory_steps,
                "memory_growth_bytes": resident_bytes() - resident,
                "device_memory_growth_bytes": None if on_device is None else grown_on_device - on_device,
                "actions_identical": identical,
            }), flush=True)
    if not all_identical:
        sys.exit("the three modes chose different actions on the same inputs")


if __name__ == "__main__":
    main()
