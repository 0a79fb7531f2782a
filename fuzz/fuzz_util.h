// Shared helpers for the libFuzzer targets: a private scratch folder (on tmpfs when there is one)
// for parsers that read paths, splitting one input into several files, and the error policy.
//
// Policy: a parser may reject an input only with xlt's typed input errors (InputError and its
// subclasses, UsageError); those are the documented behaviour. Anything else that escapes (a
// std::out_of_range, a json exception, xlt::Error meaning "internal error", bad_alloc from a
// size taken on trust) is a bug: the target aborts so that libFuzzer records the input.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "xlt/core/error.h"

namespace xlt::fuzz {

// A folder private to this process, removed at exit. The path is never destroyed: the atexit
// handler is registered before the static is complete, so it runs after the static's destructor
// would have (ASan: heap-use-after-free in remove_all when libFuzzer exits).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path* const dir = [] {
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    auto* d = new std::filesystem::path(base / ("xlt-fuzz-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return *dir;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// Splits an input into parts at "\n=====\n" (seed files stay readable), at most `max_parts`.
inline std::vector<std::string_view> split_parts(std::string_view data, std::size_t max_parts) {
  static constexpr std::string_view kSep = "\n=====\n";
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    std::size_t at = data.find(kSep);
    if (at == std::string_view::npos) break;
    parts.push_back(data.substr(0, at));
    data.remove_prefix(at + kSep.size());
  }
  parts.push_back(data);
  return parts;
}

// Runs `fn`, accepting the typed input errors and aborting on anything else.
template <typename Fn>
void expect_clean(Fn&& fn) {
  try {
    fn();
  } catch (const xlt::InputError&) {
  } catch (const xlt::UsageError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: unexpected %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
}

}  // namespace xlt::fuzz
