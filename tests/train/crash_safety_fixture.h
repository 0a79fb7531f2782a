// Shared by the crash-safety tests: a tiny BERT and the synthetic marker task in a temp folder,
// and `xlt finetune` argument lists for them (one thread, so that interrupted-and-resumed runs
// are bit-exact with uninterrupted ones). Header-only (the suite globs *_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/process_util.h"
#include "train_test_util.h"

namespace xlt::test {

// Number of "type":"train" records in a fine-tuning log.jsonl (0 when absent).
inline int train_records(const std::filesystem::path& log) {
  std::error_code ec;
  if (!std::filesystem::exists(log, ec)) return 0;
  const std::string text = read_text(log);
  int n = 0;
  for (size_t at = text.find("\"type\":\"train\""); at != std::string::npos;
       at = text.find("\"type\":\"train\"", at + 1)) {
    ++n;
  }
  return n;
}

class CrashSafetyFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(cli_path()))
      GTEST_SKIP() << "xlt binary not built: " << cli_path();
    model_ = make_tiny_bert(tmp_ / "tiny");
    write_marker_task(tmp_ / "train.jsonl", 480, 1);
    write_marker_task(tmp_ / "dev.jsonl", 60, 2);
  }
  // One thread, so that interrupted-and-resumed runs are bit-exact with uninterrupted ones.
  std::vector<std::string> args(const std::string& out, int64_t max_steps,
                                const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a = {"finetune",
                                  model_.string(),
                                  "--train",
                                  "en=" + (tmp_ / "train.jsonl").string(),
                                  "--dev",
                                  "en=" + (tmp_ / "dev.jsonl").string(),
                                  "--out",
                                  (tmp_ / out).string(),
                                  "--quiet",
                                  "--threads",
                                  "1",
                                  "--max-length",
                                  "32",
                                  "--batch-size",
                                  "16",
                                  "--lr",
                                  "1e-3",
                                  "--log-every",
                                  "1",
                                  "--eval-every",
                                  "10",
                                  "--max-steps",
                                  std::to_string(max_steps)};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  ChildStatus run(const std::vector<std::string>& a, long fsize_limit = 0) {
    Child c = spawn_xlt(a, tmp_.path(), fsize_limit);
    return wait_child(c);
  }
  static nlohmann::json read_json(const std::filesystem::path& p) {
    return nlohmann::json::parse(read_text(p));
  }
  TempDir tmp_;
  std::filesystem::path model_;
};

}  // namespace xlt::test
