# Sanitizer and fuzzing builds (docs/hardening.md). Both cover only the torch-free libraries:
# Debian's libtorch is GCC-built and uninstrumented, so ASan would see its allocations and
# container accesses through a different allocator and report false positives (or miss its
# bugs), and an instrumented torch build would take hours on CI.
if(XLT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "XLT_FUZZ=ON needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++ "
                        "-DCMAKE_C_COMPILER=clang")
  endif()
  set(XLT_TORCH_FREE_ONLY ON CACHE BOOL "" FORCE)
  # Libraries get coverage instrumentation; only the fuzz executables link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
endif()

if(XLT_SANITIZE)
  set(XLT_TORCH_FREE_ONLY ON CACHE BOOL "" FORCE)
  add_compile_options(-fsanitize=${XLT_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${XLT_SANITIZE} -fno-sanitize-recover=all)
endif()
