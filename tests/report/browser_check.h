// Loads an HTML file in headless Chromium (Debian package `chromium`) the way a reader would open
// a report: a screenshot and the DOM after rendering, with console logging on stderr. Used by
// the report and study browser tests, which skip when /usr/bin/chromium is absent (and fail
// under CI=true). Filter them out with `ctest -E Browser`.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/test_env.h"

namespace xlt::test {

inline const char* kChromium = "/usr/bin/chromium";

struct BrowserResult {
  std::string error;  // empty when Chromium ran and produced both outputs
  std::string dom;
  std::string console;  // stderr of the DOM run (console messages are logged there)
  uintmax_t screenshot_bytes = 0;
};

inline std::string chromium_command(const std::filesystem::path& profile) {
  return std::string(kChromium) +
         " --headless --no-sandbox --disable-gpu --disable-background-networking "
         "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
         shell_quote(profile.string()) + " --enable-logging=stderr --v=0";
}

inline BrowserResult load_in_browser(const std::filesystem::path& html,
                                     const std::filesystem::path& work) {
  namespace fs = std::filesystem;
  BrowserResult r;
  const fs::path png = work / "screenshot.png";
  const std::string url = "file://" + fs::absolute(html).string();
  const auto shot = run_command(chromium_command(work / "profile-shot") +
                                " --screenshot=" + shell_quote(png.string()) +
                                " --window-size=1200,3000 " + shell_quote(url));
  if (shot.exit_code != 0 || !fs::exists(png)) {
    r.error = "screenshot failed (exit " + std::to_string(shot.exit_code) + "): " + shot.err;
    return r;
  }
  r.screenshot_bytes = fs::file_size(png);
  const auto dom =
      run_command(chromium_command(work / "profile-dom") + " --dump-dom " + shell_quote(url));
  if (dom.exit_code != 0) {
    r.error = "--dump-dom failed (exit " + std::to_string(dom.exit_code) + "): " + dom.err;
    return r;
  }
  r.dom = dom.out;
  r.console = dom.err + shot.err;
  return r;
}

inline int count_substr(const std::string& s, const std::string& part) {
  int n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

}  // namespace xlt::test

// Skip locally / fail under CI=true when Chromium is not installed.
#define XLT_REQUIRE_CHROMIUM()                                                             \
  do {                                                                                     \
    if (!std::filesystem::exists(::xlt::test::kChromium)) {                                \
      if (::xlt::test::in_ci()) {                                                          \
        FAIL() << "headless browser test needs " << ::xlt::test::kChromium                 \
               << " (Debian package chromium, see ./setup)";                               \
      } else {                                                                             \
        GTEST_SKIP() << ::xlt::test::kChromium << " not installed (apt install chromium)"; \
      }                                                                                    \
    }                                                                                      \
  } while (0)
