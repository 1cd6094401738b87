"""Makes the fixtures of `gradless eval`'s import tests: agents trained briefly with
Stable-Baselines3, the same weights saved in CleanRL's layouts, and the returns PyTorch +
Gymnasium give for them, episode by episode.

Run by hand, not by CI (the fixtures are committed):

    python3 -m venv .venv && .venv/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0
    .venv/bin/python benchmarks/sb3/make_import_fixtures.py crates/import/tests/fixtures

Writes into the folder:
  sb3_ppo_cartpole_relu32.zip   SB3 PPO, CartPole-v1, net_arch pi/vf [32, 32], ReLU
  sb3_dqn_cartpole.zip          SB3 DQN, CartPole-v1, RL Zoo's hyperparameters, 128-128 ReLU
  sb3_ppo_pendulum.zip          SB3 PPO, Pendulum-v1, defaults (64-64 Tanh, Gaussian)
  sb3_sac_pendulum.zip          SB3 SAC, Pendulum-v1, 64-64 ReLU (greedy: tanh of the mean)
  sb3_td3_pendulum.zip          SB3 TD3, Pendulum-v1, 64-64 ReLU
  sb3_ppo_gsde_pendulum.zip     SB3 PPO with gSDE, Pendulum-v1 (greedy: the mean)
  cleanrl_ppo_cartpole_relu32.cleanrl_model     the first's weights as ppo.py's Agent
  cleanrl_dqn_cartpole.cleanrl_model            the second's as dqn.py's QNetwork
  cleanrl_ppo_pendulum.cleanrl_model            the third's as ppo_continuous_action.py's Agent
  ppo_continuous_action.cleanrl_model           the same, saved under the name CleanRL's script
                                                gives it (a 21-character stem, which the zip
                                                crate's offset detection once misread)
  expected_returns.json         per file: env, activation, first seed, greedy returns
  bad/                          files gradless must refuse, each with a one-line error:
    sb3_cnn.zip (a policy it does not cover), sb3_sac.zip (a SAC actor of 3 observations and
    1 action, which does not fit CartPole-v1), cleanrl_unchained.cleanrl_model
    (layers whose shapes do not chain), sb3_without_policy.zip (no policy.pth)
`--only off-policy` makes the SAC and TD3 files alone, `--only gsde` the gSDE one,
`--only name21` the 21-character one, adding them to expected_returns.json.
Episode i runs from seed FIRST + i (env.reset(seed=...)); actions are SB3's
`predict(obs, deterministic=True)` for the zips and the argmax / mean of the layers for the
CleanRL files.
"""

import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, PPO, SAC, TD3

FIRST_SEED = 1_000_000
EPISODES = 5


def episodes(env_id, act):
    returns = []
    env = gym.make(env_id)
    for i in range(EPISODES):
        obs, _ = env.reset(seed=FIRST_SEED + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def sequential(state, prefix, activation):
    """The Linear layers under `prefix` (0, 2, 4, ...) as a torch Sequential."""
    indices = sorted({int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)})
    layers = []
    for n, index in enumerate(indices):
        weight = state[f"{prefix}{index}.weight"]
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        linear.weight.data = weight.clone()
        linear.bias.data = state[f"{prefix}{index}.bias"].clone()
        layers.append(linear)
        if n + 1 < len(indices):
            layers.append(activation())
    return torch.nn.Sequential(*layers)


def sb3_to_sequential_state(policy_state, policy_prefix, head):
    """SB3's extractor layers + head renumbered 0, 2, 4, ... as CleanRL's Sequentials are."""
    out = {}
    indices = sorted({int(k[len(policy_prefix):].split(".")[0]) for k in policy_state if k.startswith(policy_prefix)})
    for n, index in enumerate(indices):
        for part in ("weight", "bias"):
            out[f"{2 * n}.{part}"] = policy_state[f"{policy_prefix}{index}.{part}"].clone()
    for part in ("weight", "bias"):
        out[f"{2 * len(indices)}.{part}"] = policy_state[f"{head}.{part}"].clone()
    return out


def prefixed(state, prefix):
    return {f"{prefix}{k}": v for k, v in state.items()}


def zip_with_policy(path, template, state):
    """An SB3-like zip: the template's `data`, and `state` as its policy.pth."""
    import io
    import zipfile
    with zipfile.ZipFile(template) as source:
        data = source.read("data")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data", data)
        if state is not None:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            archive.writestr("policy.pth", buffer.getvalue())


def make_bad_fixtures(bad, template):
    small = lambda *shape: torch.zeros(*shape)
    zip_with_policy(bad / "sb3_cnn.zip", template, {
        "features_extractor.cnn.0.weight": small(8, 4, 3, 3), "features_extractor.cnn.0.bias": small(8),
        "action_net.weight": small(2, 8), "action_net.bias": small(2)})
    zip_with_policy(bad / "sb3_sac.zip", template, {
        "actor.latent_pi.0.weight": small(8, 3), "actor.latent_pi.0.bias": small(8),
        "actor.mu.weight": small(1, 8), "actor.mu.bias": small(1)})
    zip_with_policy(bad / "sb3_without_policy.zip", template, None)
    torch.save({"actor.0.weight": small(8, 4), "actor.0.bias": small(8),
                "actor.2.weight": small(2, 7), "actor.2.bias": small(2)},
               bad / "cleanrl_unchained.cleanrl_model")


def make_off_policy(out, expected):
    """SAC and TD3 on Pendulum, trained briefly: squashed actors, acting greedily."""
    for name, cls in (("sb3_sac_pendulum.zip", SAC), ("sb3_td3_pendulum.zip", TD3)):
        # A fresh policy_kwargs each: SB3 adds its own keys to the dict it is given.
        model = cls("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=500, verbose=0,
                    policy_kwargs=dict(net_arch=[64, 64]))
        model.learn(4_000)
        model.save(out / name)
        act = lambda obs, model=model: model.predict(obs, deterministic=True)[0]
        expected[name] = {"env": "Pendulum-v1", "returns": episodes("Pendulum-v1", act)}


def make_gsde(out, expected):
    """PPO with state-dependent exploration on Pendulum, trained briefly."""
    model = PPO("MlpPolicy", "Pendulum-v1", seed=0, n_steps=1024, use_sde=True, verbose=0)
    model.learn(4_096)
    model.save(out / "sb3_ppo_gsde_pendulum.zip")
    act = lambda obs: model.predict(obs, deterministic=True)[0]
    expected["sb3_ppo_gsde_pendulum.zip"] = {"env": "Pendulum-v1", "returns": episodes("Pendulum-v1", act)}


def make_name21(out, expected):
    """The CleanRL Pendulum agent saved as CleanRL's ppo_continuous_action.py names it."""
    name = "ppo_continuous_action.cleanrl_model"
    state = torch.load(out / "cleanrl_ppo_pendulum.cleanrl_model", weights_only=True)
    torch.save(state, out / name)
    expected[name] = dict(expected["cleanrl_ppo_pendulum.cleanrl_model"])


MAKERS = {"off-policy": make_off_policy, "gsde": make_gsde, "name21": make_name21}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if sys.argv[2:3] == ["--only"]:
        expected = json.loads((out / "expected_returns.json").read_text())
        MAKERS[sys.argv[3]](out, expected)
        write_expected(out, expected)
        return
    expected = {}

    # PPO on CartPole with non-default widths and activation.
    ppo = PPO("MlpPolicy", "CartPole-v1", seed=0, n_steps=512, batch_size=64, verbose=0,
              policy_kwargs=dict(net_arch=dict(pi=[32, 32], vf=[32, 32]), activation_fn=torch.nn.ReLU))
    ppo.learn(30_000)
    ppo.save(out / "sb3_ppo_cartpole_relu32.zip")
    act = lambda obs: int(ppo.predict(obs, deterministic=True)[0])
    expected["sb3_ppo_cartpole_relu32.zip"] = {"env": "CartPole-v1", "returns": episodes("CartPole-v1", act)}
    state = ppo.policy.state_dict()
    actor = sb3_to_sequential_state(state, "mlp_extractor.policy_net.", "action_net")
    critic = sb3_to_sequential_state(state, "mlp_extractor.value_net.", "value_net")
    cleanrl = {**prefixed(critic, "critic."), **prefixed(actor, "actor.")}
    torch.save(cleanrl, out / "cleanrl_ppo_cartpole_relu32.cleanrl_model")
    net = sequential(cleanrl, "actor.", torch.nn.ReLU)
    act = lambda obs: int(net(torch.as_tensor(obs).float().unsqueeze(0)).argmax(1))
    expected["cleanrl_ppo_cartpole_relu32.cleanrl_model"] = {
        "env": "CartPole-v1", "activation": "relu", "returns": episodes("CartPole-v1", act)}

    # DQN on CartPole with RL Zoo's tuned hyperparameters and 128-128 layers.
    dqn = DQN("MlpPolicy", "CartPole-v1", seed=0, learning_rate=2.3e-3, batch_size=64,
              buffer_size=100_000, learning_starts=1000, gamma=0.99, target_update_interval=10,
              train_freq=256, gradient_steps=128, exploration_fraction=0.16,
              exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[128, 128]), verbose=0)
    dqn.learn(50_000)
    dqn.save(out / "sb3_dqn_cartpole.zip")
    act = lambda obs: int(dqn.predict(obs, deterministic=True)[0])
    expected["sb3_dqn_cartpole.zip"] = {"env": "CartPole-v1", "returns": episodes("CartPole-v1", act)}
    state = dqn.policy.state_dict()
    layers = {k[len("q_net.q_net."):]: v for k, v in state.items() if k.startswith("q_net.q_net.")}
    torch.save(prefixed(layers, "network."), out / "cleanrl_dqn_cartpole.cleanrl_model")
    net = sequential(prefixed(layers, "network."), "network.", torch.nn.ReLU)
    act = lambda obs: int(net(torch.as_tensor(obs).float().unsqueeze(0)).argmax(1))
    expected["cleanrl_dqn_cartpole.cleanrl_model"] = {"env": "CartPole-v1", "returns": episodes("CartPole-v1", act)}

    # PPO on Pendulum: a Gaussian policy with SB3's defaults.
    pend = PPO("MlpPolicy", "Pendulum-v1", seed=0, n_steps=1024, verbose=0)
    pend.learn(20_000)
    pend.save(out / "sb3_ppo_pendulum.zip")
    act = lambda obs: pend.predict(obs, deterministic=True)[0]
    expected["sb3_ppo_pendulum.zip"] = {"env": "Pendulum-v1", "returns": episodes("Pendulum-v1", act)}
    state = pend.policy.state_dict()
    actor = sb3_to_sequential_state(state, "mlp_extractor.policy_net.", "action_net")
    critic = sb3_to_sequential_state(state, "mlp_extractor.value_net.", "value_net")
    cleanrl = {**prefixed(critic, "critic."), **prefixed(actor, "actor_mean."),
               "actor_logstd": state["log_std"].clone().unsqueeze(0)}
    torch.save(cleanrl, out / "cleanrl_ppo_pendulum.cleanrl_model")
    net = sequential(cleanrl, "actor_mean.", torch.nn.Tanh)
    act = lambda obs: net(torch.as_tensor(obs).float().unsqueeze(0))[0].detach().numpy()
    expected["cleanrl_ppo_pendulum.cleanrl_model"] = {"env": "Pendulum-v1", "returns": episodes("Pendulum-v1", act)}

    make_off_policy(out, expected)
    make_gsde(out, expected)
    make_name21(out, expected)

    bad = out / "bad"
    bad.mkdir(exist_ok=True)
    make_bad_fixtures(bad, out / "sb3_ppo_cartpole_relu32.zip")
    write_expected(out, expected)


def write_expected(out, expected):
    for entry in expected.values():
        entry["first_seed"] = FIRST_SEED
    (out / "expected_returns.json").write_text(json.dumps(expected, indent=1) + "\n")
    for name, entry in expected.items():
        print(name, entry["env"], np.mean(entry["returns"]), entry["returns"])


if __name__ == "__main__":
    main()
