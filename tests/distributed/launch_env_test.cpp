// Reading the launch environment (torchrun, Slurm, bad values) and the per-rank epoch shards.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "train/distributed.h"
#include "train/train_data.h"
#include "xlt/core/error.h"
#include "xlt/distributed/distributed.h"

namespace xlt::distributed {
namespace {

TEST(LaunchEnv, NothingSetIsOneProcess) {
  const auto e = parse_launch_env({{"HOME", "/root"}});
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.source, "none");
}

TEST(LaunchEnv, Torchrun) {
  const auto e = parse_launch_env({{"RANK", "3"},
                                   {"WORLD_SIZE", "8"},
                                   {"LOCAL_RANK", "1"},
                                   {"LOCAL_WORLD_SIZE", "2"},
                                   {"MASTER_ADDR", "10.0.0.5"},
                                   {"MASTER_PORT", "1234"}});
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.5");
  EXPECT_EQ(e.master_port, 1234);
  EXPECT_TRUE(e.distributed());
}

TEST(LaunchEnv, SlurmWithNodeRanges) {
  const auto e = parse_launch_env({{"SLURM_PROCID", "5"},
                                   {"SLURM_NTASKS", "16"},
                                   {"SLURM_LOCALID", "1"},
                                   {"SLURM_NTASKS_PER_NODE", "4(x4)"},
                                   {"SLURM_JOB_NODELIST", "gpu[007-010,12],login1"}});
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_addr, "gpu007");
  EXPECT_EQ(e.master_port, 29500);
}

TEST(LaunchEnv, SlurmTaskCountsWithoutANumberAreQuoted) {
  try {
    parse_launch_env({{"SLURM_PROCID", "0"},
                      {"SLURM_NTASKS", "2"},
                      {"SLURM_NTASKS_PER_NODE", "(x2)"},
                      {"SLURM_JOB_NODELIST", "a,b"}});
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_NTASKS_PER_NODE='(x2)': expected a task count"),
              std::string::npos)
        << e.what();
  }
}

TEST(LaunchEnv, SlurmMasterOverrides) {
  const auto e = parse_launch_env({{"SLURM_PROCID", "0"},
                                   {"SLURM_NTASKS", "2"},
                                   {"SLURM_JOB_NODELIST", "a,b"},
                                   {"MASTER_ADDR", "head"},
                                   {"MASTER_PORT", "40000"}});
  EXPECT_EQ(e.master_addr, "head");
  EXPECT_EQ(e.master_port, 40000);
}

TEST(LaunchEnv, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node01"), "node01");
  EXPECT_EQ(first_slurm_host("node[01-04,07]"), "node01");
  EXPECT_EQ(first_slurm_host("node[3,5]x,other[1-2]"), "node3x");
  EXPECT_EQ(first_slurm_host("c1,c2"), "c1");
  EXPECT_THROW(first_slurm_host(""), UsageError);
  EXPECT_THROW(first_slurm_host("node[01-04"), UsageError);
  EXPECT_THROW(first_slurm_host("node[a-b]"), UsageError);
}

std::string error_of(const std::map<std::string, std::string>& env) {
  try {
    parse_launch_env(env);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  EXPECT_NE(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}})
                .find("RANK='x': expected an integer"),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}})
                .find("must be below the world size 2"),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "0"}}).find("WORLD_SIZE=0"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}}).find("WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
          .find("MASTER_PORT=70000"),
      std::string::npos);
  EXPECT_NE(error_of({{"SLURM_PROCID", "-1"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "a"}})
                .find("SLURM_PROCID=-1"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n[1-2"}})
          .find("unbalanced brackets"),
      std::string::npos);
}

// Global micro-batch k (the union over ranks) is the single-process batch k at the global batch
// size, for both batch orders; a short batch is padded by wrapping.
TEST(RankEpochBatches, UnionIsTheSingleProcessBatch) {
  std::vector<int64_t> lengths;
  for (int i = 0; i < 37; ++i) lengths.push_back(5 + (i * 7) % 13);
  for (bool grouped : {false, true}) {
    const int world = 2;
    const int64_t b = 4;
    const auto single = train::detail::epoch_batches(lengths, b * world, 9, 1, grouped);
    const auto r0 = train::detail::rank_epoch_batches(lengths, b, 9, 1, grouped, world, 0);
    const auto r1 = train::detail::rank_epoch_batches(lengths, b, 9, 1, grouped, world, 1);
    ASSERT_EQ(single.size(), 5u);  // ceil(37 / 8)
    ASSERT_EQ(r0.size(), 5u);
    ASSERT_EQ(r1.size(), 5u);
    int short_batches = 0;
    for (size_t k = 0; k < single.size(); ++k) {
      const size_t half = (single[k].size() + 1) / 2;
      EXPECT_EQ(r0[k].size(), half);
      EXPECT_EQ(r1[k].size(), half);
      std::set<int64_t> u(r0[k].begin(), r0[k].end());
      u.insert(r1[k].begin(), r1[k].end());
      EXPECT_EQ(u, std::set<int64_t>(single[k].begin(), single[k].end()))
          << "batch " << k << (grouped ? " grouped" : " shuffled");
      if (single[k].size() == 5) {
        ++short_batches;  // rank 1 gets positions 1, 3 and the wrapped position 0
        EXPECT_EQ(r1[k].back(), single[k].front());
      }
    }
    EXPECT_EQ(short_batches, 1);
  }
}

}  // namespace
}  // namespace xlt::distributed
