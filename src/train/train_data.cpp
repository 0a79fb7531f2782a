// Training/dev data for xlt finetune: specs -> one dataset, label checks, chunked tokenisation
// into compact encodings, and the seeded epoch order (see train_data.h).
#include "train/train_data.h"

#include <algorithm>
#include <iostream>
#include <set>

#include "xlt/core/error.h"
#include "xlt/core/progress.h"
#include "xlt/data/random.h"
#include "xlt/data/spec.h"
#include "xlt/eval/collate.h"
#include "xlt/io/dataset_download.h"
#include "xlt/io/hub.h"

namespace xlt::train::detail {

data::NliDataset read_dataset(const std::vector<std::string>& specs,
                              const std::vector<std::string>& langs, const std::string& flag,
                              data::NliFormat format, bool skip_bad_rows,
                              const std::vector<std::string>* keep_langs) {
  data::SpecOptions opts;
  opts.flag = flag;
  opts.read.format = format;
  opts.read.skip_bad_rows = skip_bad_rows;
  auto sets = data::parse_data_specs(specs, langs, opts);
  if (keep_langs && !keep_langs->empty()) {
    // Languages a value names itself (LANG=PATH, a dataset spec's lang=) stay; a file or dataset
    // with several languages is cut to `keep_langs`.
    std::set<std::string> named;
    for (const auto& spec : specs) {
      if (io::is_dataset_spec(spec)) {
        // Resolved once already by parse_data_specs above: its languages, parsed as there.
        for (const auto& l : io::resolve_dataset_spec(spec).languages) named.insert(l);
      } else if (const auto d = data::parse_data_spec(spec, flag); !d.lang.empty()) {
        named.insert(d.lang);
      }
    }
    std::string dropped, sources;
    std::vector<data::NliDataset> kept;
    for (auto& s : sets) {
      if (named.count(s.lang) || std::count(keep_langs->begin(), keep_langs->end(), s.lang)) {
        kept.push_back(std::move(s));
      } else {
        dropped += (dropped.empty() ? "" : ", ") + s.lang;
        if (sources.find(s.source) == std::string::npos)
          sources += (sources.empty() ? "" : ", ") + s.source;
      }
    }
    std::string keep_list;
    for (const auto& l : *keep_langs) keep_list += (keep_list.empty() ? "" : ",") + l;
    if (kept.empty()) {
      throw DataError(flag + " " + sources + ": no rows in the training languages (" + keep_list +
                      "); pass --langs to choose the languages to select the checkpoint on");
    }
    if (!dropped.empty()) {
      std::cerr << flag << " " << sources << ": the checkpoint is selected on the training "
                << "languages (" << keep_list << "); left out " << dropped
                << " (the zero-shot targets would leak into model selection; --langs picks "
                   "others)\n";
    }
    sets = std::move(kept);
  }
  data::NliDataset all;
  data::ReadReport skipped;  // what the sets left out, summed (train_config.json)
  for (auto& s : sets) {
    // Per file: the message names the file the row is in, not the joined list.
    check_labels(s, flag, data::LabelSet::nli().size());
    const data::ReadReport& r = s.report;
    if (r.bad_total() > 0 || r.no_gold_label > 0) std::cerr << flag << " " << r.summary() << "\n";
    skipped.records += r.records;
    skipped.no_gold_label += r.no_gold_label;
    for (const auto& [code, n] : r.bad_rows) skipped.bad_rows[code] += n;
    if (all.source.empty()) {
      all = std::move(s);
      continue;
    }
    all.lang += "+" + s.lang;
    all.source += "," + s.source;
    all.examples.insert(all.examples.end(), std::make_move_iterator(s.examples.begin()),
                        std::make_move_iterator(s.examples.end()));
  }
  if (all.examples.empty()) {
    throw DataError(flag + " " + all.source + ": no examples to use");
  }
  skipped.path = all.source;
  skipped.kept = all.size();
  all.report = skipped;
  all.bad_positions.clear();  // the first set's, meaningless in the joined one
  return all;
}

std::string dataset_digest(const data::NliDataset& dataset) {
  // Chunked: a hash of every 4,096 examples, then of those hashes (bounded memory on MultiNLI).
  constexpr size_t kChunk = 4096;
  std::string hashes, chunk;
  for (size_t i = 0; i < dataset.examples.size(); ++i) {
    const auto& ex = dataset.examples[i];
    chunk += ex.premise + '\t' + ex.hypothesis + '\t' + std::to_string(ex.label) + '\n';
    if ((i + 1) % kChunk == 0 || i + 1 == dataset.examples.size()) {
      hashes += io::sha256_hex(chunk);
      chunk.clear();
    }
  }
  return io::sha256_hex(hashes) + ":" + std::to_string(dataset.examples.size());
}

void check_labels(const data::NliDataset& dataset, const std::string& flag, int num_labels) {
  for (const auto& ex : dataset.examples) {
    if (ex.label == data::kNoLabel) {
      throw DataError(flag + " " + dataset.source + ":" + std::to_string(ex.line) +
                      ": example has no gold label (training and model selection need labelled "
                      "data)");
    }
    if (ex.label < 0 || ex.label >= num_labels) {
      throw DataError(flag + " " + dataset.source + ":" + std::to_string(ex.line) + ": label " +
                      std::to_string(ex.label) + " is outside the classification head's range 0.." +
                      std::to_string(num_labels - 1));
    }
  }
}

EncodedSet encode_training_set(const text::Tokenizer& tokenizer, const data::NliDataset& dataset,
                               int64_t max_length, const std::vector<int>& data_to_model,
                               bool progress) {
  // Chunks bound the peak memory of full Encodings (tokens and offsets) before compaction.
  constexpr size_t kChunk = 8192;
  EncodedSet out;
  const size_t n = dataset.examples.size();
  out.encodings.reserve(n);
  Progress bar("tokenize train", static_cast<int64_t>(n), "pairs", progress);
  data::NliDataset chunk;
  chunk.lang = dataset.lang;
  chunk.source = dataset.source;
  for (size_t begin = 0; begin < n; begin += kChunk) {
    const size_t end = std::min(n, begin + kChunk);
    chunk.examples.assign(dataset.examples.begin() + static_cast<std::ptrdiff_t>(begin),
                          dataset.examples.begin() + static_cast<std::ptrdiff_t>(end));
    auto encs = eval::encode_nli_pairs(tokenizer, chunk, max_length);
    for (auto& e : encs) {
      if (e.num_truncated > 0) ++out.truncated;
      text::Encoding c;
      c.ids = std::move(e.ids);
      c.token_type_ids = std::move(e.token_type_ids);
      c.attention_mask = std::move(e.attention_mask);
      c.num_truncated = e.num_truncated;
      out.lengths.push_back(static_cast<int64_t>(c.ids.size()));
      out.tokens += static_cast<int64_t>(c.ids.size());
      out.encodings.push_back(std::move(c));
    }
    bar.advance(static_cast<int64_t>(end - begin));
  }
  bar.finish();
  out.labels.reserve(n);
  for (const auto& ex : dataset.examples) {
    out.labels.push_back(data_to_model.at(static_cast<size_t>(ex.label)));
  }
  return out;
}

std::vector<data::Batch> epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                       uint64_t seed, int64_t epoch, bool group_by_length,
                                       int64_t max_tokens) {
  const uint64_t s =
      data::derive_seed(data::derive_seed(seed, kOrderStream), static_cast<uint64_t>(epoch));
  if (max_tokens > 0) return data::token_budget_batches(lengths, max_tokens, s);
  if (group_by_length) return data::length_grouped_batches(lengths, batch_size, s);
  std::vector<int64_t> order(lengths.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  data::Xoshiro256ss rng(s);
  data::shuffle(order, rng);
  std::vector<data::Batch> batches;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(batch_size)) {
    const size_t e = std::min(order.size(), i + static_cast<size_t>(batch_size));
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                         order.begin() + static_cast<std::ptrdiff_t>(e));
  }
  return batches;
}

}  // namespace xlt::train::detail
