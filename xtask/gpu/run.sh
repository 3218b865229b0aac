#!/usr/bin/env bash
# The GPU machine's side of `cargo xtask gpu-bundle` (docs/training.md, "On a lent GPU machine"),
# run from the checkout's root, in two calls in a row (the checkout and the whole bundle do not
# fit in one call's 64 MiB; what the first call unpacks stays on the warm machine):
#   call 1, carrying <bundle>/bin:   bash xtask/gpu/run.sh <bundle> unpack
#   call 2, carrying <bundle>/data:  bash xtask/gpu/run.sh <bundle> run [train minutes] [train config] [device]
# `unpack` installs Debian's Vulkan loader and unpacks the xtask. `run` times the real training
# step (bench-train) of the tiny config and of the given one, modulated and plain, then trains
# the given config for the given minutes (resuming the run the bundle brought back, if any). It
# leaves in $OUT one tar archive split into parts of 15.6 MiB (a call brings back at most 8
# files of 16 MiB): results/bench.jsonl, results/train.log and runs/<run> with its latest
# checkpoint only. Here, `cat run.tar.part-* | tar -x -C <folder>` unpacks it; put the parts in
# <bundle>/data for the next call and the run resumes there.
set -euo pipefail
bundle=${1:?usage: run.sh <bundle> unpack|run [train minutes] [train config] [device]}
mode=${2:?usage: run.sh <bundle> unpack|run [train minutes] [train config] [device]}
minutes=${3:-6}
config=${4:-configs/small-6task-gpu.toml}
device=${5:-wgpu}
xtask="$bundle/xtask"

if [ "$mode" = unpack ]; then
  for deb in "$bundle"/bin/debs/*.deb; do dpkg -x "$deb" /; done
  ldconfig
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$bundle/bin/xtask.xz" "$xtask"
  chmod +x "$xtask"
  "$xtask" --help > /dev/null
  echo "unpacked: $xtask"
  exit 0
fi
[ "$mode" = run ] || { echo "unknown mode '$mode': unpack or run" >&2; exit 2; }
[ -x "$xtask" ] || { echo "$xtask is missing: run the unpack call first, right before this one" >&2; exit 2; }
if [ "$device" = wgpu ]; then
  export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
fi
out=${OUT:-$bundle/out}
results="$bundle/results"
runs="$bundle/runs"
mkdir -p "$out" "$results" "$runs"
export INSTRUCT_IPT_DATA="$bundle/data/photos"

bench() { "$xtask" bench-train --device "$device" --steps "${BENCH_STEPS:-20}" "$@" | tee -a "$results/bench.jsonl"; }
bench --config configs/tiny-6task-cpu.toml
bench --config configs/tiny-6task-cpu.toml --set conditioning.kind=none
bench --config "$config"
bench --config "$config" --set conditioning.kind=none

if compgen -G "$bundle/data/run.tar.part-*" > /dev/null; then
  cat "$bundle"/data/run.tar.part-* | tar -x -C "$bundle" runs
fi
# SIGINT is training's Ctrl-C: it stops after the current step with a checkpoint.
status=0
timeout -s INT "${minutes}m" "$xtask" train --config "$config" --device "$device" --runs "$runs" --resume > "$results/train.log" 2>&1 || status=$?
echo "train exit status $status (124: stopped by the time limit, with a checkpoint)" >> "$results/train.log"
# Only the latest checkpoint travels back.
for latest in "$runs"/*/checkpoints/latest; do
  [ -f "$latest" ] || continue
  keep=$(cat "$latest")
  for step in "$(dirname "$latest")"/step-*; do
    [ "$(basename "$step")" = "$keep" ] || rm -rf "$step"
  done
done
tar -C "$bundle" -cf - results runs | split -b 15600k - "$out/run.tar.part-"
ls -l "$out"
parts=$(find "$out" -name 'run.tar.part-*' | wc -l)
[ "$parts" -le 8 ] || echo "warning: $parts parts; a call brings back 8 files at most" >&2
