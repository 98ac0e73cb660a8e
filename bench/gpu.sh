#!/usr/bin/env bash
# The GPU benchmark: on a machine with an NVIDIA GPU, installs onnxruntime-node's CUDA 12 binaries
# (ONNXRUNTIME_NODE_INSTALL=cuda12, the package's own install script) and runs bench/gpu.ts: the
# embed stage at batch 1/8/32/128 and the whole main job on the CUDA provider, next to the CPU,
# figures in bench/results/gpu.json. Without a GPU it says so and does nothing.
# Usage: bash bench/gpu.sh            (NVIDIA_SMI=path overrides the probe)
set -euo pipefail
cd "$(dirname "$0")/.."
probe="${NVIDIA_SMI:-nvidia-smi}"
if ! command -v "$probe" >/dev/null 2>&1 || ! "$probe" -L 2>/dev/null | grep -q '^GPU'; then
  echo "bench gpu: no NVIDIA GPU on this machine ($probe lists none): nothing installed, nothing measured"
  exit 0
fi
"$probe" -L
ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --foreground-scripts
node bin/run-ts.mjs bench/index.ts --only=gpu
