// The gradient collectives on known tensors: two forked ranks join a Gloo group on 127.0.0.1 and
// all-reduce tensors whose values are known per rank, so that a mean computed as a sum (or
// divided twice, or bucketed wrongly) shows as a wrong number, which comparing one process with
// N ranks through AdamW (invariant to the gradient's scale) cannot see.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <cmath>
#include <iostream>

#include "common/test_env.h"
#include "xlt/distributed/distributed.h"

namespace xlt::distributed {
namespace {

// Rank r's tensors: value (r + 1) * (k + 1) at flat index k of every tensor, in several shapes
// and dtypes, so that the small bucket size below packs some together and splits others.
std::vector<at::Tensor> rank_tensors(int rank) {
  std::vector<at::Tensor> out;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{3}, {2, 5}, {40}, {1}, {7, 3}}) {
    at::Tensor t = at::arange(1, 1 + at::ones(shape).numel(), at::kFloat).reshape(shape);
    out.push_back(t * static_cast<float>(rank + 1));
  }
  return out;
}

// Runs in a forked child; returns the exit status (0 = every value right).
int rank_main(int rank, int port) {
  try {
    LaunchEnv env;
    env.rank = rank;
    env.world_size = 2;
    env.local_rank = rank;
    env.local_world_size = 2;
    env.master_port = port;
    env.source = "torchrun";
    Group* g = init(env, {std::chrono::seconds(30), "cpu"});
    if (!g || g->size() != 2) return 10;
    // Mean of (k+1) and 2(k+1) is 1.5(k+1), in 64-byte buckets (16 floats: many buckets).
    std::vector<at::Tensor> t = rank_tensors(rank);
    g->all_reduce_mean(t, 64);
    int bad = 0;
    const std::vector<at::Tensor> one = rank_tensors(0);
    for (size_t i = 0; i < t.size(); ++i) {
      const double err = (t[i] - one[i] * 1.5f).abs().max().item<double>();
      if (err != 0.0) {
        std::cerr << "rank " << rank << ": tensor " << i << " off by " << err << "\n";
        ++bad;
      }
    }
    // The one-bucket default gives the same.
    std::vector<at::Tensor> whole = rank_tensors(rank);
    g->all_reduce_mean(whole);
    for (size_t i = 0; i < whole.size(); ++i) bad += !at::equal(whole[i], t[i]);
    // Sums (losses, counts) are sums.
    at::Tensor s = at::full({2}, static_cast<double>(rank + 1), at::kDouble);
    g->all_reduce_sum(s);
    bad += s[0].item<double>() != 3.0 || s[1].item<double>() != 3.0;
    g->barrier();
    return bad == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "rank " << rank << ": " << e.what() << "\n";
    return 2;
  }
}

TEST(AllReduce, MeanOfKnownTensorsOverTwoRanks) {
  const int port = xlt::test::free_port();
  pid_t pids[2];
  for (int r = 0; r < 2; ++r) {
    pids[r] = ::fork();
    ASSERT_GE(pids[r], 0);
    if (pids[r] == 0) ::_exit(rank_main(r, port));
  }
  for (int r = 0; r < 2; ++r) {
    int status = 0;
    ASSERT_EQ(::waitpid(pids[r], &status, 0), pids[r]);
    ASSERT_TRUE(WIFEXITED(status)) << "rank " << r << " did not exit";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "rank " << r;
  }
}

}  // namespace
}  // namespace xlt::distributed
