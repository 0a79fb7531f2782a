// Graceful interruption for long runs (`xlt finetune`): while an InterruptScope lives, the first
// SIGINT or SIGTERM only sets a flag that the loop polls at a safe point (after an optimizer
// step), so it can save a resumable state and exit; a second signal aborts at once with the
// default action. Process-wide (signal dispositions are global): scopes may overlap, also on
// several threads and ending in any order; the handlers stay until the last one ends. The first
// scope (none active before it) clears an earlier request; the others keep it.
//
// Usage:
//   xlt::InterruptScope scope;               // handlers installed
//   while (...) { step(); if (xlt::interrupt_requested()) { save(); break; } }
//   if (int sig = xlt::interrupt_signal()) return xlt::interrupt_exit_code(sig);  // 130 / 143
#pragma once

namespace xlt {

class InterruptScope {
 public:
  InterruptScope();
  // Restores the previous handlers (a pending request stays readable through interrupt_signal).
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};

// True once SIGINT or SIGTERM arrived inside a scope. Async-signal-safe.
bool interrupt_requested() noexcept;
// The signal that asked to stop (SIGINT or SIGTERM), 0 if none.
int interrupt_signal() noexcept;
// Forget a request (tests; the first InterruptScope of a run does it itself).
void clear_interrupt() noexcept;
// The shell convention for "terminated by signal": 128 + sig (130 for SIGINT, 143 for SIGTERM).
inline int interrupt_exit_code(int sig) noexcept {
  return 128 + sig;
}
// "SIGINT" / "SIGTERM" / "signal N".
const char* interrupt_signal_name(int sig) noexcept;

// Makes write(2) past RLIMIT_FSIZE fail with EFBIG (reported as "File too large") instead of
// killing the process with SIGXFSZ, so a full quota or size limit is a clear error. Call once at
// start-up.
void ignore_file_size_signal() noexcept;

}  // namespace xlt
