// With liveness.cpp (heartbeats in the store), the only file that talks to c10d: TCPStore
// rendezvous, ProcessGroupGloo / ProcessGroupNCCL, and the collectives behind
// xlt::distributed::Group. c10d's C++ API changed between libtorch 1.13 (backends derive from
// ProcessGroup) and 2.x (they derive from Backend); both expose the
// allreduce/broadcast/allgather/barrier calls used here with the same signatures.
#include <torch/version.h>

// PyTorch wheels may ship without the Gloo or NCCL headers (Debian has libgloo-dev; NCCL's
// header comes with the nvidia-nccl package): a backend whose headers are missing is reported
// at run time instead of breaking the build.
#if __has_include(<gloo/algorithm.h>)
#define XLT_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#endif
#if defined(XLT_WITH_CUDA) && __has_include(<nccl.h>)
#define XLT_HAVE_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#endif
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef XLT_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef XLT_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <csignal>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "distributed/liveness.h"
#include "xlt/core/error.h"
#include "xlt/distributed/distributed.h"

namespace xlt::distributed {
namespace {

#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

class C10dGroup final : public Group {
 public:
  C10dGroup(c10::intrusive_ptr<c10d::Store> store, std::unique_ptr<detail::Liveness> liveness,
            c10::intrusive_ptr<BackendBase> pg, int rank, int size, std::string backend,
            std::chrono::seconds timeout)
      : store_(std::move(store)),
        liveness_(std::move(liveness)),
        pg_(std::move(pg)),
        rank_(rank),
        size_(size),
        backend_(std::move(backend)),
        timeout_(timeout) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return backend_; }

  void all_reduce_mean(std::vector<at::Tensor>& tensors, int64_t bucket_bytes) override {
    for_each_bucket(tensors, bucket_bytes, [&](at::Tensor& flat) {
      std::vector<at::Tensor> v{flat};
      wait("all_reduce", pg_->allreduce(v));
      flat.div_(size_);
    });
  }

  void all_reduce_sum(at::Tensor& tensor) override {
    std::vector<at::Tensor> v{tensor};
    wait("all_reduce", pg_->allreduce(v));
  }

  std::unique_ptr<Pending> all_reduce_sum_async(at::Tensor& tensor) override {
    std::vector<at::Tensor> v{tensor};
    return std::make_unique<AsyncWork>(*this, pg_->allreduce(v));
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    for_each_bucket(tensors, 25 << 20, [&](at::Tensor& flat) {
      std::vector<at::Tensor> v{flat};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      wait("broadcast", pg_->broadcast(v, o));
    });
  }

  std::vector<std::string> all_gather_bytes(const std::string& mine) override {
    // Lengths first, then every buffer padded to the longest (allgather needs equal shapes).
    const auto dev = device();
    auto len = at::full({1}, static_cast<int64_t>(mine.size()), at::dtype(at::kLong).device(dev));
    std::vector<std::vector<at::Tensor>> lens_out(1);
    for (int r = 0; r < size_; ++r) lens_out[0].push_back(at::empty_like(len));
    std::vector<at::Tensor> lens_in{len};
    wait("all_gather", pg_->allgather(lens_out, lens_in));
    std::vector<int64_t> lens;
    int64_t longest = 1;
    for (auto& t : lens_out[0]) {
      lens.push_back(t.to(at::kCPU).item<int64_t>());
      longest = std::max(longest, lens.back());
    }
    auto buf = at::zeros({longest}, at::kByte);
    if (!mine.empty()) std::memcpy(buf.data_ptr(), mine.data(), mine.size());
    std::vector<at::Tensor> in{buf.to(dev)};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < size_; ++r) out[0].push_back(at::empty_like(in[0]));
    wait("all_gather", pg_->allgather(out, in));
    std::vector<std::string> result;
    for (int r = 0; r < size_; ++r) {
      auto cpu = out[0][static_cast<size_t>(r)].to(at::kCPU).contiguous();
      result.emplace_back(static_cast<const char*>(cpu.data_ptr()),
                          static_cast<size_t>(lens[static_cast<size_t>(r)]));
    }
    return result;
  }

  void wait_for_all(const std::string& what) override {
    const auto lost_after = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min<std::chrono::seconds>(timeout_, std::chrono::seconds(60)));
    const std::string why = liveness_->wait_for_all(waits_++, lost_after);
    if (why.empty()) return;
    throw Error("distributed wait (" + what + ") failed on rank " + std::to_string(rank_) + " of " +
                std::to_string(size_) + ": " + why + "; the run cannot continue" +
                (advice_.empty() ? "" : "; " + advice_));
  }

  void barrier() override {
    // A barrier is an all-reduce of one element: it honours the same timeout on every backend.
    auto t = at::zeros({1}, at::dtype(at::kFloat).device(device()));
    all_reduce_sum(t);
  }

 private:
  class AsyncWork final : public Pending {
   public:
    AsyncWork(C10dGroup& group, c10::intrusive_ptr<c10d::Work> work)
        : group_(group), work_(std::move(work)) {}
    void wait() override { group_.wait("all_reduce", work_); }

   private:
    C10dGroup& group_;
    c10::intrusive_ptr<c10d::Work> work_;
  };

  c10::Device device() const {
    return backend_ == "nccl" ? c10::Device(c10::kCUDA, cuda_device_index_)
                              : c10::Device(c10::kCPU);
  }

  // Packs consecutive tensors of one dtype/device into flat buffers of about `bucket_bytes`,
  // runs `op` on each and copies the results back.
  template <typename Op>
  void for_each_bucket(std::vector<at::Tensor>& tensors, int64_t bucket_bytes, Op op) {
    size_t i = 0;
    while (i < tensors.size()) {
      size_t j = i;
      int64_t bytes = 0;
      while (j < tensors.size() && tensors[j].scalar_type() == tensors[i].scalar_type() &&
             tensors[j].device() == tensors[i].device() &&
             (j == i || bytes + tensors[j].nbytes() <= static_cast<uint64_t>(bucket_bytes))) {
        bytes += static_cast<int64_t>(tensors[j].nbytes());
        ++j;
      }
      if (j == i + 1 && tensors[i].is_contiguous()) {
        op(tensors[i]);  // large tensors go as they are: no copy
      } else {
        std::vector<at::Tensor> flat_parts;
        for (size_t k = i; k < j; ++k) flat_parts.push_back(tensors[k].reshape({-1}));
        auto flat = at::cat(flat_parts);
        op(flat);
        int64_t off = 0;
        for (size_t k = i; k < j; ++k) {
          const int64_t n = tensors[k].numel();
          tensors[k].copy_(flat.narrow(0, off, n).view(tensors[k].sizes()));
          off += n;
        }
      }
      i = j;
    }
  }

  void wait(const char* what, const c10::intrusive_ptr<c10d::Work>& work) {
    liveness_->entered_collective();
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  // Gloo and NCCL say "connection closed" or "timed out" without naming the peer: the
  // heartbeats do (a couple of seconds of watching, once, on the way out).
  [[noreturn]] void fail(const char* what, const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    const std::string head = "distributed " + std::string(what) + " failed on rank " +
                             std::to_string(rank_) + " of " + std::to_string(size_) +
                             (activity_.empty() ? "" : " during " + activity_) + ": ";
    const std::string advice = advice_.empty() ? "" : "; " + advice_;
    const std::string lost = liveness_->diagnose(std::chrono::seconds(2));
    if (!lost.empty()) {
      throw Error(head + lost + "; the run cannot continue" + advice + " [" + backend_ + ": " +
                  msg + "]");
    }
    throw Error(head + "a peer rank exited or stopped responding (" + backend_ + ", timeout " +
                std::to_string(timeout_.count()) + " s)" + advice + " [" + msg + "]");
  }

  c10::intrusive_ptr<c10d::Store> store_;
  std::unique_ptr<detail::Liveness> liveness_;  // after store_: stops before the store server
  c10::intrusive_ptr<BackendBase> pg_;
  int rank_, size_;
  std::string backend_;
  std::chrono::seconds timeout_;
  int64_t waits_ = 0;  // wait_for_all calls so far (the same sequence on every rank)

 public:
  static inline c10::DeviceIndex cuda_device_index_ = 0;
};

std::unique_ptr<Group>& current_group() {
  static std::unique_ptr<Group> group;
  return group;
}

}  // namespace

bool built_with_cuda() {
#ifdef XLT_WITH_CUDA
  return true;
#else
  return false;
#endif
}

Group* current() {
  return current_group().get();
}

int agreed_signal(Group* group, int own) {
  if (!group) return own;
  at::Tensor seen = at::zeros({2}, at::kDouble);  // [SIGINT, SIGTERM]
  if (own != 0) seen[own == SIGTERM ? 1 : 0] = 1.0;
  group->all_reduce_sum(seen);
  const auto n = seen.accessor<double, 1>();
  return n[1] > 0 ? SIGTERM : n[0] > 0 ? SIGINT : 0;
}

Group* init(const LaunchEnv& env, const Options& options) {
  if (current_group()) return current_group().get();
  if (!env.distributed()) return nullptr;
  if (options.timeout.count() < 1) throw UsageError("--dist-timeout must be at least 1 second");
  const bool cuda = options.device.rfind("cuda", 0) == 0;
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout);
  // A write to a peer that died raises SIGPIPE in the store server, the heartbeats or Gloo;
  // by default that kills this rank silently, before the error path can name the lost peer
  // (and the launcher may then report this rank instead of the one that died). Python, and so
  // torchrun's ranks, ignore SIGPIPE too: the write fails with EPIPE and is reported.
  ::signal(SIGPIPE, SIG_IGN);
  c10::intrusive_ptr<c10d::Store> store;
  std::unique_ptr<detail::Liveness> liveness;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    // The store's own port: MASTER_PORT=0 lets rank 0 pick one.
    const int port = static_cast<c10d::TCPStore&>(*store).getPort();
    liveness = std::make_unique<detail::Liveness>(env.master_addr, port, env.rank, env.world_size);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw Error("distributed rendezvous failed on rank " + std::to_string(env.rank) + " of " +
                std::to_string(env.world_size) + " at " + env.master_addr + ":" +
                std::to_string(env.master_port) + " (" + env.source + " environment, timeout " +
                std::to_string(options.timeout.count()) + " s): " + msg.substr(0, msg.find('\n')));
  }
  c10::intrusive_ptr<BackendBase> pg;
  std::string backend;
  try {
    if (cuda) {
#ifdef XLT_HAVE_NCCL
      const auto colon = options.device.find(':');
      int index =
          colon == std::string::npos ? env.local_rank : std::stoi(options.device.substr(colon + 1));
      const int visible = c10::cuda::device_count();
      // A scheduler that gives each rank its own GPU (CUDA_VISIBLE_DEVICES of one device) leaves
      // that one visible, whatever LOCAL_RANK is.
      if (colon == std::string::npos && visible == 1) index = 0;
      if (index >= visible) {
        throw UsageError("--device " + options.device + " on rank " + std::to_string(env.rank) +
                         ": GPU " + std::to_string(index) + " (LOCAL_RANK) but " +
                         std::to_string(visible) +
                         " CUDA device(s) visible; run at most that many ranks per node");
      }
      C10dGroup::cuda_device_index_ = static_cast<c10::DeviceIndex>(index);
      // The model and batches go to an index-less "cuda", the current device: make it this
      // rank's GPU (torch.cuda.set_device(local_rank) under torchrun), or every rank's model
      // would share GPU 0 while NCCL works on GPU LOCAL_RANK.
      c10::cuda::set_device(C10dGroup::cuda_device_index_);
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, o);
      backend = "nccl";
#else
      throw UsageError("--device " + options.device +
                       " with several ranks needs a CUDA-enabled libtorch with NCCL (this xlt was "
                       "built without the NCCL backend: CPU-only libtorch or no nccl.h)");
#endif
    } else {
#ifdef XLT_HAVE_GLOO
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      o->threads = 2;
      pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, o);
      backend = "gloo";
#else
      throw UsageError(
          "distributed runs on CPU need the Gloo backend, but this xlt was built "
          "without the Gloo headers (install libgloo-dev or gloo's headers)");
#endif
    }
  } catch (const xlt::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw Error("distributed: cannot create the " + std::string(cuda ? "NCCL" : "Gloo") +
                " process group on rank " + std::to_string(env.rank) + " of " +
                std::to_string(env.world_size) + " (waited up to " +
                std::to_string(options.timeout.count()) + " s for every rank to join at " +
                env.master_addr + ":" + std::to_string(env.master_port) +
                "): " + msg.substr(0, msg.find('\n')));
  }
  current_group() = std::make_unique<C10dGroup>(store, std::move(liveness), pg, env.rank,
                                                env.world_size, backend, options.timeout);
  return current_group().get();
}

}  // namespace xlt::distributed
