"""Loads a policy written by `gradless export --format safetensors` into
torch.nn.Sequential(Linear, Act, ..., Linear), with the file's metadata (activation, policy
kind, sizes, env id), and turns observations into greedy actions as gradless does: the
observation statistics applied first when the file has them (tensors obs_norm.mean and
obs_norm.var, metadata obs_norm_clip and obs_norm_epsilon), then the argmax, the Gaussian
mean, or for action_transform tanh_scale tanh(mean) * action_scale + action_bias."""

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


def load(path):
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    state = load_file(path)
    layer_keys = {key: value for key, value in state.items() if key.split(".")[0].isdigit()}
    layers = sorted({int(key.split(".")[0]) for key in layer_keys})
    modules = []
    for k in layers:
        out_features, in_features = state[f"{k}.weight"].shape
        modules.append(torch.nn.Linear(in_features, out_features))
        if k != layers[-1]:
            modules.append(ACTIVATIONS[metadata["activation"]]())
    network = torch.nn.Sequential(*modules)
    network.load_state_dict(layer_keys)
    if "obs_norm.mean" in state:
        metadata["obs_norm"] = (state["obs_norm.mean"], state["obs_norm.var"])
    return network, metadata


def greedy_action(network, metadata, observation):
    """The greedy action for one observation (a numpy array), all in float32."""
    x = torch.as_tensor(observation, dtype=torch.float32).unsqueeze(0)
    if "obs_norm" in metadata:
        mean, var = metadata["obs_norm"]
        clip = float(metadata["obs_norm_clip"])
        x = torch.clamp((x - mean) / torch.sqrt(var + float(metadata["obs_norm_epsilon"])), -clip, clip)
    output = network(x)[0]
    policy = metadata["policy"]
    if policy in ("categorical_actor", "q_network"):
        return int(output.argmax())
    if metadata.get("action_transform", "none") == "tanh_scale":
        dim = int(metadata["action_dim"])
        scale = torch.tensor(json.loads(metadata["action_scale"]), dtype=torch.float32)
        bias = torch.tensor(json.loads(metadata["action_bias"]), dtype=torch.float32)
        return (torch.tanh(output[:dim]) * scale + bias).numpy()
    return output.numpy()
