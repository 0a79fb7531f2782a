// End-to-end tests of `xlt tokenize`: JSON lines on stdin -> stdout with one output line per
// input line (empty lines included), pairs on tab-separated lines, truncation, the readable
// output, and exit code 2 with a clear message for bad input.
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/test_env.h"

namespace fs = std::filesystem;
using nlohmann::json;
using xlt::test::run_xlt;
using xlt::test::shell_quote;

namespace {

fs::path mbert_vocab() {
  return xlt::test::shared_dir() / "data" / "bert-base-multilingual-cased" / "vocab.txt";
}

#define REQUIRE_CLI()                                                                    \
  do {                                                                                   \
    if (!fs::exists(xlt::test::cli_path())) {                                            \
      if (xlt::test::in_ci()) FAIL() << "xlt binary missing: " << xlt::test::cli_path(); \
      GTEST_SKIP() << "build the xlt_cli target to run this test";                       \
    }                                                                                    \
  } while (0)

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  return lines;
}

TEST(TokenizeCli, JsonKeepsOneLinePerInputLineInOrder) {
  REQUIRE_CLI();
  XLT_REQUIRE_PATH(mbert_vocab());
  auto r = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --json",
                   "Hello, world!\n\nThe quick brown fox\tjumps.\n \n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  // Record 0 of wordpiece_mbert_cased.jsonl (HF reference).
  EXPECT_EQ(lines[0]["tokens"], json({"Hello", ",", "world", "!"}));
  EXPECT_EQ(lines[0]["ids"], json({31178, 117, 11356, 106}));
  EXPECT_EQ(lines[0]["input_ids"], json({101, 31178, 117, 11356, 106, 102}));
  EXPECT_EQ(lines[0]["token_type_ids"], json({0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(lines[0]["attention_mask"], json({1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(lines[0]["special_tokens_mask"], json({1, 0, 0, 0, 0, 1}));
  EXPECT_EQ(lines[1]["input_ids"], json({101, 102}));  // the empty line
  EXPECT_EQ(lines[1]["tokens"], json::array());
  // The tab line is a pair: [CLS] The quick brown f ##ox [SEP] jump ##s . [SEP]
  EXPECT_EQ(lines[2]["pair_tokens"], json({"jump", "##s", "."}));
  EXPECT_EQ(lines[2]["token_type_ids"], json({0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(lines[3]["input_ids"], json({101, 102}));
}

// A line is TEXT or TEXT<TAB>TEXT_PAIR: more tabs, or none under --pair, name the line.
TEST(TokenizeCli, StdinLinesWithAmbiguousTabsAreRefused) {
  REQUIRE_CLI();
  XLT_REQUIRE_PATH(mbert_vocab());
  auto r =
      run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --json", "a\tb\nc\td\te\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("stdin line 2: 2 tabs; a line is TEXT or TEXT<TAB>TEXT_PAIR"),
            std::string::npos)
      << r.err;
  ASSERT_EQ(json_lines(r.out).size(), 1u) << r.out;  // the good line before it is written
  EXPECT_EQ(json_lines(r.out)[0]["pair_tokens"], json({"b"}));
  r = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --json --pair", "a\tb\nc\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("stdin line 2: no tab, but --pair"), std::string::npos) << r.err;
  r = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --json --pair", "a\tb\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out).at(0)["pair_tokens"], json({"b"}));
}

TEST(TokenizeCli, MaxLengthTruncatesPairsLongestFirst) {
  REQUIRE_CLI();
  XLT_REQUIRE_PATH(mbert_vocab());
  auto r = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --json --max-length 6",
                   "one two three four five\tsix\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["input_ids"].size(), 6u);
  EXPECT_EQ(lines[0]["tokens"], json({"one", "two"}));
  EXPECT_EQ(lines[0]["pair_tokens"], json({"six"}));
}

TEST(TokenizeCli, ReadableOutputFromArguments) {
  REQUIRE_CLI();
  XLT_REQUIRE_PATH(mbert_vocab());
  auto r = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " 'Hello, world!'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("tokens: [CLS] Hello , world ! [SEP]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ids:    101 31178 117 11356 106 102"), std::string::npos) << r.out;
  auto odd = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --pair a b c");
  EXPECT_EQ(odd.exit_code, 1) << odd.err;
}

TEST(TokenizeCli, InvalidUtf8IsExitTwoWithLineAndOffsetOrReplaced) {
  REQUIRE_CLI();
  XLT_REQUIRE_PATH(mbert_vocab());
  const std::string input =
      "fine\nab\xFF"
      "cd\n";
  auto r = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --json", input);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("byte offset 2"), std::string::npos) << r.err;
  auto ok = run_xlt("tokenize " + shell_quote(mbert_vocab().string()) + " --json --replace-invalid",
                    input);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(json_lines(ok.out).size(), 2u);
}

TEST(TokenizeCli, BadTokenizerIsExitTwo) {
  REQUIRE_CLI();
  xlt::test::TempDir dir;
  xlt::test::write_text(dir / "vocab.txt", "[PAD]\n[UNK]\nx\nx\n");
  auto r = run_xlt("tokenize " + shell_quote((dir / "vocab.txt").string()) + " --json", "x\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("appears twice"), std::string::npos) << r.err;
}

}  // namespace
