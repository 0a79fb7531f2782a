// The process-wide progress observer (include/xlt/core/progress.h): what front ends such as the
// Python package see instead of the stderr bar.
#include "xlt/core/progress.h"

#include <signal.h>

#include <gtest/gtest.h>

#include "xlt/core/interrupt.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
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

// Two calls on two threads (the Python package's pipelines) each see their own bars only, also
// when the scopes end in either order; the thread's scope wins over the process-wide observer.
TEST(ScopedProgressObserver, EachThreadSeesItsOwnBars) {
  ObserverGuard guard;
  int global_events = 0;
  set_progress_observer([&](const ProgressEvent&) { ++global_events; }, 0);
  std::vector<std::string> seen_a, seen_b;
  auto work = [](std::vector<std::string>& seen, const std::string& label, int n) {
    ScopedProgressObserver scope([&](const ProgressEvent& e) { seen.push_back(e.label); }, 0);
    Progress bar(label, n, "items", false);
    for (int i = 0; i < n; ++i) {
      bar.advance();
      std::this_thread::yield();
    }
  };
  std::thread a([&] { work(seen_a, "a", 2000); });
  std::thread b([&] { work(seen_b, "b", 50); });
  a.join();
  b.join();
  ASSERT_EQ(seen_a.size(), 2002u);  // start, 2000 updates, finish
  ASSERT_EQ(seen_b.size(), 52u);
  for (const auto& l : seen_a) EXPECT_EQ(l, "a");
  for (const auto& l : seen_b) EXPECT_EQ(l, "b");
  EXPECT_EQ(global_events, 0);
  Progress outside("c", 1, "items", false);  // no scope on this thread: the global observer
  EXPECT_EQ(global_events, 1);
}

TEST(ScopedProgressObserver, ScopesNestAndABarOutlivingItsScopeStopsReporting) {
  std::vector<std::string> outer_seen, inner_seen;
  std::unique_ptr<Progress> late;
  {
    ScopedProgressObserver outer([&](const ProgressEvent& e) { outer_seen.push_back(e.label); }, 0);
    {
      ScopedProgressObserver inner([&](const ProgressEvent& e) { inner_seen.push_back(e.label); },
                                   0);
      Progress bar("inner", 1, "items", false);
      late = std::make_unique<Progress>("late", 5, "items", false);
    }
    Progress bar("outer", 1, "items", false);
    late->advance();  // its scope is gone: not reported to either
  }
  EXPECT_EQ(inner_seen, (std::vector<std::string>{"inner", "late", "inner"}));
  EXPECT_EQ(outer_seen, (std::vector<std::string>{"outer", "outer"}));
  late.reset();
  EXPECT_EQ(inner_seen.size(), 3u);
}

// Two runs on two threads (the Python package's finetune calls) hold overlapping scopes that
// end in either order: the handler stays until the last ends, then the original is back (it
// stayed xlt's after the first run and Ctrl-C never reached Python again).
TEST(InterruptScope, OverlappingScopesRestoreTheOriginalHandler) {
  struct sigaction original {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &original), 0);
  auto handler = [] {
    struct sigaction now {};
    ::sigaction(SIGINT, nullptr, &now);
    return now.sa_handler;
  };
  auto first = std::make_unique<InterruptScope>();
  const auto xlt_handler = handler();
  EXPECT_NE(xlt_handler, original.sa_handler);
  auto second = std::make_unique<InterruptScope>();
  first.reset();  // the first to start ends first
  EXPECT_EQ(handler(), xlt_handler);
  second.reset();
  EXPECT_EQ(handler(), original.sa_handler);
}

// The first scope of a run forgets an earlier run's request; a scope opened inside another keeps
// the request that arrived (a study's Ctrl-C during a fine-tuning unit's set-up still stops it).
TEST(InterruptScope, OnlyTheFirstScopeForgetsAnEarlierRequest) {
  {
    InterruptScope outer;
    ::raise(SIGINT);  // caught by xlt's handler: a flag and one line on stderr
    ASSERT_EQ(interrupt_signal(), SIGINT);
    InterruptScope inner;
    EXPECT_EQ(interrupt_signal(), SIGINT);
  }
  EXPECT_EQ(interrupt_signal(), SIGINT);  // kept after the run, until the next one starts
  InterruptScope next;
  EXPECT_EQ(interrupt_signal(), 0);
}

}  // namespace
}  // namespace xlt
