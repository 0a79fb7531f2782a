#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs each one for
# SECONDS (default 30), one after the other, starting from the seed corpus in fuzz/corpus/<target>.
# Fails on the first crash, leak, timeout, out-of-memory or sanitizer report; the input that
# triggered it is left in build-fuzz/artifacts/<target>/. New coverage-increasing inputs go to
# build-fuzz/corpus/<target>/ (not to the committed seeds).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
build=$(realpath -m "${XLT_FUZZ_BUILD:-build-fuzz}")

# XLT_FUZZ_NO_BUILD=1: run the executables already in $build/fuzz (e.g. a copy for a long run).
if [ -n "${XLT_FUZZ_NO_BUILD:-}" ]; then
  :
elif [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  CC=clang CXX=clang++ cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DXLT_FUZZ=ON -DXLT_BUILD_TESTS=OFF -DXLT_BUILD_BENCH=OFF >/dev/null
fi
if [ -z "${XLT_FUZZ_NO_BUILD:-}" ]; then
  cmake --build "$build" -j "${XLT_JOBS:-2}" --target xlt_fuzzers
fi

targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/*_fuzz.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# A small quarantine: the pickle target frees many large buffers, and the default let the
# quarantine alone pass the 2 GB RSS limit (25 MB live, 2.2 GB quarantined).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  exe="$build/fuzz/$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz: $t was not built (missing dependency?)" >&2
    failed+=("$t")
    continue
  fi
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
  log="$build/artifacts/$t/log.txt"
  echo "fuzz: $t for ${secs}s" >&2
  # -timeout: one input may take at most 10 s; -rss_limit_mb: a size field taken on trust that
  # makes the parser allocate gigabytes is a bug too.
  if "$exe" "$build/corpus/$t" "$PWD/fuzz/corpus/$t" -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$t/" >"$log" 2>&1; then
    # The last status line carries the totals: "#N DONE cov: C ft: F corp: ... exec/s: E".
    grep -E "DONE|stat::number_of_executed_units" "$log" | tail -2 | tr '\n' ' ' >&2
    echo >&2
  else
    echo "fuzz: $t FAILED, see $log:" >&2
    grep -E "ERROR|SUMMARY|Test unit written|unexpected" "$log" | head -20 >&2
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a report" >&2
