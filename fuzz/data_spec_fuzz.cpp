// Fuzzes the CLI's dataset specifications: --langs lists and --data LANG=PATH values (input
// lines: the first is --langs, the format name and the rest are --data values). Paths are only
// opened when they name one of the scratch files, so the fuzzer cannot read /dev/zero.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <set>

#include "fuzz_util.h"
#include "xlt/data/spec.h"

namespace {

void setup() {
  static bool done = [] {
    auto d = xlt::fuzz::scratch_dir() / "spec";
    std::filesystem::create_directories(d);
    xlt::fuzz::write_bytes(d / "en.tsv", "premise\thypo\tlabel\na\tb\tentailment\nc\td\tneutral\n");
    xlt::fuzz::write_bytes(d / "xnli.tsv",
                           "language\tgold_label\tsentence1\tsentence2\tpairID\n"
                           "en\tentailment\ta\tb\t1\nes\tneutral\tc\td\t1\n");
    xlt::fuzz::write_bytes(d / "train.jsonl",
                           "{\"premise\":\"a\",\"hypothesis\":\"b\",\"label\":0}\n");
    if (::chdir(d.c_str()) != 0) std::abort();
    return true;
  }();
  (void)done;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  setup();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  while (!text.empty() && lines.size() < 8) {
    auto nl = text.find('\n');
    lines.emplace_back(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  if (lines.empty()) return 0;

  std::vector<std::string> langs;
  xlt::fuzz::expect_clean([&] { langs = xlt::data::parse_lang_list(lines[0]); });
  xlt::data::NliFormat format = xlt::data::NliFormat::kAuto;
  if (lines.size() > 1) {
    xlt::fuzz::expect_clean([&] { format = xlt::data::parse_nli_format(lines[1]); });
  }
  std::vector<std::string> specs(lines.begin() + std::min<std::size_t>(2, lines.size()),
                                 lines.end());
  static const std::set<std::string> kSafe = {"en.tsv", "xnli.tsv", "train.jsonl", "missing.tsv"};
  bool safe = true;
  for (const auto& s : specs) {
    xlt::fuzz::expect_clean([&] {
      auto spec = xlt::data::parse_data_spec(s);
      if (!kSafe.count(spec.path)) safe = false;
    });
    if (s.find('=') == std::string::npos && !kSafe.count(s)) safe = false;
  }
  if (safe) {
    xlt::fuzz::expect_clean([&] {
      auto sets = xlt::data::parse_data_specs(specs, langs, format, true);
      xlt::data::subsample(sets, 1, 7);
    });
  }
  return 0;
}
