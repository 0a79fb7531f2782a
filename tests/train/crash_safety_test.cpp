// Crash safety of `xlt finetune`, driven through the real binary (the fast part; the longer
// resume checks are in crash_safety_slow_test.cpp): a second signal aborts at once; a second run
// on the same --out is refused by the folder lock naming the first; unusable --out folders are
// refused before any work.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crash_safety_fixture.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using CrashSafety = CrashSafetyFixture;

TEST_F(CrashSafety, SecondSignalAbortsImmediately) {
  Child c = spawn_xlt(args("twice", 100000), tmp_.path());
  ASSERT_TRUE(wait_until([&] { return train_records(tmp_ / "twice" / "log.jsonl") >= 2; }));
  // Two kinds back to back: two SIGINTs sent at once would merge into one (signals of a kind do
  // not queue), and a second one sent after the first was handled raced the run's own orderly
  // stop (a save and an evaluation of the tiny model: tens of ms, less than a busy machine may
  // take to schedule the test). The handler blocks only its own kind, so the other one arrives as
  // a second interrupt in either order, and the process dies by that one. (The first one's
  // "interrupt received" line is not asserted: the second can interrupt its handler before it.)
  ::kill(c.pid, SIGINT);
  ::kill(c.pid, SIGTERM);
  auto s = wait_child(c);
  EXPECT_FALSE(s.exited) << s.err;
  EXPECT_TRUE(s.signal == SIGINT || s.signal == SIGTERM) << s.signal << "\n" << s.err;
  EXPECT_NE(s.err.find("second interrupt: aborting without saving"), std::string::npos) << s.err;
}

TEST_F(CrashSafety, SecondRunOnTheSameOutIsRefusedNamingTheFirst) {
  Child first = spawn_xlt(args("busy", 100000), tmp_.path());
  ASSERT_TRUE(wait_until([&] { return train_records(tmp_ / "busy" / "log.jsonl") >= 1; }));
  for (const char* flag : {"--resume", "--overwrite"}) {
    auto second = run(args("busy", 10, {flag}));
    EXPECT_EQ(second.exit_code, 2) << second.err;
    EXPECT_NE(second.err.find("is in use by another xlt fine-tuning run (pid " +
                              std::to_string(first.pid) + " on "),
              std::string::npos)
        << second.err;
    EXPECT_NE(second.err.find(", started 20"), std::string::npos) << second.err;
  }
  EXPECT_TRUE(child_running(first)) << "the refused run must not disturb the first";
  ::kill(first.pid, SIGTERM);
  auto s = wait_child(first);
  EXPECT_EQ(s.exit_code, 143) << s.err;
  // The lock went with the process: now a run gets past it (and is refused for its options).
  auto again = run(args("busy", 10, {"--resume"}));
  EXPECT_EQ(again.exit_code, 2) << again.err;
  EXPECT_EQ(again.err.find("in use"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("the options differ"), std::string::npos) << again.err;
}

TEST_F(CrashSafety, UnusableOutFoldersAreRefusedBeforeAnyWork) {
  // A folder that is not an xlt run: refused (usage error), untouched.
  fs::create_directories(tmp_ / "mine");
  write_text(tmp_ / "mine" / "notes.txt", "my notes\n");
  auto r = run(args("mine", 2));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("is not an xlt fine-tuning folder"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp_ / "mine"), fs::directory_iterator()), 1);
  // ... unless --overwrite asks for it; the user's file stays.
  r = run(args("mine", 2, {"--overwrite"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(tmp_ / "mine" / "notes.txt"), "my notes\n");
  EXPECT_TRUE(fs::exists(tmp_ / "mine" / "last" / "model.safetensors"));

  // What a run killed while probing a new --out left: not a user's folder; the rerun goes on.
  fs::create_directories(tmp_ / "probed");
  write_text(tmp_ / "probed" / ".xlt-write-test.tmp.4242.0.beef", "");
  write_text(tmp_ / "probed" / "..xlt-write-test.tmp.4242.0.beef.tmp.4242.1.cafe", "");
  r = run(args("probed", 2));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "probed" / ".xlt-write-test.tmp.4242.0.beef"));
  EXPECT_FALSE(fs::exists(tmp_ / "probed" / "..xlt-write-test.tmp.4242.0.beef.tmp.4242.1.cafe"));
  EXPECT_TRUE(fs::exists(tmp_ / "probed" / "last" / "model.safetensors"));

  // A file where the folder should be.
  write_text(tmp_ / "afile", "x");
  r = run(args("afile", 2));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("exists and is not a folder"), std::string::npos) << r.err;

  // A folder that cannot be created (inside /proc, even for root).
  auto a = args("x", 2);
  a[7] = "/proc/self/xlt-out";
  r = run(a);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--out /proc/self/xlt-out: cannot create folder"), std::string::npos)
      << r.err;

  // A folder without write permission (only meaningful when not root).
  if (::geteuid() != 0) {
    fs::create_directories(tmp_ / "ro");
    fs::permissions(tmp_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    r = run(args("ro", 2));
    fs::permissions(tmp_ / "ro", fs::perms::owner_all);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("is not writable"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace xlt::test
