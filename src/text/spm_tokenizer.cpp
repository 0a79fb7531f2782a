// SentencePiece tokenizer with fairseq ids (see spm_tokenizer.h).
#include "text/spm_tokenizer.h"

#include "text/unicode.h"
#include "xlt/core/error.h"

namespace xlt::text {
namespace {

const std::string kUnderline = "\xE2\x96\x81";  // U+2581, SentencePiece's space marker

std::size_t char_end(std::string_view text, std::size_t pos) {
  uni::Decoded d = uni::decode(text, pos);
  return pos + (d.len ? d.len : 1);
}

// What a stretch of original text looks like after SentencePiece's NFKC-based normalisation,
// without whitespace and invisible characters (used to compare with a piece's text).
std::string visible_nfkc(std::string_view s) {
  std::string out;
  for (char32_t c : uni::decode_all(uni::nfkc_string(s))) {
    if (uni::is_white_space(c) || uni::is_bert_control(c)) continue;
    uni::append_utf8(out, c);
  }
  return out;
}

std::string without_marker(const std::string& piece) {
  std::string out;
  for (std::size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kUnderline.size(), kUnderline) == 0) {
      i += kUnderline.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

// SentencePiece credits a character that normalises to several (ligatures, "½", "Ⅻ") to the last
// piece it feeds; the earlier pieces get a range without it, or an empty one. Widen such ranges
// over the character so that every piece's range covers the text it came from.
void widen_expanded(std::string_view text, const std::string& piece, Offset& o) {
  const std::string want = without_marker(piece);
  if (want.empty()) return;
  std::string have = visible_nfkc(text.substr(o.begin, o.end - o.begin));
  if (have.find(want) != std::string::npos) return;
  std::size_t end = o.end;
  for (int step = 0; step < 4 && end < text.size(); ++step) {
    end = char_end(text, end);
    if (visible_nfkc(text.substr(o.begin, end - o.begin)).find(want) != std::string::npos) {
      o.end = end;
      return;
    }
  }
}

}  // namespace

SpmTokenizer::SpmTokenizer(const std::filesystem::path& model_file,
                           std::map<std::string, TokenId> fairseq_tokens, int fairseq_offset)
    : sp_(spm::Processor::load(model_file)),
      fairseq_tokens_(std::move(fairseq_tokens)),
      offset_(fairseq_offset) {
  for (const auto& [token, id] : fairseq_tokens_) fairseq_ids_[id] = token;
  if (auto it = fairseq_tokens_.find("<unk>"); it != fairseq_tokens_.end()) unk_id_ = it->second;
}

SpmTokenizer::~SpmTokenizer() = default;

void SpmTokenizer::add_fixed_token(const std::string& content, TokenId id) {
  fairseq_tokens_[content] = id;
  fairseq_ids_[id] = content;
}

std::size_t SpmTokenizer::sp_size() const {
  return static_cast<std::size_t>(sp_->piece_size());
}

TokenId SpmTokenizer::hf_id(int sp_id) const {
  // transformers: `spm_id + fairseq_offset if spm_id else unk_token_id`.
  return sp_id ? static_cast<TokenId>(sp_id + offset_) : unk_id_;
}

void SpmTokenizer::tokenize_plain(std::string_view text, std::size_t origin, Pieces& out) const {
  if (text.empty()) return;
  thread_local std::vector<spm::Piece> pieces;
  pieces.clear();
  sp_->encode(text, pieces);
  for (const spm::Piece& p : pieces) {
    const std::string& piece = p.piece;
    // convert_tokens_to_ids looks the piece up among the fixed tokens first.
    auto fixed = fairseq_tokens_.find(piece);
    TokenId id = fixed != fairseq_tokens_.end() ? fixed->second : hf_id(p.id);
    Offset o{p.begin, p.end};
    widen_expanded(text, piece, o);
    out.push(id, piece, {origin + o.begin, origin + o.end});
  }
}

std::optional<TokenId> SpmTokenizer::model_token_to_id(std::string_view token) const {
  if (auto it = fairseq_tokens_.find(std::string(token)); it != fairseq_tokens_.end()) {
    return it->second;
  }
  int id = sp_->piece_to_id(token);
  if (id == 0) return std::nullopt;
  return static_cast<TokenId>(id + offset_);
}

std::optional<std::string> SpmTokenizer::model_id_to_token(TokenId id) const {
  if (auto it = fairseq_ids_.find(id); it != fairseq_ids_.end()) return it->second;
  const int sp_id = id - offset_;
  if (sp_id < 0 || sp_id >= sp_->piece_size()) return std::nullopt;
  return sp_->id_to_piece(sp_id);
}

std::string SpmTokenizer::convert_tokens_to_string(const std::vector<std::string>& tokens) const {
  std::string joined;
  for (const std::string& t : tokens) joined += t;
  std::string out;
  out.reserve(joined.size());
  for (std::size_t i = 0; i < joined.size();) {
    if (joined.compare(i, kUnderline.size(), kUnderline) == 0) {
      out += ' ';
      i += kUnderline.size();
    } else {
      out += joined[i++];
    }
  }
  return std::string(python_strip(out));
}

}  // namespace xlt::text
