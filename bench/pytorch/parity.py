"""Runs the twin on a weight file and an input, writing the output for the Rust parity test.

usage: python parity.py WEIGHTS INPUTS OUTPUT
INPUTS is a safetensors file with `image` [B, 3, H, W] and optionally `task_weights` [B, T];
OUTPUT receives `restored` = model.restore(image, task_weights).
"""

import sys

import torch
from safetensors.torch import load_file, save_file

from instruct_ipt_twin import TaskWeights, load_model


def main(weights: str, inputs: str, output: str) -> None:
    torch.set_grad_enabled(False)
    model = load_model(weights)
    tensors = load_file(inputs)
    tasks = TaskWeights(tensors["task_weights"]) if "task_weights" in tensors else None
    restored = model.restore(tensors["image"], tasks)
    save_file({"restored": restored.contiguous()}, output)


if __name__ == "__main__":
    main(*sys.argv[1:4])
