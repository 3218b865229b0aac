"""PyTorch twin of the Rust instruct-ipt backbone: same layers, same parameter names, same
safetensors weight files. Used for numerical parity tests and speed comparisons."""

from .model import IptModel, TaskWeights
from .weights import load_model

__all__ = ["IptModel", "TaskWeights", "load_model"]
