// Parity with Hugging Face, data-driven: every *.jsonl with a sibling *.meta.json found under
// fixtures_dir() is loaded with the tokenizer its meta file names, and every field of every
// record must match exactly (fields a record lacks are not tested; a field this test does not
// know fails, so new reference data cannot be ignored silently). Offsets of every non-special
// token must slice back to the text the token came from.
#include <utf8proc.h>

#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/test_env.h"
#include "text/spm_runtime.h"
#include "text/unicode.h"
#include "xlt/text/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace xlt::text;

namespace {

struct FixtureFile {
  fs::path jsonl;
  json meta;
};

void PrintTo(const FixtureFile& f, std::ostream* os) {
  *os << f.jsonl;
}

std::vector<FixtureFile> fixture_files() {
  std::vector<FixtureFile> out;
  const fs::path root = xlt::test::fixtures_dir();
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.path().extension() != ".jsonl") continue;
    fs::path meta = e.path();
    meta.replace_extension(".meta.json");
    if (!fs::exists(meta)) continue;
    std::ifstream in(meta);
    out.push_back({e.path(), json::parse(in)});
  }
  std::sort(out.begin(), out.end(),
            [](const FixtureFile& a, const FixtureFile& b) { return a.jsonl < b.jsonl; });
  return out;
}

std::vector<json> records_of(const fs::path& jsonl) {
  std::vector<json> out;
  std::ifstream in(jsonl);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

template <class T>
json to_json(const std::vector<T>& v) {
  json j = json::array();
  for (const auto& x : v) j.push_back(x);
  return j;
}

std::string nfkc(const std::string& s) {
  utf8proc_uint8_t* out = utf8proc_NFKC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  std::string r(reinterpret_cast<const char*>(out));
  std::free(out);
  return r;
}

EncodeOptions no_special() {
  EncodeOptions o;
  o.add_special_tokens = false;
  return o;
}

// Offsets of non-special tokens are on character boundaries inside the text and, once the
// slice is normalised as the tokenizer normalises, give the token back.
void check_offsets(const Tokenizer& tok, const Encoding& e, const std::string& text, int sequence,
                   const std::string& where) {
  const auto& s = tok.special_tokens();
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (e.sequence_ids[i] != sequence) continue;
    const Offset o = e.offsets[i];
    ASSERT_LE(o.begin, o.end) << where << " token " << i;
    ASSERT_LE(o.end, text.size()) << where << " token " << i;
    auto boundary = [&](std::size_t p) {
      return p == text.size() || (static_cast<unsigned char>(text[p]) & 0xC0) != 0x80;
    };
    EXPECT_TRUE(boundary(o.begin) && boundary(o.end)) << where << " token " << i;
    const std::string slice = text.substr(o.begin, o.end - o.begin);
    const std::string& token = e.tokens[i];
    if (e.ids[i] == s.unk.id && token == s.unk.content) continue;  // [UNK] stands for anything
    if (tok.token_to_id(token) && token == slice) continue;        // e.g. special text typed in
    std::string body = token, norm = slice;
    if (tok.info().family == TokenizerFamily::kBert) {
      if (body.rfind("##", 0) == 0) body = body.substr(2);
      if (tok.info().backend == Backend::kSlow) norm = uni::nfc_string(slice);
      // Characters BERT's cleaning drops (controls, format characters) may sit inside a word.
      std::string kept;
      for (char32_t c : uni::decode_all(norm)) {
        if (!uni::is_bert_control(c) && c != 0xFFFD && c != 0) uni::append_utf8(kept, c);
      }
      norm = kept;
    } else {
      // SentencePiece's nmt_nfkc: NFKC; whitespace (the "▁" marker in pieces) and invisible
      // control/format characters are left out of the comparison on both sides.
      auto visible = [](const std::string& s) {
        std::string out;
        for (char32_t c : uni::decode_all(nfkc(s))) {
          const int cat = uni::category(c);
          if (uni::is_white_space(c) || c == 0x2581 || cat == UTF8PROC_CATEGORY_CC ||
              cat == UTF8PROC_CATEGORY_CF) {
            continue;
          }
          uni::append_utf8(out, c);
        }
        return out;
      };
      norm = visible(slice);
      body = visible(token);
      if (body.empty()) continue;  // a lone "▁" covers whitespace
      // A character that normalises to several ("ﬃ" -> "ffi") belongs to every piece it feeds.
      EXPECT_NE(norm.find(body), std::string::npos)
          << where << " token " << i << " '" << token << "' offsets [" << o.begin << ", " << o.end
          << ") slice '" << slice << "'";
      continue;
    }
    EXPECT_EQ(norm, body) << where << " token " << i << " '" << token << "' offsets [" << o.begin
                          << ", " << o.end << ")";
  }
}

// Fields that describe a record rather than a tokenizer output.
const std::set<std::string> kMetadata = {"id",     "text",        "text_pair",     "tags",
                                         "source", "equals_slow", "google_tokens", "google_ids"};

class TokenizerFixtures : public ::testing::TestWithParam<FixtureFile> {};

TEST_P(TokenizerFixtures, MatchesHuggingFaceOnEveryRecord) {
  const FixtureFile& f = GetParam();
  const fs::path tok_path = f.jsonl.parent_path() / f.meta.at("tokenizer").get<std::string>();
  XLT_REQUIRE_PATH(tok_path);
  auto tok = load_tokenizer(tok_path);
  std::unique_ptr<spm::Processor> raw_sp;
  if (fs::is_directory(tok_path) && fs::exists(tok_path / "sentencepiece.bpe.model")) {
    raw_sp = spm::Processor::load(tok_path / "sentencepiece.bpe.model");
  }
  const auto records = records_of(f.jsonl);
  ASSERT_FALSE(records.empty()) << f.jsonl;
  if (f.meta.contains("records")) {
    EXPECT_EQ(records.size(), f.meta["records"].get<std::size_t>());
  }

  std::size_t checked_fields = 0;
  for (const json& r : records) {
    const std::string text = r.at("text").get<std::string>();
    const std::string where =
        f.jsonl.filename().string() + " record " + r.value("id", json()).dump();
    const bool has_pair = r.contains("text_pair");
    const std::string pair = has_pair ? r["text_pair"].get<std::string>() : std::string();
    const Encoding single = tok->encode(text);
    const Encoding plain = tok->encode(text, no_special());
    check_offsets(*tok, single, text, 0, where);
    std::optional<Encoding> both, pair_plain;
    if (has_pair) {
      both = tok->encode_pair(text, pair);
      pair_plain = tok->encode(pair, no_special());
      check_offsets(*tok, *both, pair, 1, where + " (pair)");
    }
    for (const auto& [key, expected] : r.items()) {
      if (kMetadata.count(key)) continue;
      json actual;
      // A copy: lambdas cannot capture structured bindings before C++20 (clang rejects it).
      auto need_pair = [&, field = key]() {
        if (!has_pair) throw std::runtime_error("field " + field + " without text_pair");
      };
      DecodeOptions keep;
      DecodeOptions skip;
      skip.skip_special_tokens = true;
      DecodeOptions no_cleanup;
      no_cleanup.clean_up_tokenization_spaces = false;
      if (key == "tokens")
        actual = to_json(tok->tokenize(text));
      else if (key == "ids")
        actual = to_json(plain.ids);
      else if (key == "input_ids")
        actual = to_json(single.ids);
      else if (key == "token_type_ids")
        actual = to_json(single.token_type_ids);
      else if (key == "attention_mask")
        actual = to_json(single.attention_mask);
      else if (key == "special_tokens_mask")
        actual = to_json(single.special_tokens_mask);
      else if (key == "pair_tokens")
        need_pair(), actual = to_json(tok->tokenize(pair));
      else if (key == "pair_ids")
        need_pair(), actual = to_json(pair_plain->ids);
      else if (key == "pair_input_ids")
        need_pair(), actual = to_json(both->ids);
      else if (key == "pair_token_type_ids")
        need_pair(), actual = to_json(both->token_type_ids);
      else if (key == "pair_attention_mask")
        need_pair(), actual = to_json(both->attention_mask);
      else if (key == "pair_special_tokens_mask")
        need_pair(), actual = to_json(both->special_tokens_mask);
      else if (key.rfind("pair_truncated_", 0) == 0) {
        need_pair();
        EncodeOptions o;
        o.truncation = TruncationStrategy::kLongestFirst;
        o.max_length = std::stoul(key.substr(std::string("pair_truncated_").size()));
        Encoding t = tok->encode_pair(text, pair, o);
        if (expected.is_array()) {
          actual = to_json(t.ids);
        } else {
          actual = json::object();
          for (const auto& [k, v] : expected.items()) {
            if (k == "input_ids")
              actual[k] = to_json(t.ids);
            else if (k == "token_type_ids")
              actual[k] = to_json(t.token_type_ids);
            else if (k == "attention_mask")
              actual[k] = to_json(t.attention_mask);
            else if (k == "special_tokens_mask")
              actual[k] = to_json(t.special_tokens_mask);
            else if (k == "tokens")
              actual[k] = to_json(t.tokens);
            else
              ADD_FAILURE() << where << ": unknown field " << key << "." << k;
          }
        }
      } else if (key == "decoded")
        actual = tok->decode(plain.ids, keep);
      else if (key == "decoded_no_cleanup")
        actual = tok->decode(plain.ids, no_cleanup);
      else if (key == "decoded_skip_special")
        actual = tok->decode(plain.ids, skip);
      else if (key == "decoded_input_ids")
        actual = tok->decode(single.ids, keep);
      else if (key == "decoded_input_ids_skip_special")
        actual = tok->decode(single.ids, skip);
      else if (key == "decoded_pair_input_ids")
        need_pair(), actual = tok->decode(both->ids, keep);
      else if (key == "pair_decoded")
        need_pair(), actual = tok->decode(pair_plain->ids, keep);
      else if (key == "convert_tokens_to_string")
        actual = tok->convert_tokens_to_string(tok->tokenize(text));
      else if (key == "tokens_from_ids") {
        actual = json::array();
        for (TokenId id : plain.ids) actual.push_back(tok->id_to_token(id));
      } else if (key == "spm_pieces_raw" || key == "spm_ids_raw") {
        ASSERT_TRUE(raw_sp) << where << ": " << key << " without a SentencePiece model";
        std::vector<spm::Piece> raw;
        raw_sp->encode(text, raw);
        actual = json::array();
        for (const spm::Piece& p : raw) {
          if (key == "spm_pieces_raw") {
            actual.push_back(p.piece);
          } else {
            actual.push_back(p.id);
          }
        }
      } else {
        ADD_FAILURE() << where << ": unknown field '" << key << "' (teach this test what it means)";
        continue;
      }
      ++checked_fields;
      EXPECT_EQ(actual, expected) << where << " field " << key << "\n  text: " << text;
    }
  }
  EXPECT_GT(checked_fields, records.size());
}

std::string fixture_name(const ::testing::TestParamInfo<FixtureFile>& info) {
  fs::path rel = fs::relative(info.param.jsonl, xlt::test::fixtures_dir());
  std::string name = rel.replace_extension().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Reference, TokenizerFixtures, ::testing::ValuesIn(fixture_files()),
                         fixture_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TokenizerFixtures);

TEST(TokenizerFixtureDiscovery, FindsTheReferenceFiles) {
  XLT_REQUIRE_PATH(xlt::test::fixtures_dir() / "wordpiece_mbert_cased.meta.json");
  // The four reference sets the issue names must be among those found.
  std::set<std::string> found;
  for (const auto& f : fixture_files()) found.insert(f.jsonl.filename().string());
  for (const char* name : {"wordpiece_mbert_cased.jsonl", "wordpiece_mbert_cased_fast.jsonl",
                           "xlmr_unigram.jsonl", "xglm_bpe.jsonl"}) {
    EXPECT_TRUE(found.count(name)) << name;
  }
}

}  // namespace
