// The default thread count: cores not already busy (see include/xlt/core/threads.h).
#include "xlt/core/threads.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

namespace xlt {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

double busy_cpus() {
  // "0.52 0.58 0.59 3/157 12345": 1-, 5-, 15-minute load, runnable/total tasks, last pid.
  std::ifstream in("/proc/loadavg");
  double load1 = 0, load5 = 0, load15 = 0;
  long running = 0;
  char slash = 0;
  if (!(in >> load1 >> load5 >> load15 >> running >> slash) || slash != '/') return 0.0;
  // The runnable count includes this process, which is reading the file.
  return std::max({0.0, load1, static_cast<double>(running - 1)});
}

int default_threads(int cores, double busy) {
  cores = std::max(1, cores);
  if (!std::isfinite(busy) || busy < 0) busy = 0;
  const int free = cores - static_cast<int>(std::lround(std::min(busy, 1e6)));
  return std::clamp(free, 1, cores);
}

}  // namespace xlt
