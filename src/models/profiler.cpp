// StepProfiler and the summary of its events (see xlt/models/profiler.h). The two backends meet
// in ProfileEvent: Kineto's events (PyTorch 2.x) and the legacy profiler's push/pop pairs
// (libtorch 1.13) both become timed ranges, which one summariser turns into self/total times.
#include "xlt/models/profiler.h"

#include <ATen/ATen.h>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/autograd/profiler_kineto.h>
#else
#include <torch/csrc/autograd/profiler_legacy.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "xlt/core/error.h"
#include "xlt/core/file.h"

namespace xlt::models {

namespace {

namespace prof = torch::autograd::profiler;
namespace impl = torch::profiler::impl;

// Debian's libtorch 1.13 is built without Kineto: its Kineto entry points record nothing.
constexpr bool kUseKineto = TORCH_VERSION_MAJOR >= 2;

double ms(double us) {
  return us / 1000.0;
}

// Waits for the device's queued work, so that a window edge falls between steps on the device
// too (a tiny copy to the host synchronises the current stream, the one xlt computes on).
void sync_device(const c10::Device& device) {
  if (!device.is_cpu()) at::zeros({1}, at::TensorOptions().device(device)).cpu();
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

#if TORCH_VERSION_MAJOR < 2
std::vector<ProfileEvent> legacy_events(const prof::thread_event_lists& lists) {
  std::vector<ProfileEvent> out;
  for (const auto& list : lists) {
    // A pop names no operator: it closes the push with the same handle.
    std::unordered_map<uint64_t, const prof::LegacyEvent*> open;
    for (const auto& e : list) {
      if (e.kind() == prof::EventKind::PushRange) {
        open[e.handle()] = &e;
      } else if (e.kind() == prof::EventKind::PopRange) {
        auto it = open.find(e.handle());
        if (it == open.end()) continue;
        const auto& push = *it->second;
        out.push_back({push.name(), push.threadId(), false, push.cpuUs(), push.cpuElapsedUs(e)});
        open.erase(it);
      }
    }
  }
  return out;
}
#else
std::vector<ProfileEvent> kineto_events(const prof::ProfilerResult& result) {
  std::vector<ProfileEvent> out;
  for (const auto& e : result.events()) {
    const bool device = e.deviceType() != c10::DeviceType::CPU;
    // A device event's "thread" is its stream; CPU events keep their thread.
    const uint64_t thread =
        device ? static_cast<uint64_t>(e.deviceResourceId()) : e.startThreadId();
    out.push_back({e.name(), thread, device, static_cast<double>(e.startNs()) / 1000.0,
                   static_cast<double>(e.durationNs()) / 1000.0});
  }
  return out;
}
#endif

}  // namespace

double ProfileSummary::wall_ms_per_step() const {
  return steps > 0 ? ms(wall_us) / static_cast<double>(steps) : 0.0;
}

double ProfileSummary::device_busy_fraction() const {
  return wall_us > 0 ? device_busy_us / wall_us : 0.0;
}

nlohmann::json ProfileSummary::to_json(size_t top) const {
  nlohmann::json ops_json = nlohmann::json::array();
  size_t cpu = 0, dev = 0;
  for (const auto& op : ops) {
    if ((op.device ? dev : cpu)++ >= top) continue;
    ops_json.push_back({{"name", op.name},
                        {"device", op.device},
                        {"calls", op.calls},
                        {"self_ms", ms(op.self_us)},
                        {"total_ms", ms(op.total_us)},
                        {"self_ms_per_step", steps > 0 ? ms(op.self_us) / steps : 0.0}});
  }
  nlohmann::json j = {{"backend", backend},
                      {"device", device_name},
                      {"steps", steps},
                      {"wall_ms", ms(wall_us)},
                      {"wall_ms_per_step", wall_ms_per_step()},
                      {"device_events", device_events},
                      {"device_busy_ms", ms(device_busy_us)},
                      {"device_busy_fraction", device_busy_fraction()},
                      {"ops", ops_json}};
  return j;
}

ProfileSummary summarise_profile(std::vector<ProfileEvent> events, int64_t steps, double wall_us) {
  ProfileSummary s;
  s.steps = steps;
  s.wall_us = wall_us;
  // Per thread by start, longer first on ties: a parent precedes the ranges it contains.
  std::sort(events.begin(), events.end(), [](const ProfileEvent& a, const ProfileEvent& b) {
    if (a.device != b.device) return a.device < b.device;
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.start_us != b.start_us) return a.start_us < b.start_us;
    return a.dur_us > b.dur_us;
  });
  std::vector<double> child_us(events.size(), 0.0);
  std::vector<size_t> stack;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (i > 0 && (events[i - 1].thread != e.thread || events[i - 1].device != e.device)) {
      stack.clear();
    }
    if (e.device) continue;  // kernels on a stream do not nest
    while (!stack.empty()) {
      const auto& top = events[stack.back()];
      if (e.start_us < top.start_us + top.dur_us) break;
      stack.pop_back();
    }
    if (!stack.empty()) child_us[stack.back()] += e.dur_us;
    stack.push_back(i);
  }

  std::map<std::pair<bool, std::string>, OpStats> by_name;
  std::vector<std::pair<double, double>> busy;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    auto& op = by_name[{e.device, e.name}];
    op.name = e.name;
    op.device = e.device;
    ++op.calls;
    op.total_us += e.dur_us;
    op.self_us += std::max(0.0, e.dur_us - child_us[i]);
    if (e.device) busy.emplace_back(e.start_us, e.start_us + e.dur_us);
  }
  std::sort(busy.begin(), busy.end());
  double end = -1e300;
  for (const auto& [b, e] : busy) {
    if (e <= end) continue;
    s.device_busy_us += e - std::max(b, end);
    end = e;
  }
  s.device_events = static_cast<int64_t>(busy.size());
  for (auto& [key, op] : by_name) s.ops.push_back(std::move(op));
  std::stable_sort(s.ops.begin(), s.ops.end(), [](const OpStats& a, const OpStats& b) {
    if (a.device != b.device) return a.device < b.device;
    if (a.self_us != b.self_us) return a.self_us > b.self_us;
    return a.name < b.name;
  });
  return s;
}

std::string profile_ops_csv(const ProfileSummary& s) {
  double cpu_self = 0, dev_self = 0;
  for (const auto& op : s.ops) (op.device ? dev_self : cpu_self) += op.self_us;
  std::ostringstream o;
  o << std::setprecision(6);
  o << "name,device,calls,self_ms,total_ms,self_ms_per_step,self_percent\n";
  for (const auto& op : s.ops) {
    const double all = op.device ? dev_self : cpu_self;
    o << csv_field(op.name) << ',' << (op.device ? "device" : "cpu") << ',' << op.calls << ','
      << ms(op.self_us) << ',' << ms(op.total_us) << ','
      << (s.steps > 0 ? ms(op.self_us) / static_cast<double>(s.steps) : 0.0) << ','
      << (all > 0 ? 100.0 * op.self_us / all : 0.0) << '\n';
  }
  return o.str();
}

std::string format_profile_table(const ProfileSummary& s, size_t top) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  o << "profile (" << s.backend << ", " << s.device_name << "): " << s.steps << " steps, "
    << s.wall_ms_per_step() << " ms per step";
  if (s.device_events > 0) {
    o << ", device busy " << std::setprecision(1) << 100.0 * s.device_busy_fraction() << " %, "
      << s.device_events / std::max<int64_t>(1, s.steps) << " device events per step"
      << std::setprecision(2);
  }
  o << "\n";
  auto table = [&](bool device) {
    double all = 0;
    for (const auto& op : s.ops) all += op.device == device ? op.self_us : 0.0;
    size_t shown = 0;
    for (const auto& op : s.ops) {
      if (op.device != device || shown++ >= top) continue;
      if (shown == 1) {
        o << (device ? "  device kernel" : "  cpu operator") << std::string(device ? 39 : 40, ' ')
          << "   calls  ms/step  self %\n";
      }
      std::string name = op.name.size() > 52 ? op.name.substr(0, 49) + "..." : op.name;
      o << "  " << std::left << std::setw(52) << name << std::right << std::setw(8) << op.calls
        << std::setw(9) << ms(op.self_us) / static_cast<double>(std::max<int64_t>(1, s.steps))
        << std::setw(8) << std::setprecision(1) << (all > 0 ? 100.0 * op.self_us / all : 0.0)
        << std::setprecision(2) << "\n";
    }
  };
  table(false);
  table(true);
  return o.str();
}

nlohmann::json chrome_trace(const std::vector<ProfileEvent>& events) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : events) {
    list.push_back({{"name", e.name},
                    {"ph", "X"},
                    {"cat", e.device ? "kernel" : "cpu_op"},
                    {"pid", e.device ? 1 : 0},
                    {"tid", e.thread},
                    {"ts", e.start_us},
                    {"dur", e.dur_us}});
  }
  return {{"traceEvents", list}, {"displayTimeUnit", "ms"}};
}

StepProfiler::StepProfiler(ProfileOptions options) : options_(std::move(options)) {
  if (!enabled()) return;
  if (options_.skip < 0) throw UsageError("--profile-skip must be >= 0");
  if (options_.steps < 1) throw UsageError("--profile-steps must be >= 1");
  prepare_output_folder(options_.dir, "--profile");
  summary_.device_name = options_.device.str();
}

StepProfiler::~StepProfiler() {
  if (!recording_) return;
  try {
#if TORCH_VERSION_MAJOR >= 2
    prof::disableProfiler();
#else
    prof::disableProfilerLegacy();
#endif
  } catch (...) {  // never throw from a destructor unwinding another error
  }
}

void StepProfiler::start() {
  impl::ProfilerConfig config(kUseKineto ? impl::ProfilerState::KINETO : impl::ProfilerState::CPU,
                              options_.record_shapes);
  sync_device(options_.device);
#if TORCH_VERSION_MAJOR >= 2
  // Kineto logs that it found no GPU when a CUDA build profiles the CPU of a machine without one.
  if (options_.device.is_cpu()) setenv("KINETO_LOG_LEVEL", "5", 0);
  std::set<impl::ActivityType> activities{impl::ActivityType::CPU};
  if (options_.device.is_cuda()) activities.insert(impl::ActivityType::CUDA);
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  summary_.backend = "kineto";
#else
  if (!options_.device.is_cpu()) {
    std::fprintf(stderr, "xlt: libtorch %s has no Kineto: the profile records CPU operators only\n",
                 TORCH_VERSION);
  }
  prof::enableProfilerLegacy(config);
  summary_.backend = "legacy";
#endif
  recording_ = true;
  start_time_ = std::chrono::steady_clock::now();
}

void StepProfiler::stop() {
  sync_device(options_.device);
  const double wall_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start_time_)
          .count();
  recording_ = false;
  std::vector<ProfileEvent> events;
  const auto trace_path = options_.dir / "trace.json";
#if TORCH_VERSION_MAJOR >= 2
  auto result = prof::disableProfiler();
  events = kineto_events(*result);
  // Kineto writes the file itself; a temp name and a rename keep it atomic.
  const auto temp = temp_path_for(trace_path);
  try {
    result->save(temp.string());
    std::filesystem::rename(temp, trace_path);
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw IoError(trace_path.string() + ": cannot write the trace: " + e.what());
  }
#else
  events = legacy_events(prof::disableProfilerLegacy());
  write_file_atomic(trace_path, chrome_trace(events).dump() + "\n");
#endif
  const std::string backend = summary_.backend, device_name = summary_.device_name;
  summary_ = summarise_profile(std::move(events), options_.steps, wall_us);
  summary_.backend = backend;
  summary_.device_name = device_name;
  write_file_atomic(options_.dir / "ops.csv", profile_ops_csv(summary_));
  write_file_atomic(options_.dir / "profile.json", summary_.to_json(25).dump(2) + "\n");
  finished_ = true;
}

void StepProfiler::begin_step() {
  if (enabled() && !finished_ && !recording_ && done_ == options_.skip) start();
}

bool StepProfiler::end_step() {
  if (!enabled() || finished_) return false;
  ++done_;
  if (!recording_ || done_ != options_.skip + options_.steps) return false;
  stop();
  return true;
}

std::string StepProfiler::unfinished_note() const {
  if (!enabled() || finished_) return "";
  return "profile: the run ended after " + std::to_string(done_) + " steps, before the window (" +
         std::to_string(options_.skip) + " skipped + " + std::to_string(options_.steps) +
         " recorded) closed; nothing written to " + options_.dir.string() +
         " (lower --profile-skip / --profile-steps)";
}

}  // namespace xlt::models
