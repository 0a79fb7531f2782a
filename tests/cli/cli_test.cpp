// End-to-end checks of the `xlt` binary's top level: help, version, usage errors and exit codes.
#include <filesystem>
#include <regex>
#include <vector>

#include "common/test_env.h"
#include "xlt/version.h"

using xlt::test::run_xlt;
using xlt::test::source_dir;

// Every command the sources register (XLT_REGISTER_COMMAND("name", ...) in apps/xlt/) is
// listed in --help as an indented "name  description" line.
TEST(Cli, HelpListsCommandsAndExitsZero) {
  std::vector<std::string> names;
  const std::regex registered(R"re(XLT_REGISTER_COMMAND\("([a-z-]+)")re");
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() / "apps" / "xlt")) {
    const std::string text = xlt::test::read_text(entry.path());
    for (std::sregex_iterator it(text.begin(), text.end(), registered), end; it != end; ++it) {
      names.push_back((*it)[1]);
    }
  }
  ASSERT_GE(names.size(), 16u);
  auto r = run_xlt("--help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const auto& name : names) {
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n +" + name + " +\\S")))
        << "--help does not list '" << name << "':\n"
        << r.out;
  }
}

// "No progress output" is spelled --quiet by some commands and --no-progress by others; every
// command that has one accepts both, so a script need not know which.
TEST(Cli, EveryProgressFlagAcceptsBothSpellings) {
  for (const char* cmd : {"study", "finetune", "eval", "perplexity", "embed", "align", "download",
                          "download-data", "convert"}) {
    auto r = run_xlt(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd << r.err;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("--quiet,--no-progress|--no-progress,--quiet")))
        << cmd << ":\n"
        << r.out;
  }
}

TEST(Cli, VersionNamesXltLibtorchAndCuda) {
  auto r = run_xlt("--version");
  EXPECT_EQ(r.exit_code, 0);
  const std::string first = r.out.substr(0, r.out.find('\n'));
  // The contract scripts parse: `xlt <version> (libtorch <version>, CUDA <version>|CPU only)`,
  // the versions being those of this build.
  const std::string cuda = XLT_CUDA_VERSION;
  const std::string expected = std::string("xlt ") + XLT_VERSION + " (libtorch " +
                               XLT_TORCH_VERSION + ", " +
                               (cuda.empty() ? std::string("CPU only") : "CUDA " + cuda) + ")";
  EXPECT_EQ(first, expected);
  EXPECT_TRUE(
      std::regex_match(first, std::regex(R"(xlt \d+\.\d+\.\d+ \(libtorch \d+\.\d+\.\d+[^,]*, )"
                                         R"((CUDA \d+\.\d+|CPU only)\))")))
      << first;
#ifdef XLT_WITH_CUDA
  EXPECT_NE(first.find(", CUDA "), std::string::npos) << first;
#else
  EXPECT_NE(first.find(", CPU only)"), std::string::npos) << first;
#endif
}

TEST(Cli, UnknownCommandIsUsageError) {
  auto r = run_xlt("no-such-command");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("xlt: error: unknown command 'no-such-command'; the commands are: "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(" eval "), std::string::npos) << r.err;
  r = run_xlt("evl model");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown command 'evl' (did you mean 'eval'?)"), std::string::npos) << r.err;
}

// Number options say what is wrong in one short line (CLI11 2.1's own checks print the accepted
// range up to DBL_MAX in 309 digits).
TEST(Cli, NumberChecksNameTheOptionAndTheValue) {
  auto r = run_xlt("eval model --data en=x.tsv --batch-size 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--batch-size: 0 is not a positive number"), std::string::npos) << r.err;
  EXPECT_LT(r.err.size(), 200u) << r.err;
  r = run_xlt("eval model --data en=x.tsv --max-tokens -5");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--max-tokens: -5 is negative (expected >= 0)"), std::string::npos) << r.err;
  for (const char* cmd : {"eval model --data en=x.tsv", "study x.toml", "tokenize model"}) {
    r = run_xlt(std::string(cmd) + " --threads 100000");
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_NE(r.err.find("--threads: 100000 threads is more than 1024"), std::string::npos)
        << r.err;
  }
  r = run_xlt("eval model --data en=x.tsv --bootstrap many");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'many' is not a number"), std::string::npos) << r.err;
  r = run_xlt("eval model --data en=x.tsv --max-tokens 0 --attention flash");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--attention: flash not in {auto,eager,sdpa,varlen}"), std::string::npos)
      << r.err;
}
