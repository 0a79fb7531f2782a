// Progress reporting for long work, on stderr: a live bar with rate and ETA when stderr is a
// terminal, periodic plain lines otherwise (logs, CI). One shared implementation for every
// command (tokenize, eval, finetune, download, ...).
//
// A front end that shows progress its own way (the Python package's tqdm bars) installs an
// observer, for the calling thread (ScopedProgressObserver: concurrent calls each see their own
// bars) or for the whole process: every Progress then reports to it instead of printing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace xlt {

// One report to a progress observer. `id` tells bars apart (unique per Progress in the process).
struct ProgressEvent {
  enum class Kind { kStart, kUpdate, kFinish };
  Kind kind = Kind::kUpdate;
  uint64_t id = 0;
  std::string label, unit, postfix;
  int64_t done = 0;
  int64_t total = 0;    // 0 = unknown
  bool enabled = true;  // the run asked for progress output (false: observe, show nothing)
};

// Called on the thread that advances the bar: at start, at most every `min_interval_ms` while
// it advances, and at finish. It may throw to abort the work (e.g. to deliver a Ctrl-C); the
// exception leaves Progress::advance/set like any error of the work itself.
using ProgressObserver = std::function<void(const ProgressEvent&)>;

// Installs (or with an empty function removes) the observer; returns the previous one.
// Thread-safe; Progress objects created before the call keep reporting to the new observer.
ProgressObserver set_progress_observer(ProgressObserver observer, int min_interval_ms = 100);

struct ScopedObserverState;

// Installs `observer` for the Progress bars created on this thread while the scope lives; they
// report to it instead of the process-wide observer. Scopes nest (the inner one wins) and end in
// reverse order. A bar created inside the scope stops reporting to it once the scope ends (and
// then prints as if no observer were installed): the observer may own resources the scope frees.
class ScopedProgressObserver {
 public:
  explicit ScopedProgressObserver(ProgressObserver observer, int min_interval_ms = 100);
  ~ScopedProgressObserver();
  ScopedProgressObserver(const ScopedProgressObserver&) = delete;
  ScopedProgressObserver& operator=(const ScopedProgressObserver&) = delete;

 private:
  std::shared_ptr<ScopedObserverState> state_, previous_;
};

class Progress {
 public:
  // `total` may be 0 when unknown. `unit` names what is counted ("pairs", "B", "steps").
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true);
  ~Progress();

  void advance(int64_t n = 1);
  void set(int64_t done);
  // Extra text shown after the rate (e.g. "loss 0.693").
  void set_postfix(std::string text);
  // Prints the final line (idempotent; also called by the destructor).
  void finish();

  int64_t done() const { return done_; }
  double elapsed_seconds() const;
  // Items per second since start.
  double rate() const;

  // Human-readable "1.2k", "3.4M" and byte sizes "12.3 MB"; durations "1:02:03".
  static std::string human_count(double v);
  static std::string human_bytes(double v);
  static std::string human_duration(double seconds);

 private:
  void render(bool final);
  // Reports to the observer, if one is installed; false when none is (then render on stderr).
  bool notify(ProgressEvent::Kind kind, bool force);

  std::string label_, unit_, postfix_;
  int64_t total_ = 0, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  uint64_t id_ = 0;
  std::shared_ptr<ScopedObserverState> scoped_;  // the thread's observer when the bar was made
  std::chrono::steady_clock::time_point start_, last_render_, last_notify_;
};

}  // namespace xlt
