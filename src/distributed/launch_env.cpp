// Reading where this process sits in a distributed job from torchrun's or Slurm's environment
// variables; a pure function over a map so every case is unit-testable.
#include <cctype>
#include <cstdlib>

#include "xlt/core/error.h"
#include "xlt/distributed/distributed.h"

extern char** environ;

namespace xlt::distributed {
namespace {

using Env = std::map<std::string, std::string>;

const std::string* find(const Env& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? nullptr : &it->second;
}

int parse_int(const std::string& key, const std::string& value, int min, int max) {
  const char* expected = "an integer";
  size_t used = 0;
  long v = 0;
  try {
    v = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) {
    throw UsageError("environment variable " + key + "='" + value + "': expected " + expected);
  }
  if (v < min || v > max) {
    throw UsageError("environment variable " + key + "=" + value + ": expected a value in [" +
                     std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int>(v);
}

int get_int(const Env& env, const std::string& key, int fallback, int min, int max) {
  const std::string* v = find(env, key);
  return v ? parse_int(key, *v, min, max) : fallback;
}

// SLURM_NTASKS_PER_NODE looks like "4" or "4(x2),3".
int first_count(const std::string& key, const std::string& value) {
  size_t n = 0;
  while (n < value.size() && std::isdigit(static_cast<unsigned char>(value[n]))) ++n;
  if (n == 0) {
    throw UsageError(key + "='" + value + "': expected a task count first (\"4\" or \"4(x2),3\")");
  }
  return parse_int(key, value.substr(0, n), 1, 1 << 20);
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  if (nodelist.empty()) throw UsageError("SLURM_JOB_NODELIST is empty");
  // The first host ends at the first comma outside brackets.
  int depth = 0;
  size_t end = nodelist.size();
  for (size_t i = 0; i < nodelist.size(); ++i) {
    const char ch = nodelist[i];
    if (ch == '[') ++depth;
    if (ch == ']' && --depth < 0) break;
    if (ch == ',' && depth == 0) {
      end = i;
      break;
    }
  }
  const std::string first = nodelist.substr(0, end);
  const size_t open = first.find('[');
  const size_t close = first.find(']');
  if (depth != 0 || (open == std::string::npos) != (close == std::string::npos) ||
      (open != std::string::npos && close < open)) {
    throw UsageError("SLURM_JOB_NODELIST='" + nodelist + "': unbalanced brackets");
  }
  if (open == std::string::npos) {
    if (first.empty()) throw UsageError("SLURM_JOB_NODELIST='" + nodelist + "': empty host name");
    return first;
  }
  // "node[01-04,07]suffix": the first item of the range list, zero padding kept.
  const std::string prefix = first.substr(0, open);
  const std::string suffix = first.substr(close + 1);
  std::string range = first.substr(open + 1, close - open - 1);
  range = range.substr(0, range.find(','));
  range = range.substr(0, range.find('-'));
  if (prefix.empty() || range.empty() ||
      range.find_first_not_of("0123456789") != std::string::npos) {
    throw UsageError("SLURM_JOB_NODELIST='" + nodelist +
                     "': expected host names like node[01-04,07]");
  }
  return prefix + range + suffix;
}

LaunchEnv parse_launch_env(const Env& env) {
  LaunchEnv e;
  constexpr int kMaxRanks = 1 << 20;
  const bool torchrun = find(env, "RANK") || find(env, "WORLD_SIZE");
  const bool slurm = !torchrun && find(env, "SLURM_PROCID") && find(env, "SLURM_NTASKS");
  if (torchrun) {
    if (!find(env, "RANK") || !find(env, "WORLD_SIZE")) {
      throw UsageError(std::string("environment: ") +
                       (find(env, "RANK") ? "RANK is set but WORLD_SIZE is not"
                                          : "WORLD_SIZE is set but RANK is not") +
                       " (set both, as torchrun does)");
    }
    e.source = "torchrun";
    e.world_size = get_int(env, "WORLD_SIZE", 1, 1, kMaxRanks);
    e.rank = get_int(env, "RANK", 0, 0, kMaxRanks);
    e.local_rank = get_int(env, "LOCAL_RANK", e.rank, 0, kMaxRanks);
    e.local_world_size = get_int(env, "LOCAL_WORLD_SIZE", e.world_size, 1, kMaxRanks);
    if (e.world_size > 1 && !find(env, "MASTER_ADDR")) {
      throw UsageError("environment: WORLD_SIZE=" + std::to_string(e.world_size) +
                       " but MASTER_ADDR is not set (the host of rank 0)");
    }
  } else if (slurm) {
    e.source = "slurm";
    e.world_size = get_int(env, "SLURM_NTASKS", 1, 1, kMaxRanks);
    e.rank = get_int(env, "SLURM_PROCID", 0, 0, kMaxRanks);
    e.local_rank = get_int(env, "SLURM_LOCALID", 0, 0, kMaxRanks);
    if (const std::string* v = find(env, "SLURM_NTASKS_PER_NODE"))
      e.local_world_size = first_count("SLURM_NTASKS_PER_NODE", *v);
    else
      e.local_world_size = e.world_size;
    if (const std::string* v = find(env, "SLURM_JOB_NODELIST")) {
      e.master_addr = first_slurm_host(*v);
    } else if (const std::string* v2 = find(env, "SLURM_NODELIST")) {
      e.master_addr = first_slurm_host(*v2);
    } else if (e.world_size > 1 && !find(env, "MASTER_ADDR")) {
      throw UsageError("environment: Slurm job without SLURM_JOB_NODELIST or MASTER_ADDR");
    }
  } else {
    return e;
  }
  if (e.rank >= e.world_size) {
    throw UsageError("environment: rank " + std::to_string(e.rank) + " (" +
                     (slurm ? "SLURM_PROCID" : "RANK") + ") must be below the world size " +
                     std::to_string(e.world_size));
  }
  if (torchrun && e.local_rank >= e.local_world_size) {
    throw UsageError("environment: LOCAL_RANK " + std::to_string(e.local_rank) +
                     " must be below LOCAL_WORLD_SIZE " + std::to_string(e.local_world_size));
  }
  if (const std::string* v = find(env, "MASTER_ADDR")) {
    if (v->empty()) throw UsageError("environment variable MASTER_ADDR is empty");
    e.master_addr = *v;
  }
  e.master_port = get_int(env, "MASTER_PORT", 29500, 1, 65535);
  return e;
}

LaunchEnv launch_env_from_process() {
  Env env;
  for (char** p = environ; p && *p; ++p) {
    const std::string kv(*p);
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return parse_launch_env(env);
}

}  // namespace xlt::distributed
