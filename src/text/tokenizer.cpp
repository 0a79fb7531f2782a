// The non-virtual parts of the public tokenizer API: Encoding accessors, multi-threaded batch
// encoding and batch padding.
#include "xlt/text/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "text/pipeline.h"
#include "xlt/core/error.h"

namespace xlt::text {

std::string family_name(TokenizerFamily family) {
  switch (family) {
    case TokenizerFamily::kBert:
      return "bert";
    case TokenizerFamily::kXlmRoberta:
      return "xlm-roberta";
    case TokenizerFamily::kXglm:
      return "xglm";
  }
  return "unknown";
}

std::vector<TokenId> Encoding::sequence_token_ids(int sequence) const {
  std::vector<TokenId> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (sequence_ids[i] == sequence) out.push_back(ids[i]);
  }
  return out;
}

std::vector<std::string> Encoding::sequence_tokens(int sequence) const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (sequence_ids[i] == sequence) out.push_back(tokens[i]);
  }
  return out;
}

namespace {

// Runs body(i) for i in [0, n) on up to `num_threads` threads; rethrows the first exception.
template <class Body>
void parallel_for(std::size_t n, int num_threads, Body&& body) {
  std::size_t threads = num_threads > 0 ? static_cast<std::size_t>(num_threads)
                                        : std::max(1u, std::thread::hardware_concurrency());
  // Below a few hundred texts a thread costs more than it saves.
  threads = std::min(threads, std::max<std::size_t>(1, n / 64));
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    constexpr std::size_t kChunk = 32;
    for (;;) {
      std::size_t begin = next.fetch_add(kChunk);
      if (begin >= n) return;
      for (std::size_t i = begin; i < std::min(n, begin + kChunk); ++i) {
        try {
          body(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          next = n;
          return;
        }
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                              const EncodeOptions& options, int num_threads) const {
  std::vector<Encoding> out(texts.size());
  EncodeOptions one = options;
  if (one.padding == PaddingStrategy::kLongest) one.padding = PaddingStrategy::kNone;
  parallel_for(texts.size(), num_threads, [&](std::size_t i) { out[i] = encode(texts[i], one); });
  pad(out, options);
  return out;
}

std::vector<Encoding> Tokenizer::encode_pair_batch(
    const std::vector<std::pair<std::string, std::string>>& pairs, const EncodeOptions& options,
    int num_threads) const {
  std::vector<Encoding> out(pairs.size());
  EncodeOptions one = options;
  if (one.padding == PaddingStrategy::kLongest) one.padding = PaddingStrategy::kNone;
  parallel_for(pairs.size(), num_threads,
               [&](std::size_t i) { out[i] = encode_pair(pairs[i].first, pairs[i].second, one); });
  pad(out, options);
  return out;
}

void Tokenizer::pad(std::vector<Encoding>& batch, const EncodeOptions& options) const {
  if (options.padding == PaddingStrategy::kNone || batch.empty()) return;
  std::size_t target = 0;
  if (options.padding == PaddingStrategy::kMaxLength) {
    target = checked_pad_length(options.max_length ? options.max_length : info().model_max_length);
  } else {
    for (const Encoding& e : batch) target = std::max(target, e.size());
  }
  if (options.pad_to_multiple_of > 0) {
    const std::size_t m = options.pad_to_multiple_of;
    target = (target + m - 1) / m * m;
  }
  for (Encoding& e : batch) pad_encoding(e, target, special_tokens().pad, info().padding_side);
}

}  // namespace xlt::text
