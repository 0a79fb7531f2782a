// Shared test helpers: where the read-only shared data and fixtures are (XLT_SHARED, XLT_FIXTURES),
// temp folders, and running the built `xlt` binary. Tests that need shared data skip with a clear
// message when it is absent, but fail when CI=true.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace xlt::test {

// $XLT_SHARED, else <source>/../shared.
std::filesystem::path shared_dir();
// $XLT_FIXTURES, else shared_dir()/fixtures.
std::filesystem::path fixtures_dir();
bool in_ci();
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
void write_text(const std::filesystem::path& path, const std::string& content);
std::string read_text(const std::filesystem::path& path);

}  // namespace xlt::test

// Skip (locally) or fail (CI=true) when a path from the shared folder is missing.
#define XLT_REQUIRE_PATH(p)                                                               \
  do {                                                                                    \
    if (!std::filesystem::exists(p)) {                                                    \
      if (::xlt::test::in_ci()) {                                                         \
        FAIL() << "required shared data missing: " << (p) << " (set XLT_SHARED)";         \
      } else {                                                                            \
        GTEST_SKIP() << "shared data missing: " << (p) << " (set XLT_SHARED to run this)"; \
      }                                                                                   \
    }                                                                                     \
  } while (0)
