"""Reading the project's safetensors weight files (metadata keys `instruct_ipt.*`)."""

import json

from safetensors import safe_open
from safetensors.torch import load_file

from .model import IptModel


def load_model(path: str) -> IptModel:
    """Builds the model a weight file describes and loads its tensors strictly."""
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata()
    content = json.loads(metadata["instruct_ipt.content"])
    if content == "task_biases":
        raise ValueError(f"{path}: holds task biases only")
    config = json.loads(metadata["instruct_ipt.config"])
    modulation = json.loads(metadata["instruct_ipt.modulation"])
    model = IptModel(config, modulation)
    model.load_state_dict(load_file(path), strict=True)
    return model.eval()
