"""Stable-Baselines3 PPO on Gymnasium's CartPole-v1 with the hyperparameters of
configs/cartpole_ppo.toml, timed the way `gradless train` times itself.

Every 10,240 steps the policy is evaluated greedily on 100 episodes (episode i from seed
1_000_000 + i, as gradless does); training stops once the mean return reaches 475. The
reported `train_seconds` leave out evaluation time, like gradless's.

Run by hand (not by CI):
    python3 -m venv ~/.venvs/sb3 && ~/.venvs/sb3/bin/pip install stable-baselines3 gymnasium
    ~/.venvs/sb3/bin/python benchmarks/sb3/ppo_cartpole.py --seeds 1 2 3
Prints one JSON line per seed. With --no-eval --total-timesteps N it trains exactly N steps
(for a throughput comparison with `gradless train --set evaluation.every_steps=0
--set total_timesteps=N`).
"""

import argparse
import json

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from evaluation import EvaluateAndStop, learn_and_report

EVAL_EVERY = 10_240
TARGET = 475.0


def run(seed, total_timesteps, evaluate):
    env = make_vec_env("CartPole-v1", n_envs=4, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=128,
        batch_size=128,
        n_epochs=4,
        learning_rate=lambda progress: 2.5e-4 * progress,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        clip_range_vf=0.2,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        normalize_advantage=True,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh),
        seed=seed,
        device="cpu",
    )
    callback = EvaluateAndStop("CartPole-v1", EVAL_EVERY, TARGET, evaluate)
    return learn_and_report(model, total_timesteps, callback, seed, TARGET)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--total-timesteps", type=int, default=200_000)
    parser.add_argument(
        "--no-eval", action="store_true", help="train the whole budget, no evaluation or stop"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for seed in args.seeds:
        print(json.dumps(run(seed, args.total_timesteps, not args.no_eval)), flush=True)


if __name__ == "__main__":
    main()
