#!/usr/bin/env bash
# Builds the torch-free libraries (core, io, text, data, report) and their GoogleTest suites with
# AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included) into build-asan/ and
# runs them; any report fails the run (-fno-sanitize-recover=all, halt_on_error). libtorch is not
# needed (XLT_TORCH_FREE_ONLY); docs/hardening.md says why the torch-linked code is not covered.
#   scripts/sanitize.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${XLT_ASAN_BUILD:-build-asan}
sanitizers=${XLT_SANITIZERS:-address,undefined}

if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  compilers=()
  command -v clang++ >/dev/null 2>&1 && compilers=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang)
  cmake -S . -B "$build" "${generator[@]}" "${compilers[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DXLT_SANITIZE="$sanitizers" -DXLT_TORCH_FREE_ONLY=ON -DXLT_BUILD_BENCH=OFF >/dev/null
fi
suites=(xlt_core_tests xlt_io_tests xlt_text_tests xlt_data_tests xlt_report_tests)
cmake --build "$build" -j "${XLT_JOBS:-2}" --target "${suites[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Slow-labelled tests drive the torch-linked `xlt` binary or a browser: not this build's job.
# (Their executables are not built here, so their `*_NOT_BUILT` placeholders are excluded too.)
ctest --test-dir "$build" --output-on-failure -j "${XLT_JOBS:-2}" -LE slow -E _NOT_BUILT "$@"
echo "sanitize: torch-free suites passed under $sanitizers" >&2
