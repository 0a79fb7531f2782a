// SIGINT/SIGTERM plumbing for InterruptScope (see interrupt.h). The handler only stores the
// signal number and writes one fixed line: everything else happens at the loop's safe point.
#include "xlt/core/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace xlt {
namespace {

std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "needed in a signal handler");

// Scopes may overlap on several threads (the Python package's finetune calls): the first one
// installs the handlers, the last one to end restores what was there before the first.
std::mutex g_scope_mutex;
int g_scopes = 0;
struct sigaction g_old_int, g_old_term;

void write_stderr(const char* s) noexcept {
  ssize_t r = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)r;
}

extern "C" void on_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig)) {
    // Second signal: the user insists. Die by it now (exit status 128 + sig, no state written).
    write_stderr("\nxlt: second interrupt: aborting without saving\n");
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  // One line for every run that holds a scope: fine-tuning saves at its next step, a study
  // stops after the unit it is in.
  write_stderr(
      "\nxlt: interrupt received: stopping at the next safe point (fine-tuning: after the current "
      "step, with a resumable state; a study: after the current unit); interrupt again to abort "
      "now\n");
}

}  // namespace

InterruptScope::InterruptScope() {
  std::lock_guard<std::mutex> lock(g_scope_mutex);
  if (g_scopes++ > 0) return;
  // The first scope of a run forgets an earlier run's request (a Python session runs many);
  // nested and overlapping ones keep it, so one Ctrl-C stops every run in progress, and one that
  // arrived while a study prepared a fine-tuning unit still stops it.
  g_signal.store(0);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads/writes in progress continue; the loop polls the flag
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptScope::~InterruptScope() {
  std::lock_guard<std::mutex> lock(g_scope_mutex);
  if (--g_scopes > 0) return;
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

bool interrupt_requested() noexcept {
  return g_signal.load() != 0;
}
int interrupt_signal() noexcept {
  return g_signal.load();
}
void clear_interrupt() noexcept {
  g_signal.store(0);
}

const char* interrupt_signal_name(int sig) noexcept {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "a signal";
  }
}

void ignore_file_size_signal() noexcept {
  ::signal(SIGXFSZ, SIG_IGN);
}

}  // namespace xlt
