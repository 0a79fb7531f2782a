# The Python extension (XLT_BUILD_PYTHON, python/CMakeLists.txt) must run on the libtorch that
# the target environment's `import torch` loads: two libtorch copies in one process (the wheel's
# and Debian's 1.13 in /usr/lib) would share global registries and crash. This finds the torch
# package of the interpreter the module is built for and pins Torch_DIR / TORCH_LIBRARY to it
# before cmake/XltTorch.cmake runs, then records the RPATH that finds its lib/ at run time.
#
# pip builds in an isolated environment (PYTHONPATH points at the build requirements only), so
# the interpreter is asked with -I: it then sees its own site-packages, where torch is installed.

find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module)

execute_process(
  COMMAND "${Python_EXECUTABLE}" -I -c
          "import importlib.util, os; s = importlib.util.find_spec('torch'); print(os.path.dirname(s.origin) if s else '')"
  OUTPUT_VARIABLE _xlt_py_torch
  OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _xlt_py_rc)
if(NOT _xlt_py_rc EQUAL 0 OR NOT _xlt_py_torch)
  message(FATAL_ERROR "xlt: the Python package needs PyTorch in the environment it is built for "
          "(${Python_EXECUTABLE} cannot find `torch`): first "
          "`pip install -r requirements-torch2.txt` into that environment (docs/python.md)")
endif()
if(NOT EXISTS "${_xlt_py_torch}/share/cmake/Torch/TorchConfig.cmake"
   OR NOT EXISTS "${_xlt_py_torch}/lib/libtorch.so")
  message(FATAL_ERROR "xlt: ${_xlt_py_torch} has no share/cmake/Torch/TorchConfig.cmake or "
          "lib/libtorch.so: a torch wheel without its C++ library cannot be linked")
endif()
set(Torch_DIR "${_xlt_py_torch}/share/cmake/Torch" CACHE PATH "Folder of TorchConfig.cmake" FORCE)
# TorchConfig.cmake finds Caffe2Config.cmake (which defines torch_cpu, c10, ...) with a
# find_package() that searches the system before its own folder: Debian's would win.
set(Caffe2_DIR "${_xlt_py_torch}/share/cmake/Caffe2" CACHE PATH "Folder of Caffe2Config.cmake" FORCE)
list(PREPEND CMAKE_PREFIX_PATH "${_xlt_py_torch}")
set(TORCH_LIBRARY "${_xlt_py_torch}/lib/libtorch.so" CACHE FILEPATH "libtorch.so to link" FORCE)
# TorchConfig.cmake also looks for libc10 and friends; a Debian copy found first in /usr/lib
# would be linked beside the wheel's libtorch.
set(c10_LIBRARY "${_xlt_py_torch}/lib/libc10.so" CACHE FILEPATH "libc10.so to link" FORCE)
set(XLT_PYTHON_TORCH_DIR "${_xlt_py_torch}")
message(STATUS "xlt: Python ${Python_VERSION} (${Python_EXECUTABLE}), torch from ${_xlt_py_torch}")

# After find_package(Torch): every torch library the module links must come from that folder.
function(xlt_check_python_torch_libraries)
  foreach(target torch torch_cpu torch_library c10)
    if(NOT TARGET ${target})
      continue()
    endif()
    foreach(prop IMPORTED_LOCATION IMPORTED_LOCATION_RELEASE IMPORTED_LOCATION_NOCONFIG)
      get_target_property(_loc ${target} ${prop})
      if(_loc AND NOT _loc MATCHES "^${XLT_PYTHON_TORCH_DIR}/")
        message(FATAL_ERROR "xlt: the Python module would link ${_loc} (target ${target}), "
                "outside the environment's torch (${XLT_PYTHON_TORCH_DIR}/lib): two libtorch "
                "copies (e.g. Debian's 1.13 and the wheel's) cannot share one process. Configure "
                "a fresh build folder.")
      endif()
    endforeach()
  endforeach()
endfunction()
