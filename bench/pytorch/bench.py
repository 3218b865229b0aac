"""Times the twin for `cargo xtask bench --vs-pytorch`; prints one JSON line.

usage: python bench.py --preset tiny --kind infer --size 256 --repeats 3 [--device cuda]
       python bench.py --preset tiny --kind train --batch 8 --patch 64 --repeats 3 [--device cuda]

On CUDA every timed run ends with torch.cuda.synchronize(); eager fp32 with PyTorch's default
settings (TF32 convolutions through cuDNN), as a user gets them.
"""

import argparse
import json
import pathlib
import statistics
import time
import tomllib

import torch

from instruct_ipt_twin import IptModel

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs" / "models"


def model_for(preset: str) -> IptModel:
    config = tomllib.loads((CONFIGS / f"{preset}.toml").read_text())
    model = IptModel(config, None)
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.02)
    return model


def median_ms(repeats: int, work, device: torch.device) -> float:
    def run():
        work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run()
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", required=True)
    parser.add_argument("--kind", choices=["infer", "train"], required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = model_for(args.preset).to(device)
    if args.kind == "infer":
        model.eval()
        image = torch.rand(1, 3, args.size, args.size, device=device)
        with torch.no_grad():
            ms = median_ms(args.repeats, lambda: model.restore(image), device)
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        inputs = torch.rand(args.batch, 3, args.patch, args.patch, device=device)
        target = torch.rand(args.batch, 3, args.patch, args.patch, device=device)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = (model(inputs) - target).abs().mean()
            loss.backward()
            optimizer.step()

        ms = median_ms(args.repeats, step, device)
    print(json.dumps({"median_ms": ms, "threads": torch.get_num_threads(), "torch": torch.__version__, "device": args.device}))


if __name__ == "__main__":
    main()
