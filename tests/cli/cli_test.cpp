// End-to-end checks of the `xlt` binary's top level: help, version, usage errors and exit codes.
#include "common/test_env.h"

using xlt::test::run_xlt;

TEST(Cli, HelpListsCommandsAndExitsZero) {
  auto r = run_xlt("--help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("xlt"), std::string::npos);
}

TEST(Cli, VersionPrintsVersion) {
  auto r = run_xlt("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("xlt 0."), std::string::npos);
}

TEST(Cli, UnknownCommandIsUsageError) {
  auto r = run_xlt("no-such-command");
  EXPECT_EQ(r.exit_code, 1);
}
