// Shared test helpers: where the read-only shared data and fixtures are (XLT_SHARED, XLT_FIXTURES),
// temp folders, running the built `xlt` binary, and checking a typed error and its message. Tests
// that need shared data skip with a clear message when it is absent, but fail when CI=true.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <string>
#include <typeinfo>
#include <vector>

#include "xlt/core/error.h"

namespace xlt::test {

// $XLT_SHARED, else <source>/../shared.
std::filesystem::path shared_dir();
// $XLT_FIXTURES, else shared_dir()/fixtures.
std::filesystem::path fixtures_dir();
bool in_ci();

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice, so tests running in
// parallel do not collide as a port derived from the pid can).
int free_port();
// Path of the built `xlt` executable.
std::filesystem::path cli_path();
std::filesystem::path source_dir();

// A fresh folder under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a shell command line, capturing stdout and stderr separately; `input` is fed to stdin.
CommandResult run_command(const std::string& command_line, const std::string& input = "");

// Runs the built `xlt` with the given argument string (already shell-quoted where needed).
CommandResult run_xlt(const std::string& args, const std::string& input = "");

std::string shell_quote(const std::string& s);
// The lines of `text` that start with `prefix` (e.g. the "run " lines of a study's log).
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix);
void write_text(const std::filesystem::path& path, const std::string& content);
std::string read_text(const std::filesystem::path& path);
// The lines of `text` without their '\n' (a last line without one counts too).
std::vector<std::string> lines_of(const std::string& text);

// Whether `f()` throws an `E` whose message contains every string of `parts` and, unless
// `exit_code` is -1, that the CLI maps to that exit code. An exception of another type propagates
// (gtest reports it). Returns an AssertionResult so that a failure points at the caller's line:
//   EXPECT_TRUE(throws_with<ConfigError>([&] { load(p); }, {"config.json", "overflow"}, 2));
template <typename E, typename F>
::testing::AssertionResult throws_with(F&& f, std::initializer_list<std::string> parts,
                                       int exit_code = -1) {
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      if (msg.find(p) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks \"" << p << "\": " << msg;
      }
    }
    if (exit_code != -1 && exit_code_for(e) != exit_code) {
      return ::testing::AssertionFailure()
             << "exit code " << exit_code_for(e) << ", expected " << exit_code << ": " << msg;
    }
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "nothing thrown, expected " << typeid(E).name();
}

}  // namespace xlt::test

// Skip (locally) or fail (CI=true) when a path from the shared folder is missing.
#define XLT_REQUIRE_PATH(p)                                                                \
  do {                                                                                     \
    if (!std::filesystem::exists(p)) {                                                     \
      if (::xlt::test::in_ci()) {                                                          \
        FAIL() << "required shared data missing: " << (p) << " (set XLT_SHARED)";          \
      } else {                                                                             \
        GTEST_SKIP() << "shared data missing: " << (p) << " (set XLT_SHARED to run this)"; \
      }                                                                                    \
    }                                                                                      \
  } while (0)
