#!/usr/bin/env bash
# Installs the PyTorch twin's environment into bench/pytorch/.venv from PyPI.
# PyPI's torch wheel is the CUDA build and will not import without its nvidia-* libraries, so
# they come along (about 4 GB on disk) even though the twin runs on the CPU.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
# torch 2.9.0 is also the version burn-tch 0.22.1 links against (LIBTORCH_USE_PYTORCH=1).
"$venv/bin/pip" install --quiet "torch==2.9.0" "numpy" "safetensors"
"$venv/bin/python" -c "import torch; print('twin ready: torch', torch.__version__, 'threads', torch.get_num_threads())"
