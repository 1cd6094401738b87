"""Loads a policy written by `gradless export --format safetensors` into
torch.nn.Sequential(Linear, Act, ..., Linear), with the file's metadata (activation, policy
kind, sizes, env id)."""

import torch
from safetensors import safe_open
from safetensors.torch import load_file

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


def load(path):
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    state = load_file(path)
    layers = sorted({int(key.split(".")[0]) for key in state})
    modules = []
    for k in layers:
        out_features, in_features = state[f"{k}.weight"].shape
        modules.append(torch.nn.Linear(in_features, out_features))
        if k != layers[-1]:
            modules.append(ACTIVATIONS[metadata["activation"]]())
    network = torch.nn.Sequential(*modules)
    network.load_state_dict(state)
    return network, metadata
