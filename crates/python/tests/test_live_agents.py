"""gradless.evaluate and gradless.sb3.evaluate_policy of live agents: Stable-Baselines3 models
(with VecNormalize statistics) and torch modules, against the same agents stepped in
PyTorch + Gymnasium and against the files they were saved to. Skipped where torch or
stable-baselines3 is not installed."""

import json
import pathlib

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")
sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402

import gradless  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "crates/import/tests/fixtures"
EXPECTED = json.loads((FIXTURES / "expected_returns.json").read_text())
ALGORITHMS = {"ppo": sb3.PPO, "dqn": sb3.DQN, "sac": sb3.SAC, "td3": sb3.TD3}


def load(name):
    """An SB3 fixture as a live model (``sb3_<algo>_...zip``)."""
    return ALGORITHMS[name.split("_")[1]].load(FIXTURES / name, device="cpu")


def stepped(env_id, act, seeds, normalize=None):
    """Returns of one Gymnasium env stepped with ``act``, episode ``i`` from ``seeds[i]``."""
    env = gym.make(env_id)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        total, done = 0.0, False
        while not done:
            seen = obs if normalize is None else normalize.normalize_obs(obs)
            obs, reward, terminated, truncated, _ = env.step(act(seen))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return np.array(returns)


SB3_ZIPS = sorted(name for name in EXPECTED if name.startswith("sb3_"))


@pytest.mark.parametrize("name", SB3_ZIPS)
def test_sb3_models_return_what_sb3_and_their_files_return(name):
    entry = EXPECTED[name]
    episodes = len(entry["returns"])
    live = gradless.evaluate(
        load(name), entry["env"], episodes=episodes, seed=entry["first_seed"], device="flex"
    )
    # The fixture's returns are SB3's own predict() stepped in Gymnasium.
    np.testing.assert_allclose(live.returns, entry["returns"], rtol=1e-4, atol=1e-4)
    saved = gradless.evaluate(
        FIXTURES / name, entry["env"], episodes=episodes, seed=entry["first_seed"], device="flex"
    )
    np.testing.assert_array_equal(live.returns, saved.returns)
    assert live.checkpoint.endswith("model")


def test_a_model_holding_its_env_needs_no_env_id():
    model = load("sb3_ppo_cartpole_relu32.zip")
    model.set_env(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    assert gradless.evaluate(model, episodes=2, device="flex").env == "CartPole-v1"
    with pytest.raises(ValueError, match="env_id"):
        gradless.evaluate(load("sb3_ppo_cartpole_relu32.zip"), episodes=2)


def statistics(env_id, mean, var):
    """A VecNormalize of ``env_id`` with these observation statistics (frozen)."""
    normalize = VecNormalize(DummyVecEnv([lambda: gym.make(env_id)]), training=False)
    normalize.obs_rms.mean = np.asarray(mean, dtype=np.float64)
    normalize.obs_rms.var = np.asarray(var, dtype=np.float64)
    normalize.clip_obs = 5.0
    return normalize


@pytest.mark.parametrize(
    "name, mean, var",
    [
        ("sb3_ppo_cartpole_relu32.zip", [0.01, 0.2, -0.01, -0.1], [0.04, 0.5, 0.01, 0.6]),
        ("sb3_ppo_pendulum.zip", [0.1, -0.05, 0.3], [0.4, 0.3, 2.5]),
    ],
)
def test_vecnormalize_statistics_are_applied_as_sb3_applies_them(name, mean, var):
    model = load(name)
    env_id = EXPECTED[name]["env"]
    normalize = statistics(env_id, mean, var)
    seeds = np.arange(5) + 40
    ours = gradless.evaluate(
        model, env_id, episodes=5, seed=40, normalize=normalize, device="flex"
    )
    theirs = stepped(
        env_id, lambda obs: model.predict(obs, deterministic=True)[0], seeds, normalize
    )
    np.testing.assert_allclose(ours.returns, theirs, rtol=1e-4, atol=1e-4)
    raw = gradless.evaluate(model, env_id, episodes=5, seed=40, device="flex")
    assert not np.array_equal(ours.returns, raw.returns), "the statistics change the episodes"
    # Statistics switched off, or of another env's size, or no VecNormalize at all.
    normalize.norm_obs = False
    np.testing.assert_array_equal(
        gradless.evaluate(model, env_id, episodes=5, seed=40, normalize=normalize).returns,
        raw.returns,
    )
    with pytest.raises(gradless.UnsupportedAgentError, match="observation statistics"):
        gradless.evaluate(model, env_id, episodes=5, normalize=statistics("Acrobot-v1", [0] * 6, [1] * 6))
    with pytest.raises(TypeError, match="VecNormalize"):
        gradless.evaluate(model, env_id, episodes=5, normalize=object())


def sequential(state, prefix, head, activation):
    """The Linear layers under ``prefix`` and then ``head`` as an nn.Sequential."""
    indices = sorted({int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)})
    names = [f"{prefix}{i}" for i in indices] + [head]
    layers = []
    for n, name in enumerate(names):
        weight = state[f"{name}.weight"]
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        linear.weight.data = weight.clone()
        linear.bias.data = state[f"{name}.bias"].clone()
        layers.append(linear)
        if n + 1 < len(names):
            layers.append(activation())
    return torch.nn.Sequential(*layers)


def test_torch_modules_act_as_their_action_rule_says():
    ppo = load("sb3_ppo_cartpole_relu32.zip")
    state = ppo.policy.state_dict()
    net = sequential(state, "mlp_extractor.policy_net.", "action_net", torch.nn.ReLU)
    ours = gradless.evaluate(net, "CartPole-v1", episodes=6, seed=9, action="argmax", device="flex")
    theirs = stepped(
        "CartPole-v1", lambda obs: int(net(torch.as_tensor(obs)[None]).argmax(1)), np.arange(6) + 9
    )
    np.testing.assert_array_equal(ours.returns, theirs)
    # The same weights as the SB3 model: the same episodes.
    as_model = gradless.evaluate(ppo, "CartPole-v1", episodes=6, seed=9, device="flex")
    np.testing.assert_array_equal(ours.returns, as_model.returns)

    pendulum = load("sb3_ppo_pendulum.zip")
    means = sequential(pendulum.policy.state_dict(), "mlp_extractor.policy_net.", "action_net", torch.nn.Tanh)
    identity = gradless.evaluate(means, "Pendulum-v1", episodes=3, seed=5, action="identity")
    np.testing.assert_array_equal(
        identity.returns, gradless.evaluate(pendulum, "Pendulum-v1", episodes=3, seed=5).returns
    )

    td3 = load("sb3_td3_pendulum.zip")
    actor = td3.policy.actor.mu  # Linear, ReLU, Linear, ReLU, Linear, Tanh
    squashed = gradless.evaluate(actor, "Pendulum-v1", episodes=3, seed=5, action="tanh_scale")
    np.testing.assert_array_equal(
        squashed.returns, gradless.evaluate(td3, "Pendulum-v1", episodes=3, seed=5).returns
    )
    high = 2.0
    theirs = stepped(
        "Pendulum-v1",
        lambda obs: actor(torch.as_tensor(obs)[None])[0].detach().numpy() * high,
        np.arange(3) + 5,
    )
    np.testing.assert_allclose(squashed.returns, theirs, rtol=1e-4)


def test_modules_gradless_cannot_read_are_refused_in_one_line():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    with pytest.raises(ValueError, match="action="):
        gradless.evaluate(net, "CartPole-v1", episodes=2)
    with pytest.raises(gradless.UnsupportedAgentError, match="greedily only"):
        torque = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        gradless.evaluate(torque, "Pendulum-v1", episodes=2, action="identity", deterministic=False)
    with pytest.raises(gradless.UnsupportedAgentError, match="Pendulum-v1 has"):
        gradless.evaluate(net, "Pendulum-v1", episodes=2, action="tanh_scale")
    for bad in (
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2)),
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2)),
        torch.nn.Linear(4, 2),
    ):
        with pytest.raises(gradless.UnsupportedAgentError):
            gradless.evaluate(bad, "CartPole-v1", episodes=2, action="argmax")
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    with pytest.raises(gradless.UnsupportedAgentError, match="NaN"):
        gradless.evaluate(net, "CartPole-v1", episodes=2, action="argmax")
    with pytest.raises(gradless.UnsupportedAgentError, match="deterministic"):
        gradless.evaluate(load("sb3_td3_pendulum.zip"), "Pendulum-v1", episodes=2, deterministic=False)


def test_evaluate_policy_has_sb3s_signature_and_results():
    model = load("sb3_ppo_cartpole_relu32.zip")
    ours = gradless.evaluate(model, "CartPole-v1", episodes=7)
    rewards, lengths = gradless.sb3.evaluate_policy(
        model, "CartPole-v1", n_eval_episodes=7, return_episode_rewards=True
    )
    assert rewards == ours.returns.tolist() and lengths == ours.lengths.tolist()
    assert all(isinstance(r, float) for r in rewards) and all(isinstance(n, int) for n in lengths)
    mean, std = gradless.sb3.evaluate_policy(model, "CartPole-v1", n_eval_episodes=7)
    assert (mean, std) == (np.mean(rewards), np.std(rewards))
    # Envs whose spec names one of gradless's ids, gradless's own among them.
    for env in (
        gym.make("CartPole-v1"),
        gym.make("gradless/CartPole-v1"),
        DummyVecEnv([lambda: gym.make("CartPole-v1")]),
    ):
        assert gradless.sb3.evaluate_policy(model, env, n_eval_episodes=7) == (mean, std)
    # A VecNormalize has its statistics applied.
    normalize = statistics("CartPole-v1", [0.01, 0.2, -0.01, -0.1], [0.04, 0.5, 0.01, 0.6])
    normalised = gradless.evaluate(model, "CartPole-v1", episodes=7, normalize=normalize)
    got, _ = gradless.sb3.evaluate_policy(model, normalize, n_eval_episodes=7, return_episode_rewards=True)
    assert got == normalised.returns.tolist()
    with pytest.raises(ValueError, match="env"):
        gradless.sb3.evaluate_policy(model, object())


def test_sac_samples_from_the_distribution_sb3_samples_from():
    """SB3's SAC draws tanh(mean + std * noise) with its log-std clamped; gradless draws other
    noise from its own generators, so the episodes differ but their returns share a
    distribution: the means agree within sampling error, where greedy acting does not."""
    model = load("sb3_sac_pendulum.zip")
    episodes, first = 60, 5_000
    ours = gradless.evaluate(
        model, "Pendulum-v1", episodes=episodes, seed=first, deterministic=False, device="flex"
    ).returns
    torch.manual_seed(0)
    theirs = stepped(
        "Pendulum-v1",
        lambda obs: model.predict(obs, deterministic=False)[0],
        first + np.arange(episodes),
    )
    error = np.sqrt((ours.var() + theirs.var()) / episodes)
    assert abs(ours.mean() - theirs.mean()) < 4 * error, (ours.mean(), theirs.mean(), error)
