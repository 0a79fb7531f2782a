// BERT normalizer + pre-tokenizer (see bert_splitter.h). The fused BertSplitter::split is the
// hot path of WordPiece tokenization: it classifies ASCII bytes with a table, hands unchanged
// words to the sink as views of the input (no copy, identity offsets) and sends only words that
// normalisation would change through the component functions.
#include "text/bert_splitter.h"

namespace xlt::text {
namespace {

using uni::AlignedChar;
using uni::AlignedChars;

AlignedChars decode_aligned(std::string_view text, std::size_t origin) {
  AlignedChars out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    uni::Decoded d = uni::decode(text, i);
    if (d.len == 0) d = {0xFFFD, 1};  // callers validate; stay safe regardless
    out.push_back({d.cp, {origin + i, origin + i + d.len}});
    i += d.len;
  }
  return out;
}

std::string utf8_of(const AlignedChars& chars) {
  std::string s;
  s.reserve(chars.size());
  for (const AlignedChar& c : chars) uni::append_utf8(s, c.cp);
  return s;
}

BertWord make_word(const AlignedChars& chars, std::size_t b, std::size_t e, bool whole) {
  BertWord w;
  w.whole = whole;
  for (std::size_t i = b; i < e; ++i) {
    std::size_t before = w.text.size();
    uni::append_utf8(w.text, chars[i].cp);
    w.align.insert(w.align.end(), w.text.size() - before, chars[i].source);
  }
  return w;
}

void split_on_punctuation(const AlignedChars& word, std::vector<BertWord>& out) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (!uni::is_bert_punctuation(word[i].cp)) continue;
    if (i > run) out.push_back(make_word(word, run, i, false));
    out.push_back(make_word(word, i, i + 1, false));
    run = i + 1;
  }
  if (word.size() > run) out.push_back(make_word(word, run, word.size(), false));
}

}  // namespace

AlignedChars bert_normalize(std::string_view text, std::size_t origin, const BertOptions& options) {
  AlignedChars chars = decode_aligned(text, origin), tmp;
  const bool slow = options.flavor == BertFlavor::kSlow;
  if (slow && options.lowercase) {
    // transformers lowercases the text before BasicTokenizer runs, one character at a time
    // (re.sub of "(.+?)" with str.lower): no final-sigma rule there, so a word-final capital
    // sigma becomes σ, not ς, and BasicTokenizer's own str.lower() of the word finds none left.
    uni::lower_per_char(chars, tmp);
    chars.swap(tmp);
  }
  tmp.clear();
  for (const AlignedChar& c : chars) {
    if (options.clean_text || slow) {
      if (c.cp == 0 || c.cp == 0xFFFD || uni::is_bert_control(c.cp)) continue;
      if (uni::is_bert_whitespace(c.cp)) {
        tmp.push_back({' ', c.source});
        continue;
      }
    }
    if (options.handle_chinese_chars && uni::is_cjk_ideograph(c.cp, !slow)) {
      tmp.push_back({' ', {c.source.begin, c.source.begin}});
      tmp.push_back(c);
      tmp.push_back({' ', {c.source.end, c.source.end}});
      continue;
    }
    tmp.push_back(c);
  }
  chars.swap(tmp);
  if (slow) {
    uni::nfc(chars, tmp);
    chars.swap(tmp);
  } else {
    if (options.strips_accents()) {
      uni::strip_accents(chars, tmp);
      chars.swap(tmp);
    }
    if (options.lowercase) {
      uni::lower_per_char(chars, tmp);
      chars.swap(tmp);
    }
  }
  return chars;
}

std::vector<BertWord> bert_pre_tokenize(const AlignedChars& normalized,
                                        const BertOptions& options) {
  const bool slow = options.flavor == BertFlavor::kSlow;
  std::vector<BertWord> out;
  AlignedChars word, tmp;
  auto finish = [&]() {
    if (word.empty()) return;
    if (slow) {
      if (!options.never_split.empty() && options.never_split.count(utf8_of(word))) {
        out.push_back(make_word(word, 0, word.size(), true));
        word.clear();
        return;
      }
      if (options.lowercase) {
        uni::lower_python(word, tmp);
        word.swap(tmp);
      }
      if (options.strips_accents()) {
        uni::strip_accents(word, tmp);
        word.swap(tmp);
      }
      if (!options.never_split.empty() && options.never_split.count(utf8_of(word))) {
        out.push_back(make_word(word, 0, word.size(), true));
        word.clear();
        return;
      }
    }
    split_on_punctuation(word, out);
    word.clear();
  };
  for (const AlignedChar& c : normalized) {
    bool sep = slow ? uni::is_python_space(c.cp) : uni::is_white_space(c.cp);
    if (sep) {
      finish();
    } else {
      word.push_back(c);
    }
  }
  finish();
  return out;
}

BertSplitter::BertSplitter(BertOptions options) : options_(std::move(options)) {
  const bool slow = options_.flavor == BertFlavor::kSlow;
  const bool clean = options_.clean_text || slow;
  lower_or_strip_ = options_.lowercase || options_.strips_accents();
  for (char32_t c = 0; c < 128; ++c) {
    AsciiClass cls = kWordChar;
    if (clean && (c == 0 || uni::is_bert_control(c))) {
      cls = kRemoved;
    } else if (slow ? uni::is_python_space(c) : uni::is_white_space(c)) {
      cls = kSpace;
    } else if (c >= 'A' && c <= 'Z') {
      cls = kUpper;
    }
    ascii_class_[c] = cls;
    ascii_punct_[c] = uni::is_bert_punctuation(c);
  }
}

bool BertSplitter::is_separator(char32_t c) const {
  return options_.flavor == BertFlavor::kSlow ? uni::is_python_space(c) : uni::is_white_space(c);
}

void BertSplitter::split(std::string_view text, std::size_t origin, BertWordSink& sink) const {
  const std::size_t n = text.size();
  if (!options_.basic_tokenize) {
    // WordpieceTokenizer alone: str.split() on the raw text.
    std::size_t begin = std::string_view::npos;
    for (std::size_t i = 0; i < n;) {
      uni::Decoded d = uni::decode(text, i);
      if (d.len == 0) d = {0xFFFD, 1};
      if (uni::is_python_space(d.cp)) {
        if (begin != std::string_view::npos) {
          sink.word(text.substr(begin, i - begin), nullptr, origin + begin, false);
        }
        begin = std::string_view::npos;
      } else if (begin == std::string_view::npos) {
        begin = i;
      }
      i += d.len;
    }
    if (begin != std::string_view::npos) {
      sink.word(text.substr(begin), nullptr, origin + begin, false);
    }
    return;
  }

  const bool slow = options_.flavor == BertFlavor::kSlow;
  const bool clean = options_.clean_text || slow;
  const bool lower = options_.lowercase;
  std::size_t begin = std::string_view::npos;
  bool dirty = false;
  auto flush = [&](std::size_t end) {
    if (begin == std::string_view::npos) return;
    std::string_view w = text.substr(begin, end - begin);
    if (dirty) {
      general_word(w, origin + begin, sink);
    } else {
      clean_word(w, origin + begin, sink);
    }
    begin = std::string_view::npos;
    dirty = false;
  };
  std::size_t i = 0;
  while (i < n) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      switch (ascii_class_[b]) {
        case kWordChar:
          if (begin == std::string_view::npos) begin = i;
          break;
        case kUpper:
          if (begin == std::string_view::npos) begin = i;
          dirty |= lower;
          break;
        case kSpace:
          flush(i);
          break;
        case kRemoved:
          // A dropped character inside a word joins its neighbours: let the general path do it.
          if (begin != std::string_view::npos) dirty = true;
          break;
      }
      ++i;
      continue;
    }
    uni::Decoded d = uni::decode(text, i);
    if (d.len == 0) d = {0xFFFD, 1};
    const char32_t c = d.cp;
    if (clean && (c == 0xFFFD || uni::is_bert_control(c))) {
      if (begin != std::string_view::npos) dirty = true;
    } else if (is_separator(c)) {
      flush(i);
    } else if (options_.handle_chinese_chars && uni::is_cjk_ideograph(c, !slow)) {
      flush(i);
      begin = i;
      dirty = (slow && !uni::is_nfc_inert(c)) || lower_or_strip_;
      flush(i + d.len);
    } else {
      if (begin == std::string_view::npos) begin = i;
      if (lower_or_strip_ || (slow && !uni::is_nfc_inert(c))) dirty = true;
    }
    i += d.len;
  }
  flush(n);
}

void BertSplitter::clean_word(std::string_view w, std::size_t origin, BertWordSink& sink) const {
  if (!options_.never_split.empty() && options_.never_split.count(std::string(w))) {
    sink.word(w, nullptr, origin, true);
    return;
  }
  std::size_t run = 0, i = 0;
  while (i < w.size()) {
    const auto b = static_cast<unsigned char>(w[i]);
    std::size_t len = 1;
    bool punct;
    if (b < 0x80) {
      punct = ascii_punct_[b];
    } else {
      uni::Decoded d = uni::decode(w, i);
      len = d.len == 0 ? 1 : d.len;
      punct = uni::is_bert_punctuation(d.cp);
    }
    if (punct) {
      if (i > run) sink.word(w.substr(run, i - run), nullptr, origin + run, false);
      sink.word(w.substr(i, len), nullptr, origin + i, false);
      run = i + len;
    }
    i += len;
  }
  if (w.size() > run) sink.word(w.substr(run), nullptr, origin + run, false);
}

void BertSplitter::general_word(std::string_view raw, std::size_t origin,
                                BertWordSink& sink) const {
  for (const BertWord& w : bert_pre_tokenize(bert_normalize(raw, origin, options_), options_)) {
    sink.word(w.text, w.align.data(), 0, w.whole);
  }
}

}  // namespace xlt::text
