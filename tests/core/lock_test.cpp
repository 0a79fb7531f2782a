// Tests of the flock-based locks: FolderLock refuses a held folder with a message naming the
// holder; FileLock waits for the holder (flock conflicts between two open file descriptions, so
// threads of one process stand in for processes), removes its file only when asked to, and
// re-locks when the file it waited on was replaced.
#include "xlt/core/lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace xlt {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(Lock, FolderLockRefusesAHeldFolder) {
  test::TempDir tmp;
  FolderLock first(tmp.path(), ".lock", "test run");
  try {
    FolderLock second(tmp.path(), ".lock", "test run");
    FAIL() << "second lock was granted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is in use by another xlt test run (pid"),
              std::string::npos)
        << e.what();
  }
}

TEST(Lock, FileLockWaitsForTheHolder) {
  test::TempDir tmp;
  const fs::path path = tmp / "x.lock";
  std::atomic<bool> released{false}, acquired{false};
  std::thread waiter;
  {
    FileLock held(path, "", /*remove_on_release=*/false);
    waiter = std::thread([&] {
      FileLock mine(path, "", false);
      acquired = true;
      EXPECT_TRUE(released.load());  // only after the holder let go
    });
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(acquired.load());
    released = true;
  }
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_TRUE(fs::exists(path));  // kept: other tools share the path
  { FileLock removed(path, "", true); }
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace xlt
