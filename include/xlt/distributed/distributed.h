// Data-parallel runs on libtorch's own c10d: reading the launch environment (torchrun or Slurm),
// joining the process group (TCPStore rendezvous; Gloo on CPU, NCCL on CUDA) and the few
// collectives xlt needs (bucketed gradient mean, broadcast, all-gather of byte buffers, barrier).
// docs/distributed.md describes launching and the training/evaluation semantics.
//
// Usage:
//   auto env = xlt::distributed::launch_env_from_process();     // RANK/WORLD_SIZE/... or SLURM_*
//   xlt::distributed::Group* g = xlt::distributed::init(env, {std::chrono::seconds(300), "cpu"});
//   if (g) g->all_reduce_mean(grads);                      // nullptr when WORLD_SIZE is 1
//
// The group is process-wide (like torch.distributed's default group): init() once, current()
// anywhere. Every collective throws xlt::Error naming the operation and this rank when a peer
// is gone or the --dist-timeout passes, so a dead rank never hangs the others; the message names
// the lost rank(s), found from heartbeats every rank keeps in the rendezvous store (no launcher
// needed). Not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace xlt::distributed {

// Where this process sits in the job.
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // "torchrun", "slurm" or "none"
  bool distributed() const { return world_size > 1; }
};

// Parses torchrun's RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT or,
// when RANK/WORLD_SIZE are absent, Slurm's SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
// SLURM_NTASKS_PER_NODE and the first host of SLURM_JOB_NODELIST (MASTER_ADDR/MASTER_PORT still
// override; the port defaults to 29500). Neither present = a single process. UsageError for
// malformed or inconsistent values (names the variable and the value).
LaunchEnv parse_launch_env(const std::map<std::string, std::string>& env);
// parse_launch_env over this process's environment.
LaunchEnv launch_env_from_process();

// First host of a Slurm node list: "node[01-04,07],gpu3" -> "node01"; "a,b" -> "a".
// UsageError on unbalanced brackets or empty lists.
std::string first_slurm_host(const std::string& nodelist);

struct Options {
  std::chrono::seconds timeout{300};  // rendezvous and every collective
  std::string device = "cpu";         // "cpu" -> Gloo, "cuda[:N]" -> NCCL
};

// A collective in flight (Group::all_reduce_sum_async): wait() before touching its tensor. wait()
// throws like the blocking collectives (naming a lost rank).
class Pending {
 public:
  virtual ~Pending() = default;
  virtual void wait() = 0;
};

// A joined process group. Tensors passed to collectives live on the group's device.
class Group {
 public:
  virtual ~Group() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;
  // In place: every tensor becomes the mean over ranks. Tensors are packed into flat buckets of
  // about `bucket_bytes` (one all-reduce each) as DDP does, which pays off for the hundreds of
  // small bias/LayerNorm gradients of a transformer.
  virtual void all_reduce_mean(std::vector<at::Tensor>& tensors,
                               int64_t bucket_bytes = 25 << 20) = 0;
  // In place: the sum over ranks (float64/int64 scalars for losses and counts).
  virtual void all_reduce_sum(at::Tensor& tensor) = 0;
  // Starts the in-place sum of a contiguous tensor and returns at once (gradient buckets
  // all-reduced while the backward pass goes on). As with every collective, all ranks must start
  // them in the same order.
  virtual std::unique_ptr<Pending> all_reduce_sum_async(at::Tensor& tensor) = 0;
  // In place: rank `root`'s values everywhere (bucketed like all_reduce_mean).
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root = 0) = 0;
  // Every rank's buffer, in rank order (buffers may differ in length).
  virtual std::vector<std::string> all_gather_bytes(const std::string& mine) = 0;
  virtual void barrier() = 0;
  // A barrier without the collective timeout, for ranks that idle while one rank works alone
  // for long (the rank-0-only stages of `xlt study`): it waits as long as the missing ranks keep
  // their heartbeat, and throws xlt::Error naming a rank that exited or stopped beating for
  // min(--dist-timeout, 60 s). `what` names the wait in that message. Polls the rendezvous
  // store (every 50-500 ms), so it costs milliseconds, not a collective.
  virtual void wait_for_all(const std::string& what) = 0;

  // What this rank is doing ("training step 38 of 100") and what the user can do when a
  // collective fails ("rerun with --resume ..."): both are quoted in the error a lost peer causes.
  void set_failure_context(std::string activity, std::string advice) {
    activity_ = std::move(activity);
    advice_ = std::move(advice);
  }

 protected:
  std::string activity_, advice_;
};

// Joins the group `env` describes (rank 0 hosts the TCPStore) and makes it current. Returns
// nullptr for a single process. A second call returns the existing group.
Group* init(const LaunchEnv& env, const Options& options);
// The group init() joined, or nullptr.
Group* current();
// True when this process writes outputs (rank 0, or no group).
inline bool is_writer() {
  Group* g = current();
  return g == nullptr || g->rank() == 0;
}

// The stop signal every rank agrees on, given this rank's own (0, SIGINT or SIGTERM): a signal
// reaches the ranks of a job at slightly different times, and all must stop after the same step
// rather than one waiting in the next collective until the timeout. Any rank interrupted = all
// stop, with SIGTERM if any rank had one, else SIGINT. A collective (every rank must call it at
// the same point); with no group, returns `own`.
int agreed_signal(Group* group, int own);

// Whether this libtorch was built with CUDA (decided at build time: XLT_WITH_CUDA).
bool built_with_cuda();

}  // namespace xlt::distributed
