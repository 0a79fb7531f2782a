#!/usr/bin/env bash
# One-command GPU verification of xlt: on a machine with an NVIDIA GPU and a CUDA-enabled
# PyTorch (python3 -c 'import torch'), builds xlt against that PyTorch's libtorch into build-gpu,
# runs the parity tests on the GPU (XLT_TEST_DEVICE=cuda: forward outputs of every fixture in
# float32, compared on the CPU at 1e-4 absolute, 10x the CPU tolerance), runs the models
# benchmark and prints one summary. On a CPU-only machine it prints "no GPU, skipped" and exits 0.
#
# Usage: scripts/gpu_check.sh            (from the repository root; XLT_SHARED as for the tests)
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no GPU, skipped"
  exit 0
fi
if ! python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no GPU, skipped (nvidia-smi works but python3 has no CUDA-enabled torch)"
  exit 0
fi

prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
torch_version=$(python3 -c 'import torch; print(torch.__version__)')
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1)
log=build-gpu/gpu_check.log
mkdir -p build-gpu
: >"$log"
jobs=${JOBS:-$(nproc)}

step() {  # step NAME COMMAND...: runs, logs, records pass/fail
  local name=$1
  shift
  echo "== $name: $*" | tee -a "$log"
  if "$@" >>"$log" 2>&1; then
    results+=("$name: ok")
  else
    results+=("$name: FAILED (see $log)")
    failed=1
  fi
}
results=()
failed=0

step configure cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix"
if ! grep -q "CUDA-enabled libtorch: ON" "$log"; then
  results+=("cuda detection: FAILED (CMake did not find a CUDA-enabled libtorch)")
  failed=1
fi
step build cmake --build build-gpu -j"$jobs" --target xlt_cli xlt_parity_tests models_bench \
  xlt_distributed_tests
step parity-cuda env XLT_TEST_DEVICE=cuda build-gpu/tests/xlt_parity_tests \
  --gtest_filter='*Forward*'
step parity-cpu build-gpu/tests/xlt_parity_tests
step dist-tests build-gpu/tests/xlt_distributed_tests
step models-bench build-gpu/bench/models_bench --benchmark_min_time=0.5

echo
echo "gpu_check summary ($gpu; PyTorch $torch_version)"
for r in "${results[@]}"; do echo "  $r"; done
grep -h "max|diff|" "$log" | sort -t' ' -k5 -g | tail -3 | sed 's/^/  worst parity: /'
grep -hE "^(BM_|bench)" "$log" | head -20 | sed 's/^/  /'
exit $failed
