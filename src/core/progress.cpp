// Progress bar / periodic progress lines on stderr (see include/xlt/core/progress.h).
#include "xlt/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>

namespace xlt {
namespace {

struct ObserverSlot {
  std::mutex mutex;
  std::shared_ptr<const ProgressObserver> observer;
  std::chrono::milliseconds interval{100};
};

ObserverSlot& observer_slot() {
  static ObserverSlot slot;
  return slot;
}

std::atomic<uint64_t> next_progress_id{1};

}  // namespace

struct ScopedObserverState {
  ProgressObserver observer;
  std::chrono::milliseconds interval;
  std::atomic<bool> live{true};
};

namespace {
thread_local std::shared_ptr<ScopedObserverState> t_scoped;
}  // namespace

ScopedProgressObserver::ScopedProgressObserver(ProgressObserver observer, int min_interval_ms)
    : state_(std::make_shared<ScopedObserverState>()), previous_(t_scoped) {
  state_->observer = std::move(observer);
  state_->interval = std::chrono::milliseconds(std::max(0, min_interval_ms));
  t_scoped = state_;
}

ScopedProgressObserver::~ScopedProgressObserver() {
  state_->live = false;
  t_scoped = previous_;
}

ProgressObserver set_progress_observer(ProgressObserver observer, int min_interval_ms) {
  auto& slot = observer_slot();
  std::lock_guard<std::mutex> lock(slot.mutex);
  ProgressObserver previous = slot.observer ? *slot.observer : ProgressObserver{};
  slot.observer =
      observer ? std::make_shared<const ProgressObserver>(std::move(observer)) : nullptr;
  slot.interval = std::chrono::milliseconds(std::max(0, min_interval_ms));
  return previous;
}

bool Progress::notify(ProgressEvent::Kind kind, bool force) {
  const ProgressObserver* observer = nullptr;
  std::shared_ptr<const ProgressObserver> global;
  std::chrono::milliseconds interval;
  if (scoped_) {
    if (!scoped_->live) return false;
    observer = &scoped_->observer;
    interval = scoped_->interval;
  } else {
    auto& slot = observer_slot();
    std::lock_guard<std::mutex> lock(slot.mutex);
    global = slot.observer;
    observer = global.get();
    interval = slot.interval;
  }
  if (!observer || !*observer) return false;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_notify_ < interval) return true;
  last_notify_ = now;
  ProgressEvent e;
  e.kind = kind;
  e.id = id_;
  e.label = label_;
  e.unit = unit_;
  e.postfix = postfix_;
  e.done = done_;
  e.total = total_;
  e.enabled = enabled_;
  // Called without the slot's lock, so the observer may itself install or remove observers.
  (*observer)(e);
  return true;
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1),
      id_(next_progress_id++),
      scoped_(t_scoped),
      start_(std::chrono::steady_clock::now()),
      last_render_(start_),
      last_notify_(start_) {
  notify(ProgressEvent::Kind::kStart, true);
}

Progress::~Progress() {
  // An observer's exception must not escape a destructor (it may run during unwinding).
  try {
    finish();
  } catch (...) {
  }
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  double s = elapsed_seconds();
  return s > 0 ? static_cast<double>(done_) / s : 0.0;
}

void Progress::advance(int64_t n) {
  set(done_ + n);
}

void Progress::set(int64_t done) {
  done_ = done;
  if (finished_) return;
  if (notify(ProgressEvent::Kind::kUpdate, false) || !enabled_) return;
  auto now = std::chrono::steady_clock::now();
  // Terminals refresh 10x a second; logs get a line every 10 s so they stay readable.
  auto period = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000);
  if (now - last_render_ >= period) {
    last_render_ = now;
    render(false);
  }
}

void Progress::set_postfix(std::string text) {
  postfix_ = std::move(text);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (notify(ProgressEvent::Kind::kFinish, true)) return;
  if (enabled_) render(true);
}

std::string Progress::human_count(double v) {
  const char* suffix[] = {"", "k", "M", "G", "T"};
  int i = 0;
  while (std::fabs(v) >= 1000 && i < 4) {
    v /= 1000;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, i == 0 ? "%.0f%s" : "%.1f%s", v, suffix[i]);
  return buf;
}

std::string Progress::human_bytes(double v) {
  const char* suffix[] = {"B", "kB", "MB", "GB", "TB"};
  int i = 0;
  while (std::fabs(v) >= 1000 && i < 4) {
    v /= 1000;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, i == 0 ? "%.0f %s" : "%.1f %s", v, suffix[i]);
  return buf;
}

std::string Progress::human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}

void Progress::render(bool final) {
  double elapsed = elapsed_seconds();
  double r = rate();
  bool bytes = unit_ == "B";
  std::ostringstream line;
  line << label_ << ": ";
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    if (tty_) {
      const int width = 24;
      int filled = static_cast<int>(frac * width);
      line << "[" << std::string(filled, '#') << std::string(width - filled, '.') << "] ";
    }
    line << static_cast<int>(frac * 100) << "% ";
    line << (bytes ? human_bytes(done_) : human_count(done_)) << "/"
         << (bytes ? human_bytes(total_) : human_count(total_));
  } else {
    line << (bytes ? human_bytes(done_) : human_count(done_)) << " " << (bytes ? "" : unit_);
  }
  line << " [" << human_duration(elapsed);
  if (total_ > 0 && !final && r > 0) line << "<" << human_duration((total_ - done_) / r);
  line << ", " << (bytes ? human_bytes(r) + "/s" : human_count(r) + " " + unit_ + "/s") << "]";
  if (!postfix_.empty()) line << " " << postfix_;
  if (tty_) {
    std::cerr << "\r\033[K" << line.str() << (final ? "\n" : "") << std::flush;
  } else {
    std::cerr << line.str() << "\n" << std::flush;
  }
}

}  // namespace xlt
