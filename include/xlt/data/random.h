// Fully specified pseudo-random numbers for everything xlt samples or shuffles (data subsets,
// training batch order, bootstrap resamples). The C++ standard leaves the output of
// std::uniform_int_distribution and std::shuffle implementation-defined, so a seed would give
// different examples on libstdc++ and libc++; these generators and the derived operations below
// produce the same numbers on every platform, compiler and thread count.
//
//   SplitMix64     Steele, Lea & Flood (2014), as in Vigna's splitmix64.c; used for seeding.
//   Xoshiro256ss   xoshiro256** 1.0 (Blackman & Vigna 2018), state filled by SplitMix64(seed).
//
// Usage:
//   xlt::data::Xoshiro256ss rng(seed);
//   uint64_t k = rng.uniform_below(10);                 // 0..9, unbiased (rejection)
//   auto picked = xlt::data::sample_without_replacement(n, 100, seed);
//
// Generators are plain values: not thread-safe, cheap to copy; give each thread its own, seeded
// with derive_seed(seed, stream) so results do not depend on how work is split between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace xlt::data {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();

 private:
  uint64_t state_;
};

class Xoshiro256ss {
 public:
  // State words s[0..3] = the first four SplitMix64(seed) outputs (Vigna's recommended seeding).
  explicit Xoshiro256ss(uint64_t seed);
  // Raw state, for checking against the published reference vectors. Must not be all zero.
  static Xoshiro256ss from_state(uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3);

  uint64_t next();
  // Uniform integer in [0, bound), bound > 0. Unbiased: draws below 2^64 mod bound are
  // rejected (the arc4random_uniform construction), then the draw is reduced modulo bound.
  uint64_t uniform_below(uint64_t bound);
  // Uniform double in [0, 1) with 53 random bits: (next() >> 11) * 2^-53.
  double uniform01();

 private:
  Xoshiro256ss() = default;
  uint64_t s_[4] = {0, 0, 0, 0};
};

// An independent seed for sub-stream `stream` of `seed` (e.g. one per bootstrap resample or per
// epoch): the first SplitMix64 output for seed ^ SplitMix64-scrambled stream. Deterministic.
uint64_t derive_seed(uint64_t seed, uint64_t stream);

// NumPy's PCG64 seeded as np.random.default_rng(seed) does it (SeedSequence(seed) with a pool of
// four words, generate_state(4, uint64) -> state and increment of PCG XSL-RR 128/64), to select
// the very rows a Python pipeline selects. next32() buffers the upper half of a 64-bit draw, as
// NumPy's bit generator does.
class NumpyPcg64 {
 public:
  explicit NumpyPcg64(uint64_t seed);
  uint64_t next64();
  uint32_t next32();

 private:
  unsigned __int128 state_ = 0, inc_ = 0;
  bool has_upper_ = false;
  uint32_t upper_ = 0;
};

// np.random.default_rng(seed).permutation(n), which Hugging Face datasets' Dataset.shuffle(seed)
// uses: Fisher-Yates from the last position down, j drawn by NumPy's masked rejection
// (random_interval) on next32(). Identical to NumPy 1.26's output.
std::vector<int64_t> numpy_permutation(int64_t n, uint64_t seed);

// Fisher-Yates shuffle of `v` in place, from the last position down: for i = n-1 .. 1,
// j = rng.uniform_below(i + 1), swap(v[i], v[j]).
template <typename T>
void shuffle(std::vector<T>& v, Xoshiro256ss& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    std::size_t j = static_cast<std::size_t>(rng.uniform_below(i));
    if (j != i - 1) std::swap(v[i - 1], v[j]);
  }
}

// `k` distinct positions out of [0, n), chosen uniformly with Xoshiro256ss(seed) by a partial
// Fisher-Yates shuffle: for i = 0 .. k-1, j = i + uniform_below(n - i), swap(p[i], p[j]); the
// first k entries of p are the sample. Returned in ascending (source) order. k >= n returns all.
std::vector<int64_t> sample_without_replacement(int64_t n, int64_t k, uint64_t seed);

// The same draw in sampled order (the order the partial shuffle picked them); the ascending
// result above is this vector sorted.
std::vector<int64_t> sample_without_replacement_ordered(int64_t n, int64_t k, uint64_t seed);

}  // namespace xlt::data
