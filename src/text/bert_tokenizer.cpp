// WordPiece tokenizer (see bert_tokenizer.h).
#include "text/bert_tokenizer.h"

namespace xlt::text {
namespace {

// Feeds the splitter's words to the WordPiece model.
class WordPieceSink final : public BertWordSink {
 public:
  WordPieceSink(const WordPiece& model, Pieces& out) : model_(model), out_(out) {}
  void word(std::string_view w, const Offset* align, std::size_t origin, bool whole) override {
    if (!whole) {
      model_.tokenize_word(w, align, origin, out_);
      return;
    }
    // never_split words are looked up as they are (HF convert_tokens_to_ids: unk if absent).
    Offset o =
        align ? Offset{align[0].begin, align[w.size() - 1].end} : Offset{origin, origin + w.size()};
    out_.push(model_.find(w).value_or(model_.unk_id()), w, o);
  }

 private:
  const WordPiece& model_;
  Pieces& out_;
};

}  // namespace

BertTokenizer::BertTokenizer(WordPiece model, BertOptions options, WordPieceDecoder decoder)
    : model_(std::move(model)), splitter_(std::move(options)), decoder_(std::move(decoder)) {}

void BertTokenizer::tokenize_plain(std::string_view text, std::size_t origin, Pieces& out) const {
  WordPieceSink sink(model_, out);
  splitter_.split(text, origin, sink);
}

std::optional<TokenId> BertTokenizer::model_token_to_id(std::string_view token) const {
  return model_.find(token);
}

std::optional<std::string> BertTokenizer::model_id_to_token(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= model_.size()) return std::nullopt;
  return model_.token(id);
}

std::string BertTokenizer::convert_tokens_to_string(const std::vector<std::string>& tokens) const {
  std::string joined;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i) joined += ' ';
    joined += tokens[i];
  }
  std::string out;
  out.reserve(joined.size());
  for (std::size_t i = 0; i < joined.size();) {
    if (joined.compare(i, 3, " ##") == 0) {
      i += 3;
    } else {
      out += joined[i++];
    }
  }
  return std::string(python_strip(out));
}

std::string BertTokenizer::fast_decode(const std::vector<std::string>& tokens) const {
  if (!decoder_.present) return PipelineTokenizer::fast_decode(tokens);
  // The Rust WordPiece decoder: a prefix marks a continuation, anything else starts a new word;
  // cleanup runs on each token.
  std::string out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string t = tokens[i];
    if (i > 0) {
      if (!decoder_.prefix.empty() && t.compare(0, decoder_.prefix.size(), decoder_.prefix) == 0) {
        t.erase(0, decoder_.prefix.size());
      } else {
        t.insert(0, " ");
      }
    }
    if (decoder_.cleanup) {
      t = clean_up_tokenization(std::move(t));
      std::size_t pos = 0;
      while ((pos = t.find(" do not", pos)) != std::string::npos) {
        t.replace(pos, 7, " don't");
        pos += 6;
      }
    }
    out += t;
  }
  return out;
}

}  // namespace xlt::text
