// Picks OpenBLAS kernels that match the CPU. Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not
// recognise recent Xeons (e.g. Sapphire Rapids, reported as "Intel(R) Xeon(R) Processor" in VMs)
// and falls back to its SSE3 "Prescott" kernels: a 2048^3 float GEMM then runs ~4.7x slower than
// with the AVX-512 SkylakeX kernels the CPU supports. OpenBLAS chooses at load time, before
// main(); its exported gotoblas_dynamic_quit/init re-run that choice, honouring
// OPENBLAS_CORETYPE. Symbols are looked up at run time, so other BLAS builds are left alone.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "xlt/models/model.h"

namespace xlt::models {
namespace {

using CorenameFn = char* (*)();
using VoidFn = void (*)();

std::string choose() {
  auto corename = reinterpret_cast<CorenameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  auto quit = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (!corename) return "not OpenBLAS";
  const std::string before = corename();
  if (!quit || !init || std::getenv("OPENBLAS_CORETYPE")) return "OpenBLAS " + before;
  // Only the generic fallbacks are replaced; a core OpenBLAS recognised is kept.
  if (before != "Prescott" && before != "Core2" && before != "Nehalem" && before != "Katmai" &&
      before != "Northwood" && before != "Banias") {
    return "OpenBLAS " + before;
  }
  const char* target = nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    target = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    target = "Haswell";
  }
  if (!target) return "OpenBLAS " + before;
  setenv("OPENBLAS_CORETYPE", target, 0);
  quit();
  init();
  // Child processes inherit the choice through the environment; this process no longer needs it.
  return "OpenBLAS " + std::string(corename()) + " (was " + before + ")";
}

}  // namespace

std::string ensure_fast_blas() {
  static std::once_flag once;
  static std::string description;
  std::call_once(once, [] { description = choose(); });
  return description;
}

}  // namespace xlt::models
