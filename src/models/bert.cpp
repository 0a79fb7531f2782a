// BERT for sequence classification (HF's BertForSequenceClassification): the shared encoder under
// `bert.` with its pooler, then dropout -> `classifier` on the pooled first token.
#include "models/arch.h"
#include "models/encoder_blocks.h"

namespace xlt::models {
namespace {

class BertForSequenceClassificationImpl : public torch::nn::Module {
 public:
  explicit BertForSequenceClassificationImpl(const io::ModelConfig& c)
      : dropout_(classifier_dropout(c)) {
    bert = register_module("bert", TransformerEncoder(c, PositionScheme::kAbsolute, true));
    classifier = register_module("classifier", Linear(c.hidden_size, c.num_labels));
  }
  TransformerEncoder bert{nullptr};
  Linear classifier{nullptr};
  double dropout_;
};
TORCH_MODULE(BertForSequenceClassification);

class BertClassifier final : public ArchModel {
 public:
  BertClassifier(const io::ModelConfig& c, BertForSequenceClassification m)
      : ArchModel(ModelKind::kSequenceClassification, c, m.ptr()), net_(std::move(m)) {}

  ModelOutputs forward(const ModelInputs& in, const ForwardOptions& opt) override {
    auto out = net_->bert->forward(in, opt);
    if (!opt.compute_logits) return out;
    auto pooled = models::dropout(out.pooler_output, net_->dropout_, is_training());
    out.logits = net_->classifier->forward(pooled);
    if (in.labels.defined())
      out.loss = sequence_classification_loss(out.logits, in.labels, config());
    return out;
  }

  std::string hf_class() const override { return "BertForSequenceClassification"; }
  std::string base_prefix() const override { return "bert."; }
  std::vector<std::string> optional_modules() const override {
    // BertForMaskedLM checkpoints have no pooler; HF initialises it then, and so do we.
    return {"classifier", "bert.pooler"};
  }
  std::vector<std::string> head_modules() const override { return {"classifier"}; }
  bool ignorable(const std::string& name) const override {
    // Pretraining heads (MLM / NSP) and the position_ids buffer older checkpoints saved.
    return name.rfind("cls.", 0) == 0 || name.rfind("lm_head.", 0) == 0 ||
           name == "bert.embeddings.position_ids";
  }

 private:
  BertForSequenceClassification net_;
};

}  // namespace

std::unique_ptr<ArchModel> make_bert(const io::ModelConfig& config) {
  return std::make_unique<BertClassifier>(config, BertForSequenceClassification(config));
}

}  // namespace xlt::models
