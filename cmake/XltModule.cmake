# xlt_add_module(NAME [TORCH] DEPS dep...): a static library xlt_<NAME> from src/<NAME>/*.cpp.
# Sources are globbed so that adding a file to a module needs no CMake edit.
# TORCH modules link libtorch and share one precompiled header (include/xlt/core/torch_pch.h).
function(xlt_add_module name)
  cmake_parse_arguments(M "TORCH" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  set(target xlt_${name})
  if(srcs)
    add_library(${target} STATIC ${srcs})
    target_include_directories(${target}
      PUBLIC ${PROJECT_SOURCE_DIR}/include ${CMAKE_BINARY_DIR}/generated
      PRIVATE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${target} PUBLIC ${M_DEPS})
    if(M_TORCH)
      target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
      xlt_use_torch_pch(${target})
    endif()
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR}/include
                               ${CMAKE_BINARY_DIR}/generated)
    target_link_libraries(${target} INTERFACE ${M_DEPS})
    if(M_TORCH)
      target_link_libraries(${target} INTERFACE ${TORCH_LIBRARIES})
    endif()
  endif()
  set_property(GLOBAL APPEND PROPERTY XLT_MODULES ${target})
endfunction()

# One precompiled libtorch header, built once and reused by every torch-using target.
function(xlt_use_torch_pch target)
  if(NOT XLT_USE_PCH)
    return()
  endif()
  if(NOT TARGET xlt_torch_pch)
    add_library(xlt_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
    target_link_libraries(xlt_torch_pch PUBLIC ${TORCH_LIBRARIES})
    target_precompile_headers(xlt_torch_pch PRIVATE ${PROJECT_SOURCE_DIR}/include/xlt/core/torch_pch.h)
  endif()
  target_precompile_headers(${target} REUSE_FROM xlt_torch_pch)
endfunction()
