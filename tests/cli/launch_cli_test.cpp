// `xlt launch` command-line forms: COMMAND with and without `--`, and a COMMAND whose own options
// look like launch's (-n, --grace, --help, a nested --), which must reach the ranks untouched.
#include "common/test_env.h"

using xlt::test::run_xlt;

namespace {

// Each rank prints its rank, the world size and the arguments it got.
const char* kEcho = "sh -c 'echo \"rank $RANK/$WORLD_SIZE: $*\"' sh";

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(LaunchCli, CommandAfterDashesKeepsOptionsThatLookLikeLaunchs) {
  const auto r = run_xlt(std::string("launch -n 2 -- ") + kEcho + " -n 3 --grace 1 --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count(r.out, "rank 0/2: -n 3 --grace 1 --help\n"), 1) << r.out;
  EXPECT_EQ(count(r.out, "rank 1/2: -n 3 --grace 1 --help\n"), 1) << r.out;
}

TEST(LaunchCli, CommandWithoutDashesKeepsItsOptions) {
  const auto r = run_xlt(std::string("launch -n 2 ") + kEcho + " -n 3 --grace 1 --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count(r.out, "rank 0/2: -n 3 --grace 1 --help\n"), 1) << r.out;
  EXPECT_EQ(count(r.out, "rank 1/2: -n 3 --grace 1 --help\n"), 1) << r.out;
}

TEST(LaunchCli, OnlyTheFirstDashesBeforeCommandSeparate) {
  // Launch options in any order and spelling before `--`; a later `--` is COMMAND's.
  auto r = run_xlt(std::string("launch --grace=2 --nproc 1 -- ") + kEcho + " a -- b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "rank 0/1: a -- b\n");
  r = run_xlt(std::string("launch -n1 ") + kEcho + " a -- b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "rank 0/1: a -- b\n");
}

TEST(LaunchCli, XltSubcommandWithAndWithoutDashesAndProgramName) {
  // The issue's form `xlt launch -n 2 -- xlt finetune ...`: `xlt` is this binary, not PATH's.
  for (const std::string cmd : {"launch -n 2 -- xlt finetune --help",
                                "launch -n 2 -- finetune --help", "launch -n 2 finetune --help"}) {
    const auto r = run_xlt(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.err;
    EXPECT_EQ(count(r.out, "Peak learning rate"), 2) << cmd << "\n" << r.out;  // finetune's help
  }
}

TEST(LaunchCli, LaunchHelpAndMissingCommand) {
  auto r = run_xlt("launch --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--grace"), std::string::npos) << r.out;
  r = run_xlt("launch -n 2 --");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("COMMAND is required"), std::string::npos) << r.err;
  r = run_xlt("launch -n 0 -- true");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("-n must be at least 1"), std::string::npos) << r.err;
  r = run_xlt("launch -n 100000 -- true");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("-n 100000 is more local ranks than 1024"), std::string::npos) << r.err;
  // torchrun's spelling of an option is not taken for the program to run.
  r = run_xlt("launch -n 2 --master_port 1234 true");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown option '--master_port' before COMMAND"), std::string::npos)
      << r.err;
  r = run_xlt("launch -n 1 --master_port=1234 -- true");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown option '--master_port=1234' before --"), std::string::npos)
      << r.err;
}

// Only eval, finetune and study run as ranks: another model-running command refuses, rather than
// have every rank do the whole work and write the same files.
TEST(LaunchCli, CommandsThatAreNotDistributedRefuseToRunAsRanks) {
  const auto r = xlt::test::run_command("WORLD_SIZE=2 RANK=0 " +
                                        xlt::test::shell_quote(xlt::test::cli_path().string()) +
                                        " perplexity nonexistent --text en=x.txt");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("this command runs as one process, but WORLD_SIZE=2"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("env -u WORLD_SIZE xlt"), std::string::npos) << r.err;
}

TEST(LaunchCli, RanksWaitPassivelyUnlessTheUserChose) {
  // N ranks share the cores; libgomp's spin-wait then collapses (docs/finetune.md, "Threads").
  auto r = xlt::test::run_command("env -u OMP_WAIT_POLICY " +
                                  xlt::test::shell_quote(xlt::test::cli_path().string()) +
                                  " launch -n 1 -- sh -c 'echo \"$OMP_WAIT_POLICY\"'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "PASSIVE\n");
  r = xlt::test::run_command("OMP_WAIT_POLICY=active " +
                             xlt::test::shell_quote(xlt::test::cli_path().string()) +
                             " launch -n 1 -- sh -c 'echo \"$OMP_WAIT_POLICY\"'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "active\n");
}

TEST(LaunchCli, BrokenPipeIsReportedAfterTheRankThatVanished) {
  // Rank 1 is SIGKILLed; rank 0 then dies of SIGPIPE (a write to it). Both end in the same
  // reaping round (rank 0 holds the launcher stopped meanwhile), where waitpid returns rank 0
  // first: the launcher must still name rank 1, the cause.
  xlt::test::TempDir dir;
  const std::string d = xlt::test::shell_quote(dir.path().string());
  xlt::test::write_text(dir.path() / "rank.sh", R"(d=$1
if [ "$RANK" = 1 ]; then
  echo $$ > "$d/r1.tmp" && mv "$d/r1.tmp" "$d/r1"
  while [ ! -e "$d/stopped" ]; do sleep 0.01; done
  kill -KILL $$
fi
# Rank 1 must be running before the launcher is stopped (a loaded machine may start rank 0's
# script before the launcher has forked rank 1: the test then waited forever).
while [ ! -e "$d/r1" ]; do sleep 0.01; done
kill -STOP $PPID
touch "$d/stopped"
p=$(cat "$d/r1")
# Until rank 1 is a zombie (dead, not yet reaped by the stopped launcher).
while ! grep -q ') Z' "/proc/$p/stat"; do sleep 0.01; done
(sleep 0.2; kill -CONT $PPID) &
kill -PIPE $$
)");
  const auto r = run_xlt("launch -n 2 -- sh " + d + "/rank.sh " + d);
  EXPECT_EQ(r.exit_code, 128 + 9) << r.err;
  EXPECT_NE(r.err.find("rank 1 (pid"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("killed by signal 9"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("rank 0 (pid"), std::string::npos) << r.err;
}
