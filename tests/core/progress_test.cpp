// The process-wide progress observer (include/xlt/core/progress.h): what front ends such as the
// Python package see instead of the stderr bar.
#include "xlt/core/progress.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace xlt {
namespace {

// Removes the observer however a test ends.
struct ObserverGuard {
  ~ObserverGuard() { set_progress_observer({}); }
};

TEST(ProgressObserver, SeesStartUpdatesAndFinishOfEachBar) {
  ObserverGuard guard;
  std::vector<ProgressEvent> events;
  set_progress_observer([&](const ProgressEvent& e) { events.push_back(e); }, 0);
  uint64_t first_id = 0;
  {
    Progress bar("eval en", 10, "pairs", /*enabled=*/false);
    for (int i = 0; i < 10; ++i) bar.advance();
    bar.set_postfix("acc 0.5");
    bar.finish();
    bar.finish();  // idempotent: one finish event
    first_id = events.front().id;
  }
  ASSERT_EQ(events.size(), 12U);
  EXPECT_EQ(events.front().kind, ProgressEvent::Kind::kStart);
  EXPECT_EQ(events.front().label, "eval en");
  EXPECT_EQ(events.front().unit, "pairs");
  EXPECT_EQ(events.front().total, 10);
  EXPECT_FALSE(events.front().enabled);
  EXPECT_EQ(events[5].kind, ProgressEvent::Kind::kUpdate);
  EXPECT_EQ(events[5].done, 5);
  EXPECT_EQ(events.back().kind, ProgressEvent::Kind::kFinish);
  EXPECT_EQ(events.back().done, 10);
  EXPECT_EQ(events.back().postfix, "acc 0.5");

  Progress second("other", 0, "steps");
  EXPECT_NE(events.back().id, first_id);  // bars are told apart
}

TEST(ProgressObserver, ThrottlesUpdatesButNeverStartOrFinish) {
  ObserverGuard guard;
  int updates = 0, others = 0;
  set_progress_observer(
      [&](const ProgressEvent& e) {
        (e.kind == ProgressEvent::Kind::kUpdate ? updates : others)++;
      },
      60'000);
  {
    Progress bar("x", 1000, "items");
    for (int i = 0; i < 1000; ++i) bar.advance();
  }
  EXPECT_EQ(updates, 0);
  EXPECT_EQ(others, 2);
}

TEST(ProgressObserver, AnObserverExceptionStopsTheWorkAndRemovalRestoresPrinting) {
  ObserverGuard guard;
  set_progress_observer(
      [](const ProgressEvent& e) {
        if (e.done >= 3) throw std::runtime_error("interrupted");
      },
      0);
  Progress bar("x", 10, "items", false);
  bar.advance();
  bar.advance();
  EXPECT_THROW(bar.advance(), std::runtime_error);
  ProgressObserver previous = set_progress_observer({});
  EXPECT_TRUE(static_cast<bool>(previous));
  EXPECT_NO_THROW(bar.advance());  // no observer: prints (disabled here: nothing)
}

}  // namespace
}  // namespace xlt
