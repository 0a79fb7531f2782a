// The WordPiece tokenizer (BERT / mBERT): BertSplitter (normalizer + pre-tokenizer) feeding the
// WordPiece model. One class serves both backends: kSlow reproduces transformers' BertTokenizer
// (vocab.txt), kFast the Rust pipeline of a tokenizer.json (BertNormalizer, BertPreTokenizer,
// WordPiece, TemplateProcessing, WordPiece decoder).
#pragma once

#include "text/bert_splitter.h"
#include "text/pipeline.h"
#include "text/wordpiece.h"

namespace xlt::text {

struct WordPieceDecoder {
  bool present = true;  // false: tokenizer.json had no decoder (tokens joined with spaces)
  std::string prefix = "##";
  bool cleanup = true;
};

class BertTokenizer final : public PipelineTokenizer {
 public:
  BertTokenizer(WordPiece model, BertOptions options, WordPieceDecoder decoder);

  // HF BertTokenizer.convert_tokens_to_string: " ".join(tokens).replace(" ##", "").strip().
  std::string convert_tokens_to_string(const std::vector<std::string>& tokens) const override;
  const WordPiece& model() const { return model_; }

 protected:
  void tokenize_plain(std::string_view text, std::size_t origin, Pieces& out) const override;
  std::optional<TokenId> model_token_to_id(std::string_view token) const override;
  std::optional<std::string> model_id_to_token(TokenId id) const override;
  std::string fast_decode(const std::vector<std::string>& tokens) const override;

 private:
  WordPiece model_;
  BertSplitter splitter_;
  WordPieceDecoder decoder_;
};

}  // namespace xlt::text
