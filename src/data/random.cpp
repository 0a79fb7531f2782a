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

namespace {
// NumPy's SeedSequence constants (numpy/random/bit_generator.pyx).
constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd,
                   kMultB = 0x58f38ded, kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  return value ^ (value >> 16);
}

uint32_t mix(uint32_t x, uint32_t y) {
  const uint32_t r = kMixMultL * x - kMixMultR * y;
  return r ^ (r >> 16);
}

// SeedSequence(seed).generate_state(4, uint64).
std::vector<uint64_t> seed_sequence_state(uint64_t seed) {
  std::vector<uint32_t> entropy = {static_cast<uint32_t>(seed)};
  if (seed >> 32) entropy.push_back(static_cast<uint32_t>(seed >> 32));
  uint32_t pool[4];
  uint32_t h = kInitA;
  for (size_t i = 0; i < 4; ++i) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0, h);
  for (size_t src = 0; src < 4; ++src)
    for (size_t dst = 0; dst < 4; ++dst)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], h));
  uint32_t words[8];
  uint32_t hb = kInitB;
  for (size_t i = 0; i < 8; ++i) {
    uint32_t v = pool[i % 4] ^ hb;
    hb *= kMultB;
    v *= hb;
    words[i] = v ^ (v >> 16);
  }
  std::vector<uint64_t> out(4);
  for (size_t i = 0; i < 4; ++i) out[i] = words[2 * i] | (uint64_t{words[2 * i + 1]} << 32);
  return out;
}

constexpr unsigned __int128 kPcgMultiplier =
    (static_cast<unsigned __int128>(0x2360ED051FC65DA4ULL) << 64) | 0x4385DF649FCCF645ULL;
}  // namespace

NumpyPcg64::NumpyPcg64(uint64_t seed) {
  const auto v = seed_sequence_state(seed);
  const unsigned __int128 init = (static_cast<unsigned __int128>(v[0]) << 64) | v[1];
  const unsigned __int128 seq = (static_cast<unsigned __int128>(v[2]) << 64) | v[3];
  inc_ = (seq << 1) | 1;
  state_ = inc_;  // step from state 0
  state_ += init;
  state_ = state_ * kPcgMultiplier + inc_;
}

uint64_t NumpyPcg64::next64() {
  state_ = state_ * kPcgMultiplier + inc_;
  const uint64_t x = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
  const unsigned rot = static_cast<unsigned>(state_ >> 122);
  return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t NumpyPcg64::next32() {
  if (has_upper_) {
    has_upper_ = false;
    return upper_;
  }
  const uint64_t v = next64();
  has_upper_ = true;
  upper_ = static_cast<uint32_t>(v >> 32);
  return static_cast<uint32_t>(v);
}

std::vector<int64_t> numpy_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<int64_t>(i);
  NumpyPcg64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t mask = static_cast<uint64_t>(i);
    for (int s : {1, 2, 4, 8, 16, 32}) mask |= mask >> s;
    uint64_t j;
    if (static_cast<uint64_t>(i) <= 0xffffffffULL) {
      while ((j = (rng.next32() & mask)) > static_cast<uint64_t>(i)) {
      }
    } else {
      while ((j = (rng.next64() & mask)) > static_cast<uint64_t>(i)) {
      }
    }
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

}  // namespace xlt::data
