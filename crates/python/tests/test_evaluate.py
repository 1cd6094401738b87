"""gradless.evaluate against what PyTorch + Gymnasium and `gradless eval` give, episode by
episode, and its refusals as exceptions."""

import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import gradless

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "crates/import/tests/fixtures"
SHIPPED = ROOT / "checkpoints"


def fixtures():
    """The foreign agents with the returns PyTorch + Gymnasium gave them
    (benchmarks/sb3/make_import_fixtures.py)."""
    expected = json.loads((FIXTURES / "expected_returns.json").read_text())
    return sorted(expected.items())


@pytest.mark.parametrize("name, entry", fixtures())
def test_foreign_agents_return_what_pytorch_and_gymnasium_return(name, entry):
    theirs = np.array(entry["returns"])
    ours = gradless.evaluate(
        FIXTURES / name,
        entry["env"],
        episodes=len(theirs),
        seed=entry["first_seed"],
        device="flex",
        activation=entry.get("activation"),
    )
    assert list(ours.seeds) == [entry["first_seed"] + i for i in range(len(theirs))]
    # CartPole's returns are step counts (exact); Pendulum's sum float32 costs two libraries
    # compute.
    np.testing.assert_allclose(ours.returns, theirs, rtol=1e-4, atol=1e-4)


def test_rl_zoo_agents_evaluate_with_their_saved_normalisation():
    """RL Zoo's run layout: the zip's vecnormalize.pkl is applied, episode for episode as
    SB3 with RL Zoo's saved normalisation (benchmarks/rl_zoo/make_zoo_fixtures.py). A run
    folder stands for its final model, its env read from its args.yml with the keyword
    arguments it was made with."""
    zoo = FIXTURES / "zoo"
    expected = json.loads((zoo / "expected_returns.json").read_text())
    for name, entry in expected.items():
        run = (zoo / name).parent
        final = name.endswith(f"/{entry['env']}.zip")
        ours = gradless.evaluate(
            run if final else zoo / name, None if final else entry["env"],
            episodes=len(entry["returns"]), seed=entry["first_seed"], device="flex",
        )
        assert ours.to_dict()["env"] == entry["env"]
        assert ours.env_kwargs == (entry["env_kwargs"] if final else {})
        if entry["env"] in ("Pendulum-v1", "MountainCarContinuous-v0"):
            # Float32 actions from two libraries' arithmetic (measured figures in docs).
            np.testing.assert_allclose(ours.returns, entry["returns"], rtol=1e-6, atol=0)
        else:
            np.testing.assert_array_equal(ours.returns, entry["returns"])


def gradless_binary():
    """The CLI the Rust tests built beside this package (scripts/test.sh passes it)."""
    path = os.environ.get("GRADLESS_BIN")
    if not path or not pathlib.Path(path).is_file():
        pytest.skip("GRADLESS_BIN names no gradless binary (scripts/test.sh sets it)")
    return path


@pytest.mark.parametrize("checkpoint", ["cartpole-v1-dqn", "pendulum-v1-sac", "acrobot-v1-dqn"])
@pytest.mark.parametrize("deterministic", [True, False])
def test_shipped_checkpoints_evaluate_as_gradless_eval_does(checkpoint, deterministic, tmp_path):
    args = [gradless_binary(), "--json", "eval", str(SHIPPED / checkpoint), "--device", "flex",
            "--episodes", "6", "--num-envs", "4", "--seed", "77", "--out", str(tmp_path)]
    if not deterministic:
        args.append("--stochastic")
    cli = subprocess.run(args, capture_output=True, text=True, check=True)
    summary = json.loads(cli.stdout.splitlines()[0])
    lines = (tmp_path / checkpoint / "episodes.jsonl").read_text().splitlines()
    episodes = [json.loads(line) for line in lines]
    ours = gradless.evaluate(
        SHIPPED / checkpoint, episodes=6, num_envs=3, seed=77,
        deterministic=deterministic, device="flex",
    )
    np.testing.assert_array_equal(ours.returns, [e["return"] for e in episodes])
    np.testing.assert_array_equal(ours.lengths, [e["length"] for e in episodes])
    np.testing.assert_array_equal(ours.truncated, [e["truncated"] for e in episodes])
    for key, value in (("mean", "mean_return"), ("iqm", "iqm"), ("std", "std_return")):
        assert getattr(ours, key) == summary[value], key
    assert list(ours.iqm_ci95) == summary["iqm_ci95"]
    assert ours.to_dict()["returns"] == [e["return"] for e in episodes]


def test_a_run_directory_means_its_latest_checkpoint(tmp_path):
    run = tmp_path / "run"
    for step in (100, 200):
        shutil.copytree(SHIPPED / "cartpole-v1-ppo", run / "checkpoints" / f"step-{step:010d}")
    evaluation = gradless.evaluate(run, episodes=2, device="flex")
    assert evaluation.checkpoint.endswith("step-0000000200")
    assert evaluation.env == "CartPole-v1"


def test_refusals_are_exceptions_naming_what_is_wrong(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED / "cartpole-v1-ppo", broken)
    model = broken / "model.bpk"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(gradless.CheckpointError, match="model.bpk"):
        gradless.evaluate(broken, episodes=2, device="flex")
    garbage = tmp_path / "agent.zip"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(gradless.UnsupportedAgentError, match="agent.zip"):
        gradless.evaluate(garbage, "CartPole-v1", episodes=2, device="flex")
    with pytest.raises(gradless.UnsupportedAgentError, match="Pendulum-v1"):
        gradless.evaluate(SHIPPED / "cartpole-v1-ppo", "Pendulum-v1", episodes=2, device="flex")
    with pytest.raises(gradless.CheckpointError, match="no checkpoint"):
        gradless.evaluate(tmp_path / "nothing-here", episodes=2, device="flex")
    two_runs = tmp_path / "runs"
    for name in ("a", "b"):
        shutil.copytree(SHIPPED / "cartpole-v1-ppo", two_runs / name / "checkpoints" / "step-0000000100")
    with pytest.raises(ValueError, match="several runs"):
        gradless.evaluate(two_runs, episodes=2, device="flex")
    # The last episode's seed may be 2**64 - 1, not more.
    last = gradless.evaluate(SHIPPED / "cartpole-v1-ppo", episodes=2, seed=2**64 - 2, device="flex")
    assert list(last.seeds) == [2**64 - 2, 2**64 - 1]
    with pytest.raises(ValueError, match="seed"):
        gradless.evaluate(SHIPPED / "cartpole-v1-ppo", episodes=2, seed=2**64 - 1, device="flex")
    with pytest.raises(ValueError, match="episodes"):
        gradless.evaluate(SHIPPED / "cartpole-v1-ppo", episodes=0, device="flex")
    with pytest.raises(ValueError, match="device"):
        gradless.evaluate(SHIPPED / "cartpole-v1-ppo", episodes=2, device="tpu")
    with pytest.raises(ValueError, match="activation"):
        gradless.evaluate(FIXTURES / "sb3_dqn_cartpole.zip", "CartPole-v1", activation="gelu")
    with pytest.raises(TypeError, match="path"):
        gradless.evaluate(object())
    assert issubclass(gradless.CheckpointError, gradless.GradlessError)


def test_other_threads_run_while_the_episodes_do():
    import threading
    import time

    ticks = 0
    done = threading.Event()

    def tick():
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        # The ticker's rate with the main thread asleep (the GIL free)...
        start, t0 = ticks, time.perf_counter()
        time.sleep(0.2)
        rate = (ticks - start) / (time.perf_counter() - t0)
        # ...and while the episodes run. Were the GIL held for the whole call, the ticker
        # would only tick in the few milliseconds around it.
        start, t0 = ticks, time.perf_counter()
        gradless.evaluate(SHIPPED / "cartpole-v1-ppo", episodes=100, device="flex")
        elapsed = time.perf_counter() - t0
        during = ticks - start
    finally:
        done.set()
        ticker.join()
    assert elapsed > 0.1, "too short a run to tell"
    assert during > 0.25 * rate * elapsed, (during, rate, elapsed)


def test_ctrl_c_stops_an_evaluation_within_a_second():
    import signal
    import threading
    import time

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    # Python raises KeyboardInterrupt on SIGINT only where its parent left SIGINT alone: a
    # shell ignores it in the commands it starts in the background.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # Ten million 500-step episodes would run for hours.
    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            gradless.evaluate(SHIPPED / "cartpole-v1-ppo", episodes=10_000_000, device="flex")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert fired, "interrupted before the timer fired"
    assert time.perf_counter() - fired[0] < 1.0
