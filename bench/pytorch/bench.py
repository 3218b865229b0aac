"""Times the twin for `cargo xtask bench --vs-pytorch`; prints one JSON line.

usage: python bench.py --preset tiny --kind infer --size 256 --repeats 3
       python bench.py --preset tiny --kind train --batch 8 --patch 64 --repeats 3
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


def median_ms(repeats: int, work) -> float:
    work()
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        work()
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
    args = parser.parse_args()
    torch.manual_seed(0)
    model = model_for(args.preset)
    if args.kind == "infer":
        model.eval()
        image = torch.rand(1, 3, args.size, args.size)
        with torch.no_grad():
            ms = median_ms(args.repeats, lambda: model.restore(image))
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        inputs = torch.rand(args.batch, 3, args.patch, args.patch)
        target = torch.rand(args.batch, 3, args.patch, args.patch)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = (model(inputs) - target).abs().mean()
            loss.backward()
            optimizer.step()

        ms = median_ms(args.repeats, step)
    print(json.dumps({"median_ms": ms, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
