// Step profiles (`xlt finetune --profile DIR`, `xlt eval --profile DIR`): where a window of
// training or evaluation steps spends its time, per operator and, on a GPU, per kernel, as
// torch.profiler tells Hugging Face users. After the window the profiler writes, atomically:
//   DIR/trace.json    a Chrome trace-event file for Perfetto or chrome://tracing (with PyTorch
//                     2.x it is Kineto's own trace: CUDA kernels, launches and their links)
//   DIR/ops.csv       one row per operator or kernel: calls, self and total time, per step
//   DIR/profile.json  the summary: steps, wall time per step, device busy share, top entries
// Backends: Kineto with PyTorch 2.x (CPU operators, and CUDA kernels when the profiled device is
// CUDA); the legacy profiler with libtorch 1.13, whose Debian build has no Kineto (CPU only).
// xlt's own phases appear as `xlt::` ranges (xlt::forward_backward, xlt::optimizer_step, ...).
//
// Usage:
//   xlt::models::ProfileOptions po;
//   po.dir = "prof";          // steps 4..8 recorded (skip 3, steps 5), written after step 8
//   xlt::models::StepProfiler profiler(po);
//   for (...) { profiler.begin_step(); run_step(); profiler.end_step(); }
#pragma once

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace xlt::models {

struct ProfileOptions {
  std::filesystem::path dir;  // empty = no profile
  // Steps run unrecorded first: the allocator's first fills, cuDNN/cuBLAS autotuning and lazy
  // initialisation would otherwise dominate a short window.
  int64_t skip = 3;
  int64_t steps = 5;  // steps recorded
  // Device kernels are recorded when this is a CUDA device (PyTorch 2.x builds); the window's
  // edges synchronise it so every kernel of a recorded step falls inside the window.
  c10::Device device = c10::kCPU;
  bool record_shapes = false;  // input shapes on each operator (in trace.json; larger files)
};

// One timed range: a CPU operator or xlt:: scope, or a device kernel/copy.
struct ProfileEvent {
  std::string name;
  uint64_t thread = 0;  // CPU thread id, or the device stream for device events
  bool device = false;
  double start_us = 0;
  double dur_us = 0;
};

struct OpStats {
  std::string name;
  bool device = false;
  int64_t calls = 0;
  double self_us = 0;   // total minus the ranges nested in it on the same thread
  double total_us = 0;  // every call's whole duration
};

struct ProfileSummary {
  std::string backend;  // "kineto" or "legacy"
  int64_t steps = 0;
  double wall_us = 0;         // the recorded window, first step's start to last step's end
  double device_busy_us = 0;  // union of the device events' intervals
  int64_t device_events = 0;  // kernels and copies launched in the window
  std::vector<OpStats> ops;   // CPU entries by self time, then device entries by time
  std::string device_name;    // "cpu" or e.g. "cuda:0"

  double wall_ms_per_step() const;
  // Device busy time over wall time: low on a GPU means the host (kernel launches, Python-free
  // though it is) or synchronisation is the bottleneck, not the kernels.
  double device_busy_fraction() const;
  nlohmann::json to_json(size_t top) const;
};

// Aggregates events (any order) by name; nested ranges on one thread count once in self time.
ProfileSummary summarise_profile(std::vector<ProfileEvent> events, int64_t steps, double wall_us);

// ops.csv: name,device,calls,self_ms,total_ms,self_ms_per_step,self_percent.
std::string profile_ops_csv(const ProfileSummary& summary);

// The top entries as a fixed-width table (what `--profile` prints to stderr).
std::string format_profile_table(const ProfileSummary& summary, size_t top);

// A Chrome trace-event document of the events (used where the backend has no exporter).
nlohmann::json chrome_trace(const std::vector<ProfileEvent>& events);

// Records steps skip+1 .. skip+steps of a loop that brackets each step with begin_step() and
// end_step(), then writes DIR (see above) and keeps the summary. The constructor checks the
// options (UsageError for bad counts or an unwritable DIR) before any work and records nothing.
// Destroying it while recording stops the profiler and writes nothing: a run interrupted inside
// the window leaves no partial profile. One profiler records at a time (libtorch's is global).
class StepProfiler {
 public:
  explicit StepProfiler(ProfileOptions options);
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  void begin_step();
  // True when this step closed the window (the files are written and summary() is set).
  bool end_step();
  bool enabled() const { return !options_.dir.empty(); }
  int64_t steps_seen() const { return done_; }
  // What a loop that ended before the window closed prints ("" when finished or disabled).
  std::string unfinished_note() const;
  bool recording() const { return recording_; }
  bool finished() const { return finished_; }
  const ProfileSummary& summary() const { return summary_; }

 private:
  void start();
  void stop();

  ProfileOptions options_;
  int64_t done_ = 0;  // steps seen
  bool recording_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_time_;
  ProfileSummary summary_;
};

}  // namespace xlt::models
