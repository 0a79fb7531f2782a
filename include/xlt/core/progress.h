// Progress reporting for long work, on stderr: a live bar with rate and ETA when stderr is a
// terminal, periodic plain lines otherwise (logs, CI). One shared implementation for every
// command (tokenize, eval, finetune, download, ...).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace xlt {

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

  std::string label_, unit_, postfix_;
  int64_t total_ = 0, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_render_;
};

}  // namespace xlt
