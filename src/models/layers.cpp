// Shared building blocks of the transformer models (see layers.h).
#include "models/layers.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "libtorch parallelises with OpenMP: compile with -fopenmp or at::parallel_for runs serially"
#endif
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "xlt/core/error.h"

namespace xlt::models {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias) {
  weight = register_parameter("weight", at::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", at::empty({out_features}));
}

LayerNormImpl::LayerNormImpl(int64_t d, double e) : dim(d), eps(e) {
  weight = register_parameter("weight", at::empty({d}));
  bias = register_parameter("bias", at::empty({d}));
}

at::Tensor LayerNormImpl::forward(const at::Tensor& x) const {
  return at::layer_norm(x, {dim}, weight, bias, eps);
}

EmbeddingImpl::EmbeddingImpl(int64_t num, int64_t d, int64_t pad) : padding_idx(pad) {
  weight = register_parameter("weight", at::empty({num, d}));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) const {
  // padding_idx makes the padding row's gradient zero, exactly as torch.nn.Embedding does; the
  // fixtures' gradients depend on it.
  return at::embedding(weight, ids, padding_idx);
}

Activation parse_activation(const std::string& name) {
  if (name == "gelu" || name == "gelu_python") return Activation::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    return Activation::kGeluTanh;
  }
  if (name == "relu") return Activation::kRelu;
  // ModelConfig::from_json refuses these with the file's path; this guards configs built in code.
  throw ConfigError("hidden_act/activation_function '" + name +
                    "' is not supported (expected gelu, gelu_python, gelu_new, "
                    "gelu_pytorch_tanh, gelu_fast or relu)");
}

at::Tensor activate(const at::Tensor& x, Activation act) {
  switch (act) {
    case Activation::kGelu:
      return at::gelu(x);  // erf form, = HF's GELUActivation
    case Activation::kGeluTanh:
      return at::gelu(x, "tanh");
    case Activation::kRelu:
      return at::relu(x);
  }
  return x;
}

namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

template <typename T>
void fill_dropout_mask(T* out, int64_t n, uint64_t seed, uint32_t threshold, float scale) {
  const T keep = static_cast<T>(scale);
  const T drop = static_cast<T>(0.0f);
  // Each 64-bit hash gives two 32-bit uniforms; element i uses half (i & 1) of hash(seed, i / 2).
  at::parallel_for(0, (n + 1) / 2, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const uint64_t h = splitmix64(seed ^ (static_cast<uint64_t>(j) * 0xd1b54a32d192ed03ULL));
      const int64_t i = 2 * j;
      out[i] = static_cast<uint32_t>(h) < threshold ? drop : keep;
      if (i + 1 < n) out[i + 1] = static_cast<uint32_t>(h >> 32) < threshold ? drop : keep;
    }
  });
}

}  // namespace

int parallel_for_threads() {
  std::mutex mu;
  std::set<std::thread::id> ids;
  at::parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return static_cast<int>(ids.size());
}

at::Tensor dropout(const at::Tensor& x, double p, bool train) {
  if (!train || p <= 0.0) return x;
  if (p >= 1.0) return x * 0.0;
  const auto st = x.scalar_type();
  if (!x.device().is_cpu() || (st != at::kFloat && st != at::kBFloat16)) {
    return at::dropout(x, p, true);
  }
  uint64_t seed = 0;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    seed = gen.get<at::CPUGeneratorImpl>()->random64();
  }
  const auto threshold = static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  auto mask = at::empty(x.sizes(), x.options().requires_grad(false));
  if (st == at::kFloat) {
    fill_dropout_mask(mask.data_ptr<float>(), mask.numel(), seed, threshold, scale);
  } else {
    fill_dropout_mask(mask.data_ptr<at::BFloat16>(), mask.numel(), seed, threshold, scale);
  }
  return x * mask;
}

double finfo_min(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case c10::kHalf:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case c10::kDouble:
      return std::numeric_limits<double>::lowest();
    default:
      return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

at::Tensor padding_mask_bias(const at::Tensor& attention_mask, c10::ScalarType dtype) {
  auto m = attention_mask.unsqueeze(1).unsqueeze(2).to(dtype);
  return (1.0 - m) * finfo_min(dtype);
}

at::Tensor causal_mask_bias(const at::Tensor& attention_mask, int64_t batch, int64_t seq,
                            c10::ScalarType dtype, c10::Device device) {
  auto idx = at::arange(seq, at::TensorOptions().dtype(at::kLong).device(device));
  // future[t][s] = s > t
  auto blocked = idx.unsqueeze(0).gt(idx.unsqueeze(1)).view({1, 1, seq, seq});
  if (attention_mask.defined()) {
    // HF masks keys whose mask is anything but 1 ((1 - m) != 0).
    auto pad = attention_mask.ne(1).view({batch, 1, 1, seq});
    blocked = blocked.logical_or(pad);
  } else {
    blocked = blocked.expand({batch, 1, seq, seq});
  }
  auto zeros = at::zeros({}, at::TensorOptions().dtype(dtype).device(device));
  return at::where(blocked, at::full({}, finfo_min(dtype), zeros.options()), zeros);
}

void hf_init(torch::nn::Module& module, double std, at::Generator& gen) {
  at::NoGradGuard no_grad;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (auto* lin = dynamic_cast<LinearImpl*>(m.get())) {
      lin->weight.normal_(0.0, std, gen);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* emb = dynamic_cast<EmbeddingImpl*>(m.get())) {
      emb->weight.normal_(0.0, std, gen);
      if (emb->padding_idx >= 0) emb->weight[emb->padding_idx].zero_();
    } else if (auto* ln = dynamic_cast<LayerNormImpl*>(m.get())) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

at::Tensor sequence_classification_loss(const at::Tensor& logits, const at::Tensor& labels,
                                        const io::ModelConfig& config) {
  std::string problem = config.problem_type;
  if (problem.empty()) {
    if (config.num_labels == 1) {
      problem = "regression";
    } else if (!at::isFloatingType(labels.scalar_type())) {
      problem = "single_label_classification";
    } else {
      problem = "multi_label_classification";
    }
  }
  auto target = to_device(labels, logits.device());
  const int64_t batch = logits.size(0);
  if (problem == "regression") {
    if (labels.numel() != logits.numel()) {
      throw DataError("labels: regression needs one value per output (" +
                      std::to_string(logits.numel()) + "), got shape " + shape_str(labels.sizes()));
    }
    auto t = target.to(logits.scalar_type());
    if (config.num_labels == 1) return at::mse_loss(logits.squeeze(), t.squeeze());
    return at::mse_loss(logits, t);
  }
  if (problem == "single_label_classification") {
    if (at::isFloatingType(target.scalar_type())) {
      throw DataError("labels: single_label_classification needs integer class ids, got " +
                      std::string(c10::toString(target.scalar_type())));
    }
    if (labels.numel() != batch) {
      throw DataError("labels: expected one class id per sequence ([" + std::to_string(batch) +
                      "]), got shape " + shape_str(labels.sizes()));
    }
    check_class_ids(labels, config.num_labels, "labels");
    return at::cross_entropy_loss(logits.view({-1, config.num_labels}),
                                  target.view(-1).to(at::kLong));
  }
  if (problem == "multi_label_classification") {
    if (labels.sizes() != logits.sizes()) {
      throw DataError(
          "labels: multi_label_classification (float labels) needs one 0/1 target "
          "per label, shape " +
          shape_str(logits.sizes()) + ", got " + shape_str(labels.sizes()) +
          " (class ids must be integers)");
    }
    return at::binary_cross_entropy_with_logits(logits, target.to(logits.scalar_type()));
  }
  throw ConfigError("problem_type '" + problem +
                    "' is not supported (expected regression, single_label_classification or "
                    "multi_label_classification)");
}

std::pair<int64_t, int64_t> value_range(const at::Tensor& t) {
  if (t.is_cpu()) {
    const auto c = t.to(at::kLong).contiguous();
    const int64_t* p = c.data_ptr<int64_t>();
    const auto [lo, hi] = std::minmax_element(p, p + c.numel());
    return {*lo, *hi};
  }
  const auto both = at::stack({t.min(), t.max()}).to(at::kLong).to(at::kCPU);
  return {both.data_ptr<int64_t>()[0], both.data_ptr<int64_t>()[1]};
}

at::Tensor to_device(const at::Tensor& t, c10::Device device) {
  if (!t.defined() || t.device() == device) return t;
  if (t.is_cpu() && device.is_cuda()) {
    // pin_memory() takes a block of PyTorch's caching host allocator, which the copy marks in
    // use until it has run on the stream, so the block is not handed out again before that.
    return t.pin_memory().to(device, t.scalar_type(), /*non_blocking=*/true);
  }
  return t.to(device);
}

void check_class_ids(const at::Tensor& ids, int64_t classes, const std::string& what) {
  if (ids.numel() == 0) return;
  constexpr int64_t kIgnore = -100;
  auto bad = [&](int64_t v) {
    throw DataError(what + ": values must be class ids in [0, " + std::to_string(classes) +
                    ") or " + std::to_string(kIgnore) + " (ignored), found " + std::to_string(v));
  };
  if (ids.is_cpu()) {
    const auto c = ids.to(at::kLong).contiguous();
    const int64_t* p = c.data_ptr<int64_t>();
    for (int64_t i = 0; i < c.numel(); ++i)
      if (p[i] != kIgnore && (p[i] < 0 || p[i] >= classes)) bad(p[i]);
    return;
  }
  // Ignored positions as 0, so that a bad negative id is not hidden behind a -100 minimum.
  const auto [lo, hi] = value_range(ids.masked_fill(ids == kIgnore, 0));
  if (lo < 0) bad(lo);
  if (hi >= classes) bad(hi);
}

void check_inputs(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                  const at::Tensor& token_type_ids, int64_t vocab_size, int64_t type_vocab_size) {
  if (!input_ids.defined()) throw DataError("input_ids: missing");
  if (input_ids.dim() != 2) {
    throw DataError("input_ids: expected shape [batch, seq], got " + shape_str(input_ids.sizes()));
  }
  if (input_ids.size(1) == 0 && input_ids.size(0) > 0) {
    throw DataError("input_ids: empty sequences (shape " + shape_str(input_ids.sizes()) +
                    "); every sequence needs at least one token");
  }
  if (input_ids.scalar_type() != at::kLong && input_ids.scalar_type() != at::kInt) {
    throw DataError("input_ids: expected int64 (or int32), got " +
                    std::string(c10::toString(input_ids.scalar_type())));
  }
  if (input_ids.numel() > 0) {
    const auto [lo, hi] = value_range(input_ids);
    if (lo < 0 || hi >= vocab_size) {
      throw DataError("input_ids: ids must be in [0, " + std::to_string(vocab_size) +
                      ") (vocab_size), found " + std::to_string(lo < 0 ? lo : hi));
    }
  }
  for (auto [t, name] : {std::pair{&attention_mask, "attention_mask"},
                         std::pair{&token_type_ids, "token_type_ids"}}) {
    if (t->defined() && t->sizes() != input_ids.sizes()) {
      throw DataError(std::string(name) + ": shape " + shape_str(t->sizes()) +
                      " does not match input_ids " + shape_str(input_ids.sizes()));
    }
  }
  if (token_type_ids.defined() && !at::isIntegralType(token_type_ids.scalar_type(), false)) {
    throw DataError("token_type_ids: expected integers, got " +
                    std::string(c10::toString(token_type_ids.scalar_type())));
  }
  if (token_type_ids.defined() && token_type_ids.numel() > 0) {
    const auto [lo, hi] = value_range(token_type_ids);
    if (lo < 0 || hi >= type_vocab_size) {
      throw DataError("token_type_ids: values must be in [0, " + std::to_string(type_vocab_size) +
                      ") (type_vocab_size), found " + std::to_string(lo < 0 ? lo : hi));
    }
  }
}

at::Tensor Packing::pack(const at::Tensor& padded) const {
  return padded.reshape({batch * seq, padded.size(-1)}).index_select(0, index);
}

at::Tensor Packing::pad(const at::Tensor& packed) const {
  return at::zeros({batch * seq, packed.size(-1)}, packed.options())
      .index_copy(0, index, packed)
      .view({batch, seq, packed.size(-1)});
}

std::vector<at::Tensor> Packing::pad_groups(const at::Tensor& packed) const {
  const int64_t c = packed.size(-1);
  std::vector<int64_t> sizes;
  for (const auto& gr : groups) sizes.push_back(gr.tokens);
  // One split, not a narrow per group: a narrow's backward writes its gradient into a zero
  // tensor as large as `packed` and autograd sums those, one full-size fill and add per group
  // and layer; a split's backward is one cat.
  auto slices = packed.split_with_sizes(sizes);
  std::vector<at::Tensor> out;
  for (size_t g = 0; g < groups.size(); ++g) {
    const Group& gr = groups[g];
    if (!gr.slots.defined()) {
      out.push_back(slices[g].view({gr.rows, gr.seq, c}));
    } else {
      out.push_back(at::zeros({gr.rows * gr.seq, c}, packed.options())
                        .index_copy(0, gr.slots, slices[g])
                        .view({gr.rows, gr.seq, c}));
    }
  }
  return out;
}

at::Tensor Packing::pack_groups(const std::vector<at::Tensor>& grouped) const {
  std::vector<at::Tensor> parts;
  for (size_t g = 0; g < groups.size(); ++g) {
    auto flat = grouped[g].reshape({groups[g].rows * groups[g].seq, grouped[g].size(-1)});
    parts.push_back(groups[g].slots.defined() ? flat.index_select(0, groups[g].slots) : flat);
  }
  return parts.size() == 1 ? parts[0] : at::cat(parts);
}

namespace {

// Splits rows sorted longest first into groups whose padded score area (rows x longest^2) stays
// within `slack` of the real one (sum of length^2). Each group costs a handful of extra kernels
// per layer, so the slack widens until there are at most kMaxGroups.
std::vector<std::pair<size_t, size_t>> length_groups(const std::vector<int64_t>& sorted_lengths) {
  constexpr size_t kMaxGroups = 8;
  std::vector<std::pair<size_t, size_t>> out;
  for (double slack = 1.3;; slack *= 1.5) {
    out.clear();
    size_t start = 0;
    while (start < sorted_lengths.size()) {
      const double longest = static_cast<double>(sorted_lengths[start]);
      double real = 0;
      size_t end = start;
      while (end < sorted_lengths.size()) {
        const double l = static_cast<double>(sorted_lengths[end]);
        if (end > start &&
            static_cast<double>(end - start + 1) * longest * longest > slack * (real + l * l)) {
          break;
        }
        real += l * l;
        ++end;
      }
      out.emplace_back(start, end);
      start = end;
    }
    if (out.size() <= kMaxGroups) return out;
  }
}

// Host-side int64 pieces of a plan gathered into one buffer, so that the whole plan reaches the
// device in one copy; each piece is then a slice of the device buffer.
class Staging {
 public:
  // Appends `values`; returns the piece's number.
  size_t add(const std::vector<int64_t>& values) {
    pieces_.emplace_back(static_cast<int64_t>(buffer_.size()), static_cast<int64_t>(values.size()));
    buffer_.insert(buffer_.end(), values.begin(), values.end());
    return pieces_.size() - 1;
  }
  void upload(c10::Device device) {
    device_buffer_ = to_device(at::tensor(buffer_, at::TensorOptions().dtype(at::kLong)), device);
  }
  at::Tensor piece(size_t i) const {
    return device_buffer_.narrow(0, pieces_[i].first, pieces_[i].second);
  }

 private:
  std::vector<int64_t> buffer_;
  std::vector<std::pair<int64_t, int64_t>> pieces_;
  at::Tensor device_buffer_;
};

}  // namespace

Packing plan_packing(const at::Tensor& attention_mask, bool first_token_real, VarlenKernel varlen,
                     std::optional<c10::Device> target) {
  Packing p;
  if (!attention_mask.defined() || attention_mask.dim() != 2 || attention_mask.numel() == 0) {
    return p;
  }
  const auto host = attention_mask.to(at::kCPU, at::kDouble).contiguous();
  const int64_t b = host.size(0), t = host.size(1);
  const double* m = host.data_ptr<double>();
  std::vector<std::vector<int64_t>> real(static_cast<size_t>(b));
  int64_t total = 0;
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t s = 0; s < t; ++s) {
      const double v = m[r * t + s];
      if (v != 0 && v != 1) return p;  // soft masks: only the padded path is HF's
      if (v == 1) real[static_cast<size_t>(r)].push_back(s);
    }
    const auto& row = real[static_cast<size_t>(r)];
    if (row.empty() || (first_token_real && row.front() != 0)) return p;
    total += static_cast<int64_t>(row.size());
  }
  if (total == b * t) return p;  // no padding: nothing to save

  std::vector<int64_t> order(static_cast<size_t>(b));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    return real[static_cast<size_t>(x)].size() > real[static_cast<size_t>(y)].size();
  });
  std::vector<int64_t> sorted_lengths, index;
  for (int64_t r : order) {
    sorted_lengths.push_back(static_cast<int64_t>(real[static_cast<size_t>(r)].size()));
    for (int64_t s : real[static_cast<size_t>(r)]) index.push_back(r * t + s);
  }
  const c10::Device device = target.value_or(attention_mask.device());
  Staging staging;
  p.batch = b;
  p.seq = t;
  const size_t index_piece = staging.add(index);
  p.offsets.push_back(0);
  for (int64_t len : sorted_lengths) p.offsets.push_back(p.offsets.back() + len);
  p.max_seqlen = sorted_lengths.front();
  p.varlen = varlen;
  const bool kernel = varlen == VarlenKernel::kFlash || varlen == VarlenKernel::kEfficient;
  const size_t offsets_piece = kernel ? staging.add(p.offsets) : 0;

  // Per length group: its slots (where it has padding) and its compact 0/1 mask.
  std::vector<std::pair<size_t, size_t>> group_pieces;
  if (varlen == VarlenKernel::kNone) {
    int64_t offset = 0;
    for (const auto& [start, end] : length_groups(sorted_lengths)) {
      Packing::Group g;
      g.offset = offset;
      g.rows = static_cast<int64_t>(end - start);
      g.seq = sorted_lengths[start];
      std::vector<int64_t> slots;
      std::vector<int64_t> mask(static_cast<size_t>(g.rows * g.seq), 0);
      for (size_t i = start; i < end; ++i) {
        const int64_t row = static_cast<int64_t>(i - start);
        for (int64_t s = 0; s < sorted_lengths[i]; ++s) {
          slots.push_back(row * g.seq + s);
          mask[static_cast<size_t>(row * g.seq + s)] = 1;
        }
      }
      g.tokens = static_cast<int64_t>(slots.size());
      const bool padded = g.tokens != g.rows * g.seq;
      group_pieces.emplace_back(padded ? staging.add(slots) : SIZE_MAX, staging.add(mask));
      offset += g.tokens;
      p.groups.push_back(std::move(g));
    }
  }
  staging.upload(device);
  p.index = staging.piece(index_piece);
  if (kernel) p.cu_seqlens = staging.piece(offsets_piece).to(at::kInt);
  const auto mask_dtype = attention_mask.scalar_type();
  for (size_t i = 0; i < p.groups.size(); ++i) {
    auto& g = p.groups[i];
    if (group_pieces[i].first != SIZE_MAX) g.slots = staging.piece(group_pieces[i].first);
    g.mask = staging.piece(group_pieces[i].second).view({g.rows, g.seq}).to(mask_dtype);
  }
  return p;
}

bool sdpa_available() {
  return TORCH_VERSION_MAJOR >= 2;
}

ForwardOptions::Attention parse_attention(const std::string& name) {
  if (name == "auto") return ForwardOptions::Attention::kAuto;
  if (name == "eager") return ForwardOptions::Attention::kEager;
  if (name == "sdpa") return ForwardOptions::Attention::kSdpa;
  if (name == "varlen") return ForwardOptions::Attention::kVarlen;
  throw UsageError("attention '" + name + "': expected auto, eager, sdpa or varlen");
}

const char* attention_name(ForwardOptions::Attention attention) {
  switch (attention) {
    case ForwardOptions::Attention::kEager:
      return "eager";
    case ForwardOptions::Attention::kSdpa:
      return "sdpa";
    case ForwardOptions::Attention::kVarlen:
      return "varlen";
    case ForwardOptions::Attention::kAuto:
      break;
  }
  return "auto";
}

bool use_sdpa(const ForwardOptions& opt, c10::Device device) {
  if (!sdpa_available() || opt.output_attentions) return false;
  switch (opt.attention) {
    case ForwardOptions::Attention::kEager:
      return false;
    case ForwardOptions::Attention::kSdpa:
    case ForwardOptions::Attention::kVarlen:  // its padded batches
      return true;
    case ForwardOptions::Attention::kAuto:
      break;
  }
  return device.is_cuda();
}

at::Tensor unmask_unattended(const at::Tensor& bias) {
  // A query that may attend to nothing gets the eager path's uniform weights from its clamped
  // scores, but NaN from the fused kernels, which would then reach every later layer through
  // its keys and values. Nothing reads such positions (left padding, empty rows): let them
  // attend to everything, as HF does before SDPA.
  auto blocked = bias.eq(finfo_min(bias.scalar_type())).all(-1, /*keepdim=*/true);
  return bias.masked_fill(blocked, 0);
}

at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                const at::Tensor& bias, double dropout, bool causal) {
#if TORCH_VERSION_MAJOR >= 2
  if (bias.defined()) return at::scaled_dot_product_attention(q, k, v, bias, dropout, causal);
  return at::scaled_dot_product_attention(q, k, v, {}, dropout, causal);
#else
  (void)q, (void)k, (void)v, (void)bias, (void)dropout, (void)causal;
  throw Error("scaled_dot_product_attention needs PyTorch 2.x (this is libtorch " +
              std::string(TORCH_VERSION) + ")");
#endif
}

at::Tensor fused_linear(const at::Tensor& x, std::initializer_list<const LinearImpl*> layers) {
  std::vector<at::Tensor> w, b;
  for (const auto* l : layers) {
    w.push_back(l->weight);
    if (l->bias.defined()) b.push_back(l->bias);
  }
  if (!b.empty() && b.size() != w.size()) {  // some with a bias, some without: no common GEMM
    std::vector<at::Tensor> out;
    for (const auto* l : layers) out.push_back(l->forward(x));
    return at::cat(out, -1);
  }
  return at::linear(x, at::cat(w), b.empty() ? at::Tensor() : at::cat(b));
}

at::Tensor mask_or_ones(const at::Tensor& attention_mask, const at::Tensor& input_ids) {
  if (attention_mask.defined()) return to_device(attention_mask, input_ids.device());
  return at::ones_like(input_ids);
}

}  // namespace xlt::models
