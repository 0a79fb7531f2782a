// Fuzzes the study TOML config (toml++ parsing plus xlt's strict key/type/range checks). The
// parser is torch-free although the study module is not, so this target compiles
// src/study/config.cpp on its own. Relative paths resolve against a scratch folder holding a
// few files the config may name.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "xlt/study/config.h"

namespace {

const std::filesystem::path& base() {
  static const std::filesystem::path dir = [] {
    auto d = xlt::fuzz::scratch_dir() / "study";
    std::filesystem::create_directories(d / "tok");
    xlt::fuzz::write_bytes(d / "bert-config.json", R"({"model_type": "bert", "vocab_size": 8})");
    xlt::fuzz::write_bytes(d / "tok" / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    xlt::fuzz::write_bytes(d / "dev-en.tsv", "premise\thypo\tlabel\na\tb\tentailment\n");
    xlt::fuzz::write_bytes(d / "train.jsonl",
                           "{\"premise\":\"a\",\"hypothesis\":\"b\",\"label\":0}\n");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  xlt::fuzz::expect_clean([&] {
    auto c = xlt::study::parse_study_config(text, base() / "study.toml");
    (void)c.to_json().dump();
  });
  return 0;
}
