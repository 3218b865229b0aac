"""Times single layers for `cargo xtask bench-ops`; prints one JSON line per op.

usage: python ops.py --batch 8 --channels 128 --size 64 --repeats 5 [--device cuda]

Each op runs on a [batch, channels, size, size] input: forward alone, then forward + backward
of the sum of the output (parameters and input require gradients), as the Burn side does. On
CUDA every timed run ends with torch.cuda.synchronize() (bench.py's median_ms).
"""

import argparse
import json

import torch
import torch.nn.functional as F

from bench import median_ms
from instruct_ipt_twin.model import ChannelNorm


def ops(channels):
    dw = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
    full = torch.nn.Conv2d(channels, channels, 3, padding=1)
    point = torch.nn.Conv2d(channels, channels, 1)
    norm = ChannelNorm(channels)
    return {
        "conv 3x3": full,
        "depthwise conv 3x3": dw,
        "conv 1x1": point,
        "channel LayerNorm": norm,
        "GELU (tanh)": lambda x: F.gelu(x, approximate="tanh"),
        "GELU (erf)": F.gelu,
        "attention softmax(QK^T)V": lambda x: attention(x),
    }


def attention(x):
    # Channel ("transposed") attention over the whole map: [B, C, HW] x [B, HW, C].
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    scores = torch.softmax(flat @ flat.transpose(1, 2) / (h * w) ** 0.5, dim=-1)
    return (scores @ flat).reshape(b, c, h, w)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    for name, op in ops(args.channels).items():
        if isinstance(op, torch.nn.Module):
            op = op.to(device)
        x = torch.rand(args.batch, args.channels, args.size, args.size, device=device)
        with torch.no_grad():
            forward = median_ms(args.repeats, lambda: op(x), device)
        x.requires_grad_(True)

        def step():
            op(x).sum().backward()

        both = median_ms(args.repeats, step, device)
        print(json.dumps({"op": name, "forward_ms": forward, "backward_ms": both - forward}))


if __name__ == "__main__":
    main()
