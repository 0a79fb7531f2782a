// Sliding-window perplexity of a causal LM (Hugging Face's "perplexity of fixed-length models"
// recipe) with exact token accounting, plus bits per byte / per character of the text.
#include "xlt/eval/perplexity.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>

#include "xlt/core/error.h"
#include "xlt/core/progress.h"
#include "xlt/data/batching.h"
#include "xlt/data/nli.h"

namespace xlt::eval {
namespace {

constexpr int64_t kIgnore = -100;
// Rows of [N, vocab] float logits computed at once: 512 x 256k floats = 0.5 GB for XGLM's
// vocabulary, a bound that keeps scoring memory independent of batch and window size.
constexpr int64_t kLogitChunk = 512;

class EvalModeGuard {
 public:
  explicit EvalModeGuard(models::Model& m) : model_(m), was_training_(m.is_training()) {
    model_.eval();
  }
  ~EvalModeGuard() {
    if (was_training_) model_.train(true);
  }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  models::Model& model_;
  bool was_training_;
};

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v') return false;
  return true;
}

int64_t count_code_points(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void check_causal(const models::Model& model) {
  if (model.kind() != models::ModelKind::kCausalLM) {
    throw ConfigError("perplexity needs a causal language model (xglm); this model is " +
                      io::model_type_name(model.type()));
  }
}

}  // namespace

JoinMode parse_join_mode(const std::string& name) {
  if (name == "stream") return JoinMode::kStream;
  if (name == "lines") return JoinMode::kLines;
  throw UsageError("--join: expected stream or lines, got '" + name + "'");
}

std::string join_mode_name(JoinMode mode) {
  return mode == JoinMode::kStream ? "stream" : "lines";
}

std::vector<Window> sliding_windows(int64_t num_tokens, int64_t max_length, int64_t stride) {
  if (max_length < 2)
    throw UsageError("--max-length must be >= 2 (a window needs context and a target), got " +
                     std::to_string(max_length));
  if (stride < 1 || stride > max_length)
    throw UsageError("--stride must be in [1, max_length=" + std::to_string(max_length) +
                     "], got " + std::to_string(stride));
  std::vector<Window> windows;
  if (num_tokens < 2) return windows;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < num_tokens; begin += stride) {
    const int64_t end = std::min(begin + max_length, num_tokens);
    // A window's first token has no context inside the window: with stride == max_length it is
    // skipped (as HF's recipe, whose label shift drops it).
    windows.push_back({begin, end, std::max(prev_end, begin + 1)});
    prev_end = end;
    if (end == num_tokens) break;
  }
  return windows;
}

TokenNll score_tokens(models::Model& model, const at::Tensor& input_ids,
                      const at::Tensor& attention_mask, const at::Tensor& labels) {
  check_causal(model);
  if (input_ids.dim() != 2 || labels.sizes() != input_ids.sizes()) {
    throw std::invalid_argument("score_tokens: input_ids and labels must both be [batch, seq]");
  }
  EvalModeGuard mode(model);
  c10::InferenceMode inference;
  const auto dev = model.device();
  models::ModelInputs in;
  in.input_ids = input_ids.to(dev, at::kLong);
  if (attention_mask.defined()) in.attention_mask = attention_mask.to(dev);

  at::Tensor emb = model.output_embeddings();
  models::ForwardOptions fo;
  fo.compute_logits = !emb.defined();
  // Position t's target is labels[t + 1] (standard causal shift).
  at::Tensor targets = labels.to(dev, at::kLong).slice(1, 1);
  at::Tensor where = targets.ne(kIgnore).nonzero();  // [N, 2]: (row, source position)
  // Packed execution leaves padding positions zero: use it only when every position read is a
  // real token (labels of -100 at padding, as the perplexity command builds them).
  at::Tensor rows = where.select(1, 0), cols = where.select(1, 1);
  if (in.attention_mask.defined()) {
    fo.packed = in.attention_mask.index({rows, cols}).eq(1).all().item<bool>();
  } else {
    fo.packed = true;
  }
  models::ModelOutputs out = model.forward(in, fo);

  at::Tensor tgt = targets.index({rows, cols});
  at::Tensor states =
      emb.defined() ? out.last_hidden_state.index({rows, cols}) : out.logits.index({rows, cols});
  const int64_t n = tgt.size(0);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < n; s += kLogitChunk) {
    const int64_t e = std::min(n, s + kLogitChunk);
    at::Tensor logits = states.slice(0, s, e);
    if (emb.defined()) logits = at::matmul(logits, emb.t());
    logits = logits.to(at::kFloat);
    at::Tensor t = tgt.slice(0, s, e).unsqueeze(1);
    parts.push_back(at::logsumexp(logits, {1}) - logits.gather(1, t).squeeze(1));
  }
  at::Tensor values = n > 0 ? at::cat(parts).cpu() : at::zeros({0}, at::kFloat);

  TokenNll r;
  r.nll = at::zeros(input_ids.sizes(), at::kFloat);
  if (n > 0) r.nll.index_put_({rows.cpu(), cols.cpu() + 1}, values);
  r.total = values.to(at::kDouble).sum().item<double>();
  r.count = n;
  return r;
}

PerplexityResult sequences_perplexity(models::Model& model,
                                      const std::vector<std::vector<int64_t>>& sequences,
                                      int64_t pad_id, const PerplexityOptions& options) {
  check_causal(model);
  const auto start = std::chrono::steady_clock::now();
  const int64_t max_positions = model.config().max_position_embeddings;
  const int64_t L = options.max_length > 0 ? options.max_length : max_positions;
  if (L > max_positions) {
    throw UsageError("--max-length " + std::to_string(L) + " exceeds the model's " +
                     "max_position_embeddings (" + std::to_string(max_positions) + ")");
  }
  const int64_t S = options.stride > 0 ? options.stride : std::max<int64_t>(1, L / 2);
  if (options.batch_size < 1) throw UsageError("--batch-size must be >= 1");

  struct Job {
    size_t seq;
    Window w;
  };
  std::vector<Job> jobs;
  std::vector<int64_t> lengths;
  PerplexityResult r;
  for (size_t i = 0; i < sequences.size(); ++i) {
    r.tokens += static_cast<int64_t>(sequences[i].size());
    for (const Window& w : sliding_windows(static_cast<int64_t>(sequences[i].size()), L, S)) {
      jobs.push_back({i, w});
      lengths.push_back(w.end - w.begin);
    }
  }
  r.windows = static_cast<int64_t>(jobs.size());
  // The total is a sum over windows, so any batching order gives the same result; sorting only
  // saves padding when windows differ in length (per-line mode, last windows).
  auto batches = data::length_sorted_batches(lengths, options.batch_size);
  Progress progress(options.progress_label, r.windows, "windows", options.progress);
  for (const auto& batch : batches) {
    const auto rows = static_cast<int64_t>(batch.size());
    const int64_t T = lengths[batch.front()];  // longest first
    at::Tensor ids = at::full({rows, T}, pad_id, at::kLong);
    at::Tensor mask = at::zeros({rows, T}, at::kLong);
    at::Tensor labels = at::full({rows, T}, kIgnore, at::kLong);
    int64_t* ip = ids.data_ptr<int64_t>();
    int64_t* mp = mask.data_ptr<int64_t>();
    int64_t* lp = labels.data_ptr<int64_t>();
    for (int64_t b = 0; b < rows; ++b) {
      const Job& job = jobs[batch[b]];
      const auto& seq = sequences[job.seq];
      for (int64_t t = job.w.begin; t < job.w.end; ++t) {
        const int64_t k = b * T + (t - job.w.begin);
        ip[k] = seq[t];
        mp[k] = 1;
        if (t >= job.w.score_from) lp[k] = seq[t];
      }
    }
    TokenNll s = score_tokens(model, ids, mask, labels);
    r.nll += s.total;
    r.scored_tokens += s.count;
    progress.advance(rows);
  }
  progress.finish();
  r.loss = r.scored_tokens > 0 ? r.nll / static_cast<double>(r.scored_tokens) : std::nan("");
  r.perplexity = std::exp(r.loss);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

PerplexityResult text_perplexity(models::Model& model, const text::Tokenizer& tokenizer,
                                 const std::vector<std::string>& lines,
                                 const PerplexityOptions& options) {
  check_causal(model);
  std::vector<std::string> kept;
  int64_t blank = 0, bytes = 0, chars = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (is_blank(line)) {
      ++blank;
      continue;
    }
    if (auto bad = data::find_invalid_utf8(line); bad != std::string_view::npos) {
      throw DataError("line " + std::to_string(i + 1) + ": invalid UTF-8 at byte " +
                      std::to_string(bad));
    }
    bytes += static_cast<int64_t>(line.size());
    chars += count_code_points(line);
    kept.emplace_back(line);
  }
  if (kept.empty()) throw DataError("no non-blank lines to score");

  text::EncodeOptions eo;  // specials on (XGLM: </s> first), no truncation: windows handle length
  auto encodings = tokenizer.encode_batch(kept, eo, at::get_num_threads());  // --threads
  std::vector<std::vector<int64_t>> sequences;
  if (options.join == JoinMode::kStream) {
    sequences.emplace_back();
    for (const auto& e : encodings)
      sequences.back().insert(sequences.back().end(), e.ids.begin(), e.ids.end());
    // Each line boundary is one scored separator token, standing for the newline byte.
    bytes += static_cast<int64_t>(kept.size()) - 1;
    chars += static_cast<int64_t>(kept.size()) - 1;
  } else {
    for (const auto& e : encodings) sequences.emplace_back(e.ids.begin(), e.ids.end());
  }
  int64_t scorable = 0;  // every token after each sequence's first
  for (const auto& s : sequences)
    scorable += std::max<int64_t>(0, static_cast<int64_t>(s.size()) - 1);
  const auto& pad = tokenizer.special_tokens().pad;
  PerplexityResult r = sequences_perplexity(
      model, sequences, pad.present() ? pad.id : model.config().pad_token_id, options);
  if (r.scored_tokens == 0) {
    throw DataError("nothing to score: no sequence has a token after its first (" +
                    std::to_string(kept.size()) + " line(s), " + std::to_string(r.tokens) +
                    " token(s))");
  }
  r.lines = static_cast<int64_t>(kept.size());
  r.blank_lines = blank;
  r.bytes = bytes;
  r.chars = chars;
  const double bits = r.nll / std::log(2.0);
  // The bytes and characters are the whole text's: with windows that leave tokens unscored
  // (stride == max_length skips each later window's first token) bits per byte would be too low.
  const bool whole = r.scored_tokens == scorable;
  r.bits_per_byte = whole ? bits / static_cast<double>(bytes) : std::nan("");
  r.bits_per_char = whole ? bits / static_cast<double>(chars) : std::nan("");
  return r;
}

nlohmann::json PerplexityResult::to_json() const {
  nlohmann::json j;
  j["lang"] = lang;
  j["source"] = source;
  j["lines"] = lines;
  j["blank_lines"] = blank_lines;
  j["tokens"] = tokens;
  j["scored_tokens"] = scored_tokens;
  j["windows"] = windows;
  j["bytes"] = bytes;
  j["chars"] = chars;
  j["nll_nats"] = nll;
  j["loss"] = loss;
  j["perplexity"] = perplexity;
  j["bits_per_byte"] = bits_per_byte;
  j["bits_per_char"] = bits_per_char;
  j["seconds"] = seconds;
  return j;
}

}  // namespace xlt::eval
