// Attention over a packed batch in one call per layer (layers.h: VarlenKernel): PyTorch's
// variable-length CUDA kernels, each admitted once per device, dtype and head size by a check
// against the eager arithmetic on that device, and a per-sequence reference that computes the
// same on any device (the CPU tests' view of the kernels' contract).
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "models/layers.h"
#include "xlt/core/error.h"

// The kernels' C++ signatures used below are PyTorch 2.5's and later ones'.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define XLT_VARLEN_KERNELS 1
#else
#define XLT_VARLEN_KERNELS 0
#endif

namespace xlt::models {
namespace {

// Each sequence's eager attention (the arithmetic of HF's eager paths), one at a time.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const std::vector<int64_t>& offsets, double dropout, bool causal) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  std::vector<at::Tensor> out;
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    const int64_t start = offsets[i], len = offsets[i + 1] - offsets[i];
    auto heads = [&](const at::Tensor& x) { return x.narrow(0, start, len).transpose(0, 1); };
    auto scores = at::matmul(heads(q), heads(k).transpose(-1, -2)) * scale;
    if (causal) {
      auto future = at::ones({len, len}, q.options().dtype(at::kBool)).triu(1);
      scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
    }
    auto probs = models::dropout(at::softmax(scores, -1), dropout, dropout > 0);
    out.push_back(at::matmul(probs, heads(v)).transpose(0, 1));
  }
  return at::cat(out);
}

at::Tensor kernel_attention(VarlenKernel kernel, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& cu_seqlens, int64_t max_seqlen,
                            double dropout, bool causal) {
#if XLT_VARLEN_KERNELS
  if (kernel == VarlenKernel::kFlash) {
    // [N, A, D] in and out; causality within each sequence (query and key lengths are equal).
    return std::get<0>(at::_flash_attention_forward(q, k, v, cu_seqlens, cu_seqlens, max_seqlen,
                                                    max_seqlen, dropout, causal,
                                                    /*return_debug_mask=*/false));
  }
  // [1, N, A, D]; mask type 1 = causal from the top left of each sequence's score block. The
  // backward pass needs the log-sum-exp, which costs a little when nothing needs gradients.
  const bool grad =
      at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  auto out = at::_efficient_attention_forward(
      q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), std::nullopt, cu_seqlens, cu_seqlens,
      max_seqlen, max_seqlen, dropout, causal ? 1 : 0, /*compute_log_sumexp=*/grad);
  return std::get<0>(out).squeeze(0);
#else
  (void)kernel, (void)q, (void)k, (void)v, (void)cu_seqlens, (void)max_seqlen, (void)dropout,
      (void)causal;
  throw Error("variable-length attention kernels need PyTorch >= 2.5 (this is libtorch " +
              std::string(TORCH_VERSION) + ")");
#endif
}

// Runs `kernel` forward and backward on a small packed batch laid out as the models pass it (head
// views of one fused QKV projection; lengths 5, 1, 2), causal and not, against the reference in
// float64 on the CPU. Empty when they agree, else why not (an exception's message, or the
// largest difference).
std::string check_kernel(VarlenKernel kernel, c10::Device device, c10::ScalarType dtype,
                         int64_t head_dim) {
  const int64_t heads = 2, width = heads * head_dim;
  const std::vector<int64_t> offsets = {0, 5, 6, 8};
  const int64_t n = offsets.back();
  // The plans plan_packing would make for these lengths, one per kernel.
  Packing reference, packed;
  reference.offsets = packed.offsets = offsets;
  reference.max_seqlen = packed.max_seqlen = 5;
  reference.varlen = VarlenKernel::kReference;
  packed.varlen = kernel;
  const double tol = dtype == at::kFloat ? 1e-4 : 4e-2;
  try {
    packed.cu_seqlens =
        at::tensor(offsets, at::TensorOptions().dtype(at::kLong)).to(at::kInt).to(device);
    // Called from inside a forward, which may run in inference mode or without gradients.
    c10::InferenceMode not_inference(false);
    at::AutoGradMode grad_on(true);
    for (const bool causal : {false, true}) {
      // Deterministic values in [-1, 1] without touching any random generator.
      const auto base = at::sin(at::arange(n * 3 * width, at::kDouble) * 0.37).view({n, 3 * width});
      const auto weights = at::cos(at::arange(n * width, at::kDouble) * 0.11).view({n, width});
      auto want_in = base.clone().requires_grad_(true);
      auto want = varlen_attention(want_in, heads, reference, 0.0, causal);
      (want * weights).sum().backward();
      auto got_in = base.to(device, dtype).requires_grad_(true);
      auto got = varlen_attention(got_in, heads, packed, 0.0, causal);
      (got * weights.to(device, dtype)).sum().backward();
      const double out_diff =
          (got.detach().to(at::kCPU, at::kDouble) - want.detach()).abs().max().item<double>();
      const double grad_diff =
          (got_in.grad().to(at::kCPU, at::kDouble) - want_in.grad()).abs().max().item<double>();
      const double scale = std::max(1.0, want_in.grad().abs().max().item<double>());
      if (!(out_diff <= tol) || !(grad_diff <= tol * scale)) {
        return std::string(causal ? "causal" : "bidirectional") + " output differs by " +
               std::to_string(out_diff) + ", gradient by " + std::to_string(grad_diff);
      }
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return what.substr(0, what.find('\n'));
  }
  return "";
}

}  // namespace

const char* varlen_kernel_name(VarlenKernel kernel) {
  switch (kernel) {
    case VarlenKernel::kFlash:
      return "flash";
    case VarlenKernel::kEfficient:
      return "memory-efficient";
    case VarlenKernel::kReference:
      return "reference";
    case VarlenKernel::kNone:
      break;
  }
  return "none";
}

c10::ScalarType activation_dtype(c10::ScalarType weight_dtype, c10::Device device) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (device.is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA) &&
      weight_dtype == at::kFloat) {
    return at::autocast::get_autocast_dtype(at::kCUDA);
  }
#else
  (void)device;
#endif
  return weight_dtype;
}

VarlenKernel choose_varlen(const ForwardOptions& opt, c10::Device device, c10::ScalarType dtype,
                           int64_t head_dim) {
  using A = ForwardOptions::Attention;
  if (opt.output_attentions || (opt.attention != A::kAuto && opt.attention != A::kVarlen)) {
    return VarlenKernel::kNone;
  }
  if (!device.is_cuda()) {
    return opt.attention == A::kVarlen ? VarlenKernel::kReference : VarlenKernel::kNone;
  }
  static std::mutex mutex;
  static std::map<std::tuple<int, int, int64_t>, std::pair<VarlenKernel, std::string>> cache;
  std::string warning;  // written after the lock is released (std::cerr may wait on Python's GIL)
  std::unique_lock<std::mutex> lock(mutex);
  const auto key =
      std::make_tuple(static_cast<int>(device.index()), static_cast<int>(dtype), head_dim);
  auto it = cache.find(key);
  if (it == cache.end()) {
    VarlenKernel chosen = VarlenKernel::kNone;
    std::string why;
    if (!XLT_VARLEN_KERNELS) {
      why = "libtorch " + std::string(TORCH_VERSION) + " (needs PyTorch >= 2.5)";
    } else if (head_dim % 8 != 0 || head_dim > 256) {
      why = "head size " + std::to_string(head_dim) + " (needs a multiple of 8, at most 256)";
    } else {
      std::vector<VarlenKernel> candidates;
      if (dtype == at::kBFloat16 || dtype == at::kHalf) candidates.push_back(VarlenKernel::kFlash);
      if (dtype == at::kBFloat16 || dtype == at::kHalf || dtype == at::kFloat) {
        candidates.push_back(VarlenKernel::kEfficient);
      }
      if (candidates.empty()) why = std::string(c10::toString(dtype)) + " activations";
      for (VarlenKernel kernel : candidates) {
        const std::string failed = check_kernel(kernel, device, dtype, head_dim);
        if (failed.empty()) {
          chosen = kernel;
          break;
        }
        why += std::string(why.empty() ? "" : "; ") + varlen_kernel_name(kernel) + ": " + failed;
      }
    }
    it = cache.emplace(key, std::make_pair(chosen, why)).first;
    // Said once per configuration, and only where the user asked for varlen by name: under
    // kAuto the per-group kernels are the documented fallback.
    if (chosen == VarlenKernel::kNone && opt.attention == A::kVarlen) {
      warning = "warning: --attention varlen: no variable-length kernel for " +
                std::string(c10::toString(dtype)) + " heads of " + std::to_string(head_dim) +
                " on " + device.str() + " (" + why + "); attention runs per length group " +
                "through sdpa\n";
    }
  }
  const VarlenKernel result = it->second.first;
  lock.unlock();
  if (!warning.empty()) std::cerr << warning;
  return result;
}

at::Tensor varlen_attention(const at::Tensor& qkv, int64_t heads, const Packing& p, double dropout,
                            bool causal) {
  const int64_t n = qkv.size(0), width = qkv.size(1) / 3;
  const auto parts = qkv.split(width, -1);
  auto view = [&](const at::Tensor& x) { return x.view({n, heads, width / heads}); };
  const auto q = view(parts[0]), k = view(parts[1]), v = view(parts[2]);
  const auto ctx =
      p.varlen == VarlenKernel::kReference
          ? reference_attention(q, k, v, p.offsets, dropout, causal)
          : kernel_attention(p.varlen, q, k, v, p.cu_seqlens, p.max_seqlen, dropout, causal);
  return ctx.reshape({n, width});
}

}  // namespace xlt::models
