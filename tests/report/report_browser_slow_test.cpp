// The study report in a real browser: headless Chromium renders report.html (from the hand-made
// results.json) offline without console errors, the rendered DOM holds every inline SVG figure,
// and the screenshot is far larger than a blank page's (it has content). Skips without
// /usr/bin/chromium locally, fails under CI=true; `ctest -E Browser` leaves it out.
#include <gtest/gtest.h>

#include "common/test_env.h"
#include "report/browser_check.h"
#include "report/study_fixture.h"
#include "xlt/core/file.h"
#include "xlt/report/study_report.h"

namespace xlt::report {
namespace {

TEST(Browser, StudyReportRendersOfflineWithoutErrors) {
  XLT_REQUIRE_CHROMIUM();
  test::TempDir tmp;
  nlohmann::json r = test::study_results_fixture();
  r["answers"] = answers_to_json(study_answers(r));
  const StudyReport rep = render_study_report(r);
  write_file_atomic(tmp / "report.html", rep.html);
  write_file_atomic(tmp / "blank.html", "<!DOCTYPE html><html><body></body></html>\n");

  const auto page = test::load_in_browser(tmp / "report.html", tmp.path());
  ASSERT_EQ(page.error, "");
  std::filesystem::create_directories(tmp / "blank");
  const auto blank = test::load_in_browser(tmp / "blank.html", tmp / "blank");
  ASSERT_EQ(blank.error, "");

  EXPECT_EQ(test::count_substr(page.dom, "<svg"), static_cast<int>(rep.figures.size()));
  EXPECT_EQ(test::count_substr(page.console, "Uncaught"), 0) << page.console;
  EXPECT_EQ(test::count_substr(page.console, "ERROR:CONSOLE"), 0) << page.console;
  // A blank 1200x3000 page compresses to a few kB; the report's figures and text do not.
  EXPECT_GT(page.screenshot_bytes, 5 * blank.screenshot_bytes)
      << page.screenshot_bytes << " vs blank " << blank.screenshot_bytes;
}

TEST(Browser, SeveralEncoderReportRendersOfflineWithoutErrors) {
  XLT_REQUIRE_CHROMIUM();
  test::TempDir tmp;
  nlohmann::json r = test::multi_encoder_results_fixture();
  r["answers"] = answers_to_json(study_answers(r));
  const StudyReport rep = render_study_report(r);
  write_file_atomic(tmp / "report.html", rep.html);
  const auto page = test::load_in_browser(tmp / "report.html", tmp.path());
  ASSERT_EQ(page.error, "");
  EXPECT_EQ(test::count_substr(page.dom, "<svg"), test::count_substr(rep.html, "<svg"));
  EXPECT_GE(test::count_substr(page.dom, "<svg"), 12);
  EXPECT_NE(page.dom.find("Encoders side by side"), std::string::npos);
  EXPECT_NE(page.dom.find("Which encoder transfers better where"), std::string::npos);
  EXPECT_EQ(test::count_substr(page.console, "Uncaught"), 0) << page.console;
  EXPECT_EQ(test::count_substr(page.console, "ERROR:CONSOLE"), 0) << page.console;
}

}  // namespace
}  // namespace xlt::report
