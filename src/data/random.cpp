// SplitMix64, xoshiro256** and the sampling built on them; see include/xlt/data/random.h.
#include "xlt/data/random.h"

#include <algorithm>

namespace xlt::data {

namespace {
inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
}  // namespace

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Xoshiro256ss::Xoshiro256ss(uint64_t seed) {
  SplitMix64 sm(seed);
  for (auto& w : s_) w = sm.next();
}

Xoshiro256ss Xoshiro256ss::from_state(uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3) {
  Xoshiro256ss r;
  r.s_[0] = s0;
  r.s_[1] = s1;
  r.s_[2] = s2;
  r.s_[3] = s3;
  return r;
}

uint64_t Xoshiro256ss::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Xoshiro256ss::uniform_below(uint64_t bound) {
  if (bound <= 1) return 0;
  // 2^64 mod bound, computed in 64-bit arithmetic; draws below it would over-represent the
  // smallest residues.
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    uint64_t r = next();
    if (r >= threshold) return r % bound;
  }
}

double Xoshiro256ss::uniform01() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  SplitMix64 scramble(stream);
  SplitMix64 mixed(seed ^ scramble.next());
  return mixed.next();
}

std::vector<int64_t> sample_without_replacement_ordered(int64_t n, int64_t k, uint64_t seed) {
  if (n <= 0 || k <= 0) return {};
  k = std::min(k, n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  Xoshiro256ss rng(seed);
  for (int64_t i = 0; i < k; ++i) {
    int64_t j = i + static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(n - i)));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  p.resize(static_cast<size_t>(k));
  return p;
}

std::vector<int64_t> sample_without_replacement(int64_t n, int64_t k, uint64_t seed) {
  auto p = sample_without_replacement_ordered(n, k, seed);
  std::sort(p.begin(), p.end());
  return p;
}

}  // namespace xlt::data
