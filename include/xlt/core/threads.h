// How many CPU threads a command uses when --threads is 0 (the default). libtorch's OpenMP pool
// (and OpenBLAS's, which is the same libgomp pool in Debian's libtorch 1.13) waits at a barrier
// after every parallel op; when the machine has fewer free cores than threads, a descheduled
// thread stalls every op of its peers for a scheduler time slice, and a small model, whose ops take
// microseconds, slows down by an order of magnitude (docs/finetune.md, "Threads", has the figures).
// So the default is the number of cores not already busy, never more than the cores we may use.
//
// Usage:
//   int n = xlt::default_threads(xlt::usable_cores(), xlt::busy_cpus());
#pragma once

namespace xlt {

// The most threads a command takes: more only oversubscribes any machine, and a typo such as
// --threads 100000 would make libtorch start that many.
inline constexpr int kMaxThreads = 1024;

// Cores this process may run on (sched_getaffinity; hardware_concurrency if that fails), >= 1.
int usable_cores();

// CPUs other processes keep busy right now: the larger of the 1-minute load average and the
// number of runnable tasks besides this one (/proc/loadavg; 0 when unreadable). The load average
// lags by a minute; the runnable count sees a job that started a second ago.
double busy_cpus();

// max(1, min(cores, cores - round(busy))): threads that do not outnumber the free cores.
int default_threads(int cores, double busy);

}  // namespace xlt
