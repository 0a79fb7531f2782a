# Finds libtorch — Debian's libtorch-dev (1.13, CPU) or the libtorch inside a PyTorch 2.x wheel
# (CUDA-enabled) — and records what xlt was built against (XLT_TORCH_VERSION, XLT_CUDA_VERSION,
# XLT_WITH_CUDA) for `xlt --version` and every run's outputs.
#
# Two builds on one machine (docs/gpu.md): TorchConfig.cmake locates libtorch.so with a
# find_library() that searches the system directories before its own lib/, so with Debian's
# libtorch-dev installed a wheel's config would silently pair the wheel's headers with Debian's
# library. The library is therefore pinned to the prefix of the TorchConfig.cmake that is used.

# The TorchConfig.cmake find_package() will take: Torch_DIR, or the first CMAKE_PREFIX_PATH entry
# that holds one (either the wheel's torch/ folder or torch.utils.cmake_prefix_path).
if(NOT Torch_DIR)
  foreach(prefix IN LISTS CMAKE_PREFIX_PATH)
    foreach(dir "${prefix}/Torch" "${prefix}/share/cmake/Torch" "${prefix}")
      if(EXISTS "${dir}/TorchConfig.cmake")
        set(Torch_DIR "${dir}" CACHE PATH "Folder of TorchConfig.cmake")
        break()
      endif()
    endforeach()
    if(Torch_DIR)
      break()
    endif()
  endforeach()
endif()
if(Torch_DIR)
  get_filename_component(_xlt_torch_root "${Torch_DIR}/../../.." ABSOLUTE)
  if(EXISTS "${_xlt_torch_root}/lib/libtorch.so" AND NOT TORCH_LIBRARY)
    set(TORCH_LIBRARY "${_xlt_torch_root}/lib/libtorch.so" CACHE FILEPATH "libtorch.so to link")
  endif()
endif()

find_package(Torch REQUIRED)

# A prefix that has its own lib/libtorch.so (a wheel) must be the one linked.
if(EXISTS "${TORCH_INSTALL_PREFIX}/lib/libtorch.so")
  get_filename_component(_xlt_linked "${TORCH_LIBRARY}" REALPATH)
  get_filename_component(_xlt_beside "${TORCH_INSTALL_PREFIX}/lib/libtorch.so" REALPATH)
  if(NOT _xlt_linked STREQUAL _xlt_beside)
    message(FATAL_ERROR "xlt: libtorch.so found at ${TORCH_LIBRARY}, but the headers are those "
            "of ${TORCH_INSTALL_PREFIX}; configure a fresh build folder with "
            "-DCMAKE_PREFIX_PATH=<the torch package folder> or -DTORCH_LIBRARY=${_xlt_beside}")
  endif()
endif()

set(XLT_TORCH_VERSION "${Torch_VERSION}")
if(NOT XLT_TORCH_VERSION)
  set(XLT_TORCH_VERSION "unknown")
endif()
# A CUDA-enabled libtorch: NCCL process groups, --device cuda, bf16 autocast.
if(TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA)
  set(XLT_WITH_CUDA ON)
  add_compile_definitions(XLT_WITH_CUDA=1)
  if(CUDAToolkit_VERSION_MAJOR)
    set(XLT_CUDA_VERSION "${CUDAToolkit_VERSION_MAJOR}.${CUDAToolkit_VERSION_MINOR}")
  elseif(CUDA_VERSION)
    set(XLT_CUDA_VERSION "${CUDA_VERSION}")
  else()
    set(XLT_CUDA_VERSION "unknown")
  endif()
endif()
message(STATUS "xlt: libtorch ${XLT_TORCH_VERSION} from ${TORCH_INSTALL_PREFIX}")
message(STATUS "xlt: CUDA-enabled libtorch: ${XLT_WITH_CUDA} ${XLT_CUDA_VERSION}")

# at::parallel_for is a header template whose OpenMP branch is compiled only where _OPENMP is
# defined: without -fopenmp, xlt's own parallel kernels (the fused AdamW, dropout) silently ran on
# one thread whatever --threads said (the AdamW pass: 0.66 s, 0.41 s on 2 threads per mBERT step).
# Both libtorch builds use OpenMP (GNU libgomp); with a wheel xlt links the wheel's own copy,
# so the process holds one OpenMP runtime.
set(_xlt_at_openmp "")
foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
  if(EXISTS "${dir}/ATen/Config.h")
    file(STRINGS "${dir}/ATen/Config.h" _xlt_at_openmp REGEX "^#define AT_PARALLEL_OPENMP 1")
    break()
  endif()
endforeach()
if(_xlt_at_openmp AND NOT TARGET xlt_openmp)
  # libtorch's OpenMP is GNU libgomp; another compiler's -fopenmp would call another runtime.
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    message(FATAL_ERROR "xlt: libtorch uses OpenMP (libgomp); build xlt with GCC so that its "
            "kernels share that runtime (CMAKE_CXX_COMPILER is ${CMAKE_CXX_COMPILER_ID})")
  endif()
  find_package(OpenMP REQUIRED COMPONENTS CXX)
  add_library(xlt_openmp INTERFACE)
  target_compile_options(xlt_openmp INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${OpenMP_CXX_FLAGS}>)
  if(EXISTS "${TORCH_INSTALL_PREFIX}/lib/libgomp.so.1")
    # The wheel's own copy (same soname), so that nothing names the system one beside it.
    target_link_libraries(xlt_openmp INTERFACE "${TORCH_INSTALL_PREFIX}/lib/libgomp.so.1")
  else()
    target_link_libraries(xlt_openmp INTERFACE OpenMP::OpenMP_CXX)
  endif()
  list(APPEND TORCH_LIBRARIES xlt_openmp)
  message(STATUS "xlt: libtorch parallelises with OpenMP; xlt's kernels are compiled with it too")
endif()
