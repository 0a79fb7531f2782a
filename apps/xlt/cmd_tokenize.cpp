// `xlt tokenize MODEL [TEXT...] [--pair] [--json] [--max-length L] [--slow]`: runs a model's
// tokenizer exactly as Hugging Face does and prints tokens and ids. Texts come from the
// arguments or, without them, from stdin one per line (a line with a tab is a pair: text, then
// text_pair). With --json every input gives exactly one JSON line, in order, with HF's field
// names, so it works as a stdin -> stdout filter.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/io/hub_cache.h"
#include "xlt/text/tokenizer.h"

namespace xlt::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::vector<std::string> texts;
  bool pair = false;
  bool json = false;
  std::size_t max_length = 0;
  bool slow = false;
  bool replace_invalid = false;
  bool no_special_tokens = false;
  bool offsets = false;
  int threads = 0;
};

struct Input {
  std::string text;
  std::string text_pair;
  bool is_pair = false;
  std::string where;  // "argument 2", "line 7"
};

template <class T>
nlohmann::json array_of(const std::vector<T>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : v) a.push_back(x);
  return a;
}

nlohmann::ordered_json to_json(const text::Encoding& e, bool is_pair, bool offsets) {
  nlohmann::ordered_json j;
  j["tokens"] = array_of(e.sequence_tokens(0));
  j["ids"] = array_of(e.sequence_token_ids(0));
  if (is_pair) {
    j["pair_tokens"] = array_of(e.sequence_tokens(1));
    j["pair_ids"] = array_of(e.sequence_token_ids(1));
  }
  j["input_ids"] = array_of(e.ids);
  j["token_type_ids"] = array_of(e.token_type_ids);
  j["attention_mask"] = array_of(e.attention_mask);
  j["special_tokens_mask"] = array_of(e.special_tokens_mask);
  if (offsets) {
    nlohmann::json o = nlohmann::json::array();
    for (std::size_t i = 0; i < e.size(); ++i) {
      o.push_back({e.offsets[i].begin, e.offsets[i].end});
    }
    j["offsets"] = o;
    j["sequence_ids"] = array_of(e.sequence_ids);
  }
  return j;
}

void print_human(const Input& in, const text::Encoding& e, std::ostream& out) {
  out << "text:   " << in.text << "\n";
  if (in.is_pair) out << "pair:   " << in.text_pair << "\n";
  out << "tokens:";
  for (const auto& t : e.tokens) out << " " << t;
  out << "\nids:   ";
  for (auto id : e.ids) out << " " << id;
  if (in.is_pair) {
    out << "\ntypes: ";
    for (auto t : e.token_type_ids) out << " " << t;
  }
  out << "\n(" << e.size() << " tokens";
  if (e.num_truncated) out << ", " << e.num_truncated << " truncated";
  out << ")\n\n";
}

class Runner_ {
 public:
  Runner_(const TokenizeOptions& o, const text::Tokenizer& tok) : o_(o), tok_(tok) {
    enc_.add_special_tokens = !o.no_special_tokens;
    enc_.replace_invalid_utf8 = o.replace_invalid;
    if (o.max_length > 0) {
      enc_.max_length = o.max_length;
      enc_.truncation = text::TruncationStrategy::kLongestFirst;
    }
  }

  // Encodes and prints a chunk of inputs (encoded on several threads, printed in order).
  void run(const std::vector<Input>& chunk) {
    std::vector<text::Encoding> encodings(chunk.size());
    std::vector<std::string> singles;
    std::vector<std::pair<std::string, std::string>> pairs;
    std::vector<std::size_t> single_at, pair_at;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (chunk[i].is_pair) {
        pairs.emplace_back(chunk[i].text, chunk[i].text_pair);
        pair_at.push_back(i);
      } else {
        singles.push_back(chunk[i].text);
        single_at.push_back(i);
      }
    }
    try {
      auto s = tok_.encode_batch(singles, enc_, o_.threads);
      for (std::size_t k = 0; k < s.size(); ++k) encodings[single_at[k]] = std::move(s[k]);
      auto p = tok_.encode_pair_batch(pairs, enc_, o_.threads);
      for (std::size_t k = 0; k < p.size(); ++k) encodings[pair_at[k]] = std::move(p[k]);
    } catch (const TokenizerError&) {
      // Find the first failing input so the message names it.
      for (const Input& in : chunk) {
        try {
          if (in.is_pair) {
            tok_.encode_pair(in.text, in.text_pair, enc_);
          } else {
            tok_.encode(in.text, enc_);
          }
        } catch (const TokenizerError& e) {
          throw TokenizerError(in.where + ": " + e.what());
        }
      }
      throw;
    }
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (o_.json) {
        std::cout << to_json(encodings[i], chunk[i].is_pair, o_.offsets)
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        print_human(chunk[i], encodings[i], std::cout);
      }
    }
    std::cout.flush();
  }

 private:
  const TokenizeOptions& o_;
  const text::Tokenizer& tok_;
  text::EncodeOptions enc_;
};

int run_tokenize(const TokenizeOptions& o) {
  text::LoadOptions lo;
  lo.prefer_slow = o.slow;
  const io::ModelLocation where = io::resolve_model_location(o.model);
  std::unique_ptr<text::Tokenizer> tok = text::load_tokenizer(where.path, lo);
  Runner_ runner(o, *tok);

  if (!o.texts.empty()) {
    if (o.pair && o.texts.size() % 2 != 0) {
      throw UsageError("--pair takes the texts two at a time (text, text_pair); got " +
                       std::to_string(o.texts.size()) + " texts");
    }
    std::vector<Input> inputs;
    for (std::size_t i = 0; i < o.texts.size(); i += o.pair ? 2 : 1) {
      Input in{o.texts[i], o.pair ? o.texts[i + 1] : "", o.pair,
               "argument " + std::to_string(i + 1)};
      inputs.push_back(std::move(in));
    }
    runner.run(inputs);
    return 0;
  }

  constexpr std::size_t kChunk = 4096;
  std::vector<Input> chunk;
  std::string line;
  std::size_t number = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Input in;
    in.where = "line " + std::to_string(number);
    const auto tabs = std::count(line.begin(), line.end(), '\t');
    // Lines before a bad one keep their output lines.
    if ((tabs > 1 || (o.pair && tabs == 0)) && !chunk.empty()) {
      runner.run(chunk);
      chunk.clear();
    }
    if (tabs > 1) {
      throw DataError("stdin line " + std::to_string(number) + ": " + std::to_string(tabs) +
                      " tabs; a line is TEXT or TEXT<TAB>TEXT_PAIR");
    }
    if (o.pair && tabs == 0) {
      throw DataError("stdin line " + std::to_string(number) +
                      ": no tab, but --pair reads each line as TEXT<TAB>TEXT_PAIR");
    }
    if (auto tab = line.find('\t'); tab != std::string::npos) {
      in.text = line.substr(0, tab);
      in.text_pair = line.substr(tab + 1);
      in.is_pair = true;
    } else {
      in.text = std::move(line);
    }
    chunk.push_back(std::move(in));
    if (chunk.size() == kChunk) {
      runner.run(chunk);
      chunk.clear();
    }
  }
  if (!chunk.empty()) runner.run(chunk);
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<TokenizeOptions>();
  sub.add_option("model", o->model,
                 "Model folder, tokenizer folder, tokenizer file (vocab.txt, tokenizer.json, "
                 "sentencepiece .model) or Hugging Face id in the local HF cache")
      ->required();
  sub.add_option("texts", o->texts,
                 "Texts to tokenize; without them, stdin is read one text per line (a line "
                 "with a tab is a pair: text<TAB>text_pair)");
  sub.add_flag("--pair", o->pair, "Take the TEXTS two at a time as (text, text_pair)");
  sub.add_flag("--json", o->json,
               "One JSON object per input line: tokens, ids (first text, no special tokens), "
               "pair_tokens, pair_ids (pairs), input_ids, token_type_ids, attention_mask, "
               "special_tokens_mask (what tokenizer(text[, text_pair]) returns)");
  sub.add_option("--max-length", o->max_length,
                 "Truncate to this many tokens, special tokens included (HF longest_first)")
      ->check(positive());
  sub.add_flag("--slow", o->slow,
               "Use the slow tokenizer's files (vocab.txt / sentencepiece.bpe.model) even when a "
               "tokenizer.json is present");
  sub.add_flag("--replace-invalid", o->replace_invalid,
               "Replace invalid UTF-8 with U+FFFD (as Python's errors='replace') instead of "
               "failing with the byte offset");
  sub.add_flag("--no-special-tokens", o->no_special_tokens,
               "Do not add the model's special tokens (add_special_tokens=False)");
  sub.add_flag("--offsets", o->offsets,
               "With --json, also print byte offsets [begin, end) into the input text and "
               "sequence_ids");
  sub.add_option("--threads", o->threads, "Tokenizer threads (0 = all cores)")
      ->check(thread_count());
  return [o]() { return run_tokenize(*o); };
}

}  // namespace

XLT_REGISTER_COMMAND("tokenize",
                     "Tokenize text exactly as the model's Hugging Face tokenizer does (tokens, "
                     "ids, masks; stdin -> JSON lines)",
                     20, configure);

}  // namespace xlt::cli
