// Loader for the SentencePiece tokenizers: XLM-R (XLMRobertaTokenizer) and XGLM (XGLMTokenizer)
// from sentencepiece.bpe.model + tokenizer_config.json, with transformers' fairseq id layout.
#include "text/loader_internal.h"
#include "text/spm_tokenizer.h"
#include "xlt/core/error.h"

namespace xlt::text {
namespace fs = std::filesystem;

namespace {

constexpr int kFairseqOffset = 1;
constexpr int kXglmMadeupWords = 7;

AddedToken plain(const std::string& s, bool lstrip = false) {
  AddedToken t;
  t.content = s;
  t.lstrip = lstrip;
  return t;
}

}  // namespace

std::unique_ptr<Tokenizer> load_spm(const fs::path& model_file, const TokenizerConfig& c,
                                    TokenizerFamily family) {
  if (!fs::exists(model_file)) {
    throw FileNotFound(model_file.string() + ": no such SentencePiece model file");
  }
  if (!fs::is_regular_file(model_file)) {
    throw TokenizerError(model_file.string() + ": the SentencePiece model is not a file");
  }
  auto tok = std::make_unique<SpmTokenizer>(
      model_file,
      std::map<std::string, TokenId>{{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}},
      kFairseqOffset);
  const auto sp_size = static_cast<TokenId>(tok->sp_size());
  SpecialDefaults d;
  d.bos = plain("<s>");
  d.eos = plain("</s>");
  d.sep = plain("</s>");
  d.cls = plain("<s>");
  d.unk = plain("<unk>");
  d.pad = plain("<pad>");
  TokenizerInfo& info = tok->info_;
  info.family = family;
  info.backend = Backend::kSlow;
  info.source = model_file;
  info.uses_token_type_ids = false;
  if (family == TokenizerFamily::kXlmRoberta) {
    // <mask> follows the SentencePiece ids and strips the space on its left.
    tok->add_fixed_token("<mask>", sp_size + kFairseqOffset);
    d.mask = plain("<mask>", /*lstrip=*/true);
    tok->vocab_size_ = static_cast<std::size_t>(sp_size) + kFairseqOffset + 1;
    info.tokenizer_class = "XLMRobertaTokenizer";
  } else {
    for (int i = 0; i < kXglmMadeupWords; ++i) {
      const std::string w = "<madeupword" + std::to_string(i) + ">";
      tok->add_fixed_token(w, sp_size + i + kFairseqOffset);
      d.additional.push_back(plain(w));
    }
    tok->vocab_size_ = static_cast<std::size_t>(sp_size) + kFairseqOffset + kXglmMadeupWords;
    info.tokenizer_class = "XGLMTokenizer";
  }
  apply_common_config(c, *tok);
  setup_special_tokens(c, d, *tok, model_file.string());
  for (const AddedToken& t : tok->added.tokens()) {
    tok->vocab_size_ = std::max(tok->vocab_size_, static_cast<std::size_t>(t.id) + 1);
  }
  setup_legacy_added(*tok, tok->vocab_size_);
  const SpecialTokens& s = tok->special_;
  if (family == TokenizerFamily::kXlmRoberta) {
    // <s> A </s>  /  <s> A </s></s> B </s>
    tok->single_template = {special_piece(s.cls, 0), sequence_piece(0, 0), special_piece(s.sep, 0)};
    tok->pair_template = {special_piece(s.cls, 0), sequence_piece(0, 0), special_piece(s.sep, 0),
                          special_piece(s.sep, 0), sequence_piece(1, 0), special_piece(s.sep, 0)};
  } else {
    // </s> A  /  </s> A </s></s> B
    tok->single_template = {special_piece(s.sep, 0), sequence_piece(0, 0)};
    tok->pair_template = {special_piece(s.sep, 0), sequence_piece(0, 0), special_piece(s.sep, 0),
                          special_piece(s.sep, 0), sequence_piece(1, 0)};
  }
  return tok;
}

}  // namespace xlt::text
