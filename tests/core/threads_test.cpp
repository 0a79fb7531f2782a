// The default thread count: never more threads than free cores, at least one.
#include "xlt/core/threads.h"

#include <gtest/gtest.h>

#include <cmath>

namespace xlt {
namespace {

TEST(DefaultThreads, FreeCoresRoundedAtLeastOneAtMostAll) {
  EXPECT_EQ(default_threads(2, 0.0), 2);  // idle 2-core machine: both
  EXPECT_EQ(default_threads(2, 0.4), 2);  // rounding: less than half a core busy
  EXPECT_EQ(default_threads(2, 1.0), 1);  // one CPU hog: the other core only
  EXPECT_EQ(default_threads(2, 1.6), 1);  // never 0
  EXPECT_EQ(default_threads(2, 8.0), 1);  // overloaded (the case in issue #19)
  EXPECT_EQ(default_threads(16, 3.0), 13);
  EXPECT_EQ(default_threads(16, 15.5), 1);
  EXPECT_EQ(default_threads(1, 0.0), 1);
}

TEST(DefaultThreads, OddInputsStayInRange) {
  EXPECT_EQ(default_threads(0, 0.0), 1);  // no core count: one thread
  EXPECT_EQ(default_threads(4, -1.0), 4);
  EXPECT_EQ(default_threads(4, NAN), 4);
  EXPECT_EQ(default_threads(4, 1e300), 1);
}

TEST(DefaultThreads, MachineReadingsAreSane) {
  EXPECT_GE(usable_cores(), 1);
  const double busy = busy_cpus();
  EXPECT_GE(busy, 0.0);
  EXPECT_TRUE(std::isfinite(busy));
  const int n = default_threads(usable_cores(), busy);
  EXPECT_GE(n, 1);
  EXPECT_LE(n, usable_cores());
}

}  // namespace
}  // namespace xlt
