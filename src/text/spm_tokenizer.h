// SentencePiece tokenizers with fairseq's id layout (XLM-R: unigram; XGLM: BPE), as
// transformers' XLMRobertaTokenizer / XGLMTokenizer compute them: <s>=0 <pad>=1 </s>=2 <unk>=3,
// every SentencePiece id shifted by the fairseq offset (1), SentencePiece's own id 0 (unknown)
// mapped to <unk>, and the extra tokens (<mask>, <madeupwordN>) after the SentencePiece ids.
#pragma once

#include <map>
#include <memory>

#include "text/pipeline.h"
#include "text/spm_runtime.h"

namespace xlt::text {

class SpmTokenizer final : public PipelineTokenizer {
 public:
  // Loads `model_file`; throws TokenizerError naming it when it is not a SentencePiece model.
  // `fairseq_tokens` are the tokens with fixed ids that bypass SentencePiece.
  SpmTokenizer(const std::filesystem::path& model_file,
               std::map<std::string, TokenId> fairseq_tokens, int fairseq_offset);
  ~SpmTokenizer() override;

  // "".join(tokens).replace("▁", " ").strip()
  std::string convert_tokens_to_string(const std::vector<std::string>& tokens) const override;
  // Number of pieces in the SentencePiece model (len(sp_model)).
  std::size_t sp_size() const;
  // HF id of a piece returned by SentencePiece.
  TokenId hf_id(int sp_id) const;
  TokenId unk_id() const { return unk_id_; }
  // A token with a fixed id outside SentencePiece (<mask>, <madeupwordN>).
  void add_fixed_token(const std::string& content, TokenId id);

 protected:
  void tokenize_plain(std::string_view text, std::size_t origin, Pieces& out) const override;
  std::optional<TokenId> model_token_to_id(std::string_view token) const override;
  std::optional<std::string> model_id_to_token(TokenId id) const override;

 private:
  std::unique_ptr<spm::Processor> sp_;
  std::map<std::string, TokenId> fairseq_tokens_;
  std::map<TokenId, std::string> fairseq_ids_;
  int offset_;
  TokenId unk_id_ = 3;
};

}  // namespace xlt::text
