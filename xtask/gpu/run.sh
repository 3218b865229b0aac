#!/usr/bin/env bash
# The GPU machine's side of `cargo xtask gpu-bundle` (docs/training.md, "On a lent GPU machine"),
# run from the checkout's root in calls one after another while the machine stays warm (what a
# call leaves in ignored folders stays for the next; one call carries at most 64 MiB and runs at
# most 10 minutes):
#   carrying <bundle>/bin-1: bash xtask/gpu/run.sh <bundle> unpack
#   carrying <bundle>/bin-2: bash xtask/gpu/run.sh <bundle> unpack     (one call per bin-N)
#   carrying <bundle>/data:  bash xtask/gpu/run.sh <bundle> bench [config] [device]
#   carrying <bundle>/data:  bash xtask/gpu/run.sh <bundle> train [minutes] [config] [device]
# `unpack` says which parts of the xz-compressed xtask are there; once all are, it installs
# Debian's Vulkan loader and unpacks the xtask. `bench` times the real training
# step (bench-train) of the tiny config and of the given one, modulated and plain, and the
# given one in f16 and bf16 mixed precision, then Burn against the PyTorch twin on CUDA
# (`bench --vs-pytorch`, and op by op at 1024x1024 inference's shapes: `bench-ops`). `train` trains the given config for
# the given minutes (resuming the run the bundle brought back, if any). Each leaves in $OUT one
# tar archive split into parts of 15.6 MiB (a call brings back at most 8 files of 16 MiB) of
# results/ (bench.jsonl, vs-pytorch.txt, ops.txt, train.log) and, after `train`, runs/<run> with its
# latest checkpoint only. Here, `cat run.tar.part-* | tar -x -C <folder>` unpacks it; put the
# parts in <bundle>/data for the next call and the run resumes there.
set -euo pipefail
usage="usage: run.sh <bundle> unpack | bench [config] [device] | train [minutes] [config] [device]"
bundle=${1:?$usage}
mode=${2:?$usage}
xtask="$bundle/xtask"

if [ "$mode" = unpack ]; then
  compgen -G "$bundle/bin-*/parts" > /dev/null || { echo "no $bundle/bin-N folder here: carry bin-1" >&2; exit 2; }
  total=$(cat "$bundle"/bin-*/parts | sort -u)
  [ "$(echo "$total" | wc -l)" -eq 1 ] || { echo "bin-N folders of different bundles: $total" >&2; exit 2; }
  here=$(find "$bundle" -path "$bundle/bin-*/xtask.xz.part-*" | wc -l)
  if [ "$here" -lt "$total" ]; then
    echo "unpack: $here of $total parts here; carry the next bin-N and run unpack again"
    exit 0
  fi
  for deb in "$bundle"/bin-1/debs/*.deb; do dpkg -x "$deb" /; done
  ldconfig
  find "$bundle" -path "$bundle/bin-*/xtask.xz.part-*" -printf '%f %p\n' | sort | cut -d' ' -f2- | xargs cat \
    | python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), open(sys.argv[1], 'wb'))" "$xtask"
  chmod +x "$xtask"
  "$xtask" --help > /dev/null
  echo "unpacked: $xtask"
  exit 0
fi
case "$mode" in
  bench) minutes=0; config=${3:-configs/small-6task-gpu.toml}; device=${4:-wgpu} ;;
  train) minutes=${3:-6}; config=${4:-configs/small-6task-gpu.toml}; device=${5:-wgpu} ;;
  *) echo "unknown mode '$mode'; $usage" >&2; exit 2 ;;
esac
[ -x "$xtask" ] || { echo "$xtask is missing: run the unpack call first, right before this one" >&2; exit 2; }
if [ "$device" = wgpu ]; then
  export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
fi
out=${OUT:-$bundle/out}
results="$bundle/results"
runs="$bundle/runs"
mkdir -p "$out" "$results" "$runs"
export INSTRUCT_IPT_DATA="$bundle/data/photos"

if [ "$mode" = bench ]; then
  # A failing case is written down and the others still run, and the archive is rewritten
  # after each case: what finished comes back even if the call runs out of time.
  pack() { rm -f "$out"/bench.tar.part-*; tar -C "$bundle" -cf - results | split -b 15600k - "$out/bench.tar.part-"; }
  bench() {
    "$xtask" bench-train --device "$device" --steps "${BENCH_STEPS:-20}" "$@" 2>> "$results/bench.err" | tee -a "$results/bench.jsonl" \
      || echo "bench-train $* failed" >> "$results/bench.err"
    pack
  }
  bench --config configs/tiny-6task-cpu.toml
  bench --config configs/tiny-6task-cpu.toml --set conditioning.kind=none
  bench --config "$config"
  bench --config "$config" --set conditioning.kind=none
  # Mixed precision (f32 master weights): f16 with loss scaling; bf16 where the device computes in it.
  bench --config "$config" --set 'precision="f16"'
  bench --config "$config" --set 'precision="bf16"'
  "$xtask" bench --vs-pytorch --device "$device" --python "${TWIN_PYTHON:-python3}" --presets tiny,small \
    --sizes "${SIZES:-256,512,1024}" --skip-4k --photo-megapixels 0 --repeats 5 --rounds 1 2>&1 | tee "$results/vs-pytorch.txt" \
    || echo "bench --vs-pytorch failed" >> "$results/bench.err"
  pack
  # Op by op at the shapes of tiny's 1024x1024 inference: its first level (16 channels at full
  # size) and its deepest (128 channels at an eighth), against the twin's ops on CUDA.
  for shape in "16 1024" "128 128"; do
    set -- $shape
    "$xtask" bench-ops --device "$device" --vs-pytorch --python "${TWIN_PYTHON:-python3}" --batch 1 --channels "$1" --size "$2" \
      2>&1 | tee -a "$results/ops.txt" || echo "bench-ops $shape failed" >> "$results/bench.err"
    pack
  done
  exit 0
fi

if compgen -G "$bundle/data/run.tar.part-*" > /dev/null; then
  cat "$bundle"/data/run.tar.part-* | tar -x -C "$bundle" runs
fi
# SIGINT is training's Ctrl-C: it stops after the current step with a checkpoint. --foreground
# sends it once, to training only (without it timeout signals its process group too, and a
# second Ctrl-C aborts without a checkpoint).
status=0
# TRAIN_SET='a.b=c ...' passes overrides (e.g. TRAIN_SET='precision="f16" name="small-f16"').
sets=()
for assignment in ${TRAIN_SET:-}; do sets+=(--set "$assignment"); done
timeout --foreground -s INT "${minutes}m" "$xtask" train --config "$config" --device "$device" --runs "$runs" --resume "${sets[@]}" > "$results/train.log" 2>&1 || status=$?
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
