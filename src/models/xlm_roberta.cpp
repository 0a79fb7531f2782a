// XLM-R for sequence classification (HF's XLMRobertaForSequenceClassification): the shared
// encoder under `roberta.` with RoBERTa positions and no pooler, then HF's
// RobertaClassificationHead on the first token: dropout -> dense -> tanh -> dropout -> out_proj.
#include "models/arch.h"
#include "models/encoder_blocks.h"

namespace xlt::models {
namespace {

class RobertaClassificationHeadImpl : public torch::nn::Module {
 public:
  explicit RobertaClassificationHeadImpl(const io::ModelConfig& c)
      : dropout_(classifier_dropout(c)) {
    dense = register_module("dense", Linear(c.hidden_size, c.hidden_size));
    out_proj = register_module("out_proj", Linear(c.hidden_size, c.num_labels));
  }
  at::Tensor forward(const at::Tensor& h) {
    auto x = models::dropout(h.select(1, 0), dropout_, is_training());
    x = at::tanh(dense->forward(x));
    x = models::dropout(x, dropout_, is_training());
    return out_proj->forward(x);
  }
  Linear dense{nullptr}, out_proj{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(RobertaClassificationHead);

class XLMRobertaForSequenceClassificationImpl : public torch::nn::Module {
 public:
  explicit XLMRobertaForSequenceClassificationImpl(const io::ModelConfig& c) {
    roberta = register_module("roberta", TransformerEncoder(c, PositionScheme::kRoberta, false));
    classifier = register_module("classifier", RobertaClassificationHead(c));
  }
  TransformerEncoder roberta{nullptr};
  RobertaClassificationHead classifier{nullptr};
};
TORCH_MODULE(XLMRobertaForSequenceClassification);

class XlmRobertaClassifier final : public ArchModel {
 public:
  XlmRobertaClassifier(const io::ModelConfig& c, XLMRobertaForSequenceClassification m)
      : ArchModel(ModelKind::kSequenceClassification, c, m.ptr()), net_(std::move(m)) {}

  ModelOutputs forward(const ModelInputs& in, const ForwardOptions& opt) override {
    auto out = net_->roberta->forward(in, opt);
    if (!opt.compute_logits) return out;
    out.logits = net_->classifier->forward(out.last_hidden_state);
    if (in.labels.defined())
      out.loss = sequence_classification_loss(out.logits, in.labels, config());
    return out;
  }

  std::string hf_class() const override { return "XLMRobertaForSequenceClassification"; }
  std::string base_prefix() const override { return "roberta."; }
  std::vector<std::string> optional_modules() const override { return {"classifier"}; }
  std::vector<std::string> head_modules() const override { return {"classifier"}; }
  bool ignorable(const std::string& name) const override {
    // The MLM head of xlm-roberta-base, and the pooler the classification model does not use
    // (HF builds it with add_pooling_layer=False and skips these weights too).
    return name.rfind("lm_head.", 0) == 0 || name.rfind("roberta.pooler.", 0) == 0 ||
           name == "roberta.embeddings.position_ids";
  }

 private:
  XLMRobertaForSequenceClassification net_;
};

}  // namespace

std::unique_ptr<ArchModel> make_xlm_roberta(const io::ModelConfig& config) {
  return std::make_unique<XlmRobertaClassifier>(config,
                                                XLMRobertaForSequenceClassification(config));
}

}  // namespace xlt::models
