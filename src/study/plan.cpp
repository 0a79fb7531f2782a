// Building a study's plan: resolving its models (hub download or the random-init unit), checking
// layer indices against the models' configs, and listing every unit with the inputs that decide
// whether it is up to date. Also the shared model/data loaders the stages use.
#include <algorithm>

#include "study/internal.h"
#include "xlt/analysis/parallel_text.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/spec.h"
#include "xlt/io/dataset_download.h"
#include "xlt/io/hub.h"
#include "xlt/models/model.h"
#include "xlt/report/study_report.h"
#include "xlt/study/distance.h"
#include "xlt/text/tokenizer.h"
#include "xlt/version.h"

namespace xlt::study::detail {

std::string seed_unit(const std::string& stage, uint64_t seed) {
  return stage + "/seed-" + std::to_string(seed);
}

fs::path finetuned_model_dir(const fs::path& out, uint64_t seed) {
  return out / seed_unit("finetune", seed) / "run" / "best";
}

std::optional<json> read_stage_record(const fs::path& unit_dir) {
  const fs::path p = unit_dir / "stage.json";
  if (!fs::exists(p)) return std::nullopt;
  try {
    json j = json::parse(read_file(p));
    if (j.is_object() && j.contains("fingerprint")) return j;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

const Unit& Context::unit(const std::string& name) const {
  for (const auto& u : units) {
    if (u.name == name) return u;
  }
  throw Error("study: no unit " + name);
}

const std::vector<data::NliDataset>& Context::eval_sets() {
  if (eval_sets_) return *eval_sets_;
  const auto& e = config.eval;
  data::ReadOptions ro;
  ro.format = data::parse_nli_format(e.format);
  std::vector<data::NliDataset> sets;
  if (!e.files.empty()) {
    for (const auto& lang : config.languages) {
      sets.push_back(data::read_nli_file(e.files.at(lang), lang, ro));
    }
  } else {
    std::string path = e.data;
    if (io::is_dataset_spec(e.data)) {
      const auto files = io::resolve_dataset_spec(e.data);
      path = files.files.at(0).string();
      ro.format = data::parse_nli_format(files.format);
    }
    sets = data::read_nli_by_language(path, config.languages, ro);
  }
  for (auto& s : sets) {
    if (!s.fully_labelled()) {
      throw DataError(s.source + ": evaluation data for '" + s.lang + "' has unlabelled rows");
    }
  }
  data::subsample(sets, e.samples, e.sample_seed, data::parse_sampling(e.sampling));
  for (const auto& s : sets) {
    if (log)
      *log << "eval data " << s.lang << ": " << s.size() << " examples (" << s.source << ")\n";
  }
  eval_sets_ = std::move(sets);
  return *eval_sets_;
}

ResolvedModel resolve_model(const StudyConfig& config, const ModelSpec& spec,
                            const std::string& role, const fs::path& out, bool dry_run,
                            const std::string& prefix) {
  ResolvedModel m;
  m.role = role;
  m.name = spec.model;
  if (spec.randomly_initialized()) {
    m.random = true;
    m.init_unit = prefix + "init/" + role;
    m.dir = out / m.init_unit / "model";
    m.tokenizer = spec.tokenizer;
    m.config = io::ModelConfig::load(spec.init);
    m.tokenizer_identity = tokenizer_digest(spec.tokenizer);
    return m;  // identity: the init unit's fingerprint, filled in by build_units
  }
  if (spec.model_is_path) {
    m.dir = spec.model;
  } else if (dry_run) {
    try {
      m.dir = io::resolve_model_location(spec.model).path;
    } catch (const IoError&) {
      m.available = false;  // would be downloaded by a real run
    }
  } else {
    m.dir = io::resolve_or_download(spec.model).path;
  }
  m.tokenizer = spec.tokenizer.empty() ? m.dir : spec.tokenizer;
  if (m.available) {
    m.config = io::ModelConfig::load(m.dir);
    m.identity = tree_digest(m.dir);
    m.tokenizer_identity = tokenizer_digest(m.tokenizer);
  } else {
    m.identity = {{"hub", spec.model}, {"cached", false}};
    m.tokenizer_identity = m.identity;
  }
  (void)config;
  return m;
}

void check_model_settings(const StudyConfig& c, const ResolvedModel& encoder,
                          const ResolvedModel& causal_lm, const std::string& key) {
  const auto where = [&c](const std::string& key) { return c.where(key); };
  if (encoder.available && encoder.config.model_type == io::ModelType::kXglm) {
    throw ConfigError(where(key + ".model") + ": " + encoder.name +
                      " is a causal LM (xglm); the encoder must be bert or xlm-roberta");
  }
  if (c.stage_enabled("analysis") && encoder.available &&
      c.analysis.layer > encoder.config.num_hidden_layers) {
    throw ConfigError(where("analysis.layer") + " = " + std::to_string(c.analysis.layer) +
                      ", but " + encoder.name + " has " +
                      std::to_string(encoder.config.num_hidden_layers) +
                      " layers (0 = embeddings, -1 = last)");
  }
  const bool causal_needed =
      c.causal_lm.enabled && (c.stage_enabled("perplexity") ||
                              (c.stage_enabled("attention") && c.attention.model == "causal_lm"));
  if (causal_needed && causal_lm.available && causal_lm.config.model_type != io::ModelType::kXglm) {
    throw ConfigError(where("causal_lm.model") + ": " + causal_lm.name + " is " +
                      io::model_type_name(causal_lm.config.model_type) +
                      ", not a causal LM (xglm)");
  }
  // attention.model = "encoder" is the first encoder; other encoders are not checked for it.
  if (c.stage_enabled("attention") && (c.attention.model == "causal_lm" || key == "encoder" ||
                                       key == "encoders." + c.encoders.front().name)) {
    const ResolvedModel& m = c.attention.model == "causal_lm" ? causal_lm : encoder;
    if (m.available && c.attention.layer > m.config.num_hidden_layers) {
      throw ConfigError(where("attention.layer") + " = " + std::to_string(c.attention.layer) +
                        ", but " + m.name + " has " + std::to_string(m.config.num_hidden_layers) +
                        " layers (1-based)");
    }
  }
}

void check_tokenizer_fits(const StudyConfig& c, const ResolvedModel& m, const std::string& key) {
  if (!m.available) return;
  const auto tok = load_study_tokenizer(m.tokenizer);
  if (static_cast<int64_t>(tok->vocab_size()) <= m.config.vocab_size) return;
  const std::string counts = " has " + std::to_string(tok->vocab_size()) + " tokens but " + m.name +
                             " has vocab_size " + std::to_string(m.config.vocab_size);
  if (m.tokenizer == m.dir) {  // the model folder's own tokenizer: the folder is inconsistent
    throw ConfigError(c.where(key + ".model") + ": the tokenizer in " + m.dir.string() + counts +
                      " (config.json): the folder mixes files of different models (download "
                      "it again, or set " +
                      key + ".tokenizer)");
  }
  throw ConfigError(c.where(key + ".tokenizer") + ": " + m.tokenizer.string() + counts +
                    ": it is not this model's tokenizer (set " + key +
                    ".tokenizer to the model's own)");
}

namespace {

json eval_inputs(const StudyConfig& c) {
  json data;
  if (!c.eval.files.empty()) {
    // A file no selected stage needs may be missing (config.cpp): it is recorded so.
    for (const auto& [lang, path] : c.eval.files)
      data[lang] = fs::exists(path) ? data_digest(path) : json("missing");
  } else {
    data = data_digest(c.eval.data);
  }
  json in = {{"data", data},
             {"format", c.eval.format},
             {"samples", c.eval.samples},
             {"sample_seed", c.eval.sample_seed},
             {"max_length", c.eval.max_length},
             {"languages", c.languages},
             {"source_lang", c.source_lang},
             {"bootstrap_resamples", c.eval.bootstrap_resamples}};
  // Only when not the default, so that earlier runs' fingerprints stay valid.
  if (c.eval.sampling != "xlt") in["sampling"] = c.eval.sampling;
  return in;
}

json model_identity(const ResolvedModel& m) {
  return {{"model", m.identity}, {"tokenizer", m.tokenizer_identity}};
}

}  // namespace

std::string encoder_prefix(const StudyConfig& c, size_t index) {
  return c.multi_encoder() ? "encoders/" + c.encoders.at(index).name + "/" : std::string();
}

bool analysis_uses_eval_rows(const StudyConfig& c) {
  if (!c.analysis.parallel_file.empty()) return false;
  if (!c.eval.files.empty()) {
    for (const auto& [lang, path] : c.eval.files) {
      if (!fs::exists(path)) return false;
    }
    return true;
  }
  if (c.eval.data.empty()) return false;
  if (!io::is_dataset_spec(c.eval.data)) return fs::exists(c.eval.data);
  try {
    io::resolve_dataset_spec(c.eval.data);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::vector<Unit> build_units(const StudyConfig& c, const std::vector<ResolvedModel>& encoders,
                              const ResolvedModel& causal_in, const fs::path& out) {
  ResolvedModel causal = causal_in;
  std::vector<Unit> units;
  auto add = [&](Unit u) {
    u.inputs["xlt_version"] = XLT_VERSION;
    u.fingerprint = fingerprint_of(u.inputs);
    u.dir = out / u.name;
    units.push_back(std::move(u));
    return units.back().fingerprint;
  };
  const bool need_causal =
      c.causal_lm.enabled && (c.stage_enabled("perplexity") ||
                              (c.stage_enabled("attention") && c.attention.model == "causal_lm"));
  auto add_init = [&](ResolvedModel& m, const ModelSpec& spec, const std::string& name,
                      int encoder_index) {
    Unit u;
    u.name = name;
    u.stage = "init";
    u.role = m.role;
    u.encoder = encoder_index;
    u.inputs = {{"config", file_digest(spec.init)["sha256"]},
                {"tokenizer", m.tokenizer_identity},
                {"init_seed", spec.init_seed},
                {"num_labels", encoder_index >= 0 ? kNliLabels : 0}};
    m.identity = {{"init", add(u)}};
  };
  // Per-encoder identities, filled in as their init units are planned.
  std::vector<ResolvedModel> encs = encoders;
  const json ev = eval_inputs(c);
  for (size_t e = 0; e < encs.size(); ++e) {
    ResolvedModel& encoder = encs[e];
    const std::string prefix = encoder_prefix(c, e);
    const int ei = static_cast<int>(e);
    if (encoder.random) add_init(encoder, c.encoders[e].spec, encoder.init_unit, ei);
    // The causal LM's init unit right after the first encoder's (the one-encoder order).
    if (e == 0 && causal.random && need_causal) {
      add_init(causal, c.causal_lm, causal.init_unit, -1);
    }
    const json enc = model_identity(encoder);
    std::vector<std::string> enc_needs;
    if (encoder.random) enc_needs.push_back(encoder.init_unit);

    for (uint64_t seed : c.seeds) {
      if (!c.stage_enabled("baseline")) break;
      Unit u;
      u.name = prefix + seed_unit("baseline", seed);
      u.stage = "baseline";
      u.seed = seed;
      u.encoder = ei;
      u.needs = enc_needs;
      u.inputs = {{"encoder", enc}, {"eval", ev}, {"seed", seed}};
      add(u);
    }
    // Fine-tuning units are listed even when the stage is disabled, so that zero_shot and
    // analysis can reuse an earlier run's models when they are up to date.
    auto train_digest = [&c](const std::string& spec) -> json {
      try {
        return data_digest(spec);
      } catch (const Error&) {
        if (c.stage_enabled("finetune")) throw;
        return spec;  // not available here; such a unit can only be "not selected"
      }
    };
    std::map<uint64_t, std::string> finetune_fp;
    for (uint64_t seed : c.seeds) {
      const auto& t = c.train;
      Unit u;
      u.name = prefix + seed_unit("finetune", seed);
      u.stage = "finetune";
      u.seed = seed;
      u.encoder = ei;
      u.needs = enc_needs;
      u.inputs = {{"encoder", enc},
                  {"train",
                   {{"data", train_digest(t.data)},
                    {"dev", train_digest(t.dev)},
                    {"format", t.format},
                    {"samples", t.samples},
                    {"epochs", t.epochs},
                    {"learning_rate", t.learning_rate},
                    {"batch_size", t.batch_size},
                    {"grad_accum", t.grad_accum},
                    {"max_length", t.max_length},
                    {"warmup_ratio", t.warmup_ratio},
                    {"weight_decay", t.weight_decay},
                    {"max_grad_norm", t.max_grad_norm}}},
                  {"source_lang", c.source_lang},
                  {"seed", seed}};
      if (t.sample_seed) u.inputs["train"]["sample_seed"] = *t.sample_seed;
      if (t.sampling != "xlt") u.inputs["train"]["sampling"] = t.sampling;
      if (t.max_tokens > 0) u.inputs["train"]["max_tokens"] = t.max_tokens;
      // Only when on, so that the fingerprints of float32 runs stay those of earlier versions.
      if (t.bf16) u.inputs["train"]["bf16"] = true;
      finetune_fp[seed] = add(u);
    }
    for (uint64_t seed : c.seeds) {
      if (!c.stage_enabled("zero_shot")) break;
      Unit u;
      u.name = prefix + seed_unit("zero_shot", seed);
      u.stage = "zero_shot";
      u.seed = seed;
      u.encoder = ei;
      u.needs = {prefix + seed_unit("finetune", seed)};
      u.inputs = {{"finetune", finetune_fp[seed]},
                  {"tokenizer", encoder.tokenizer_identity},
                  {"eval", ev},
                  {"seed", seed}};
      add(u);
    }
    if (c.stage_enabled("analysis")) {
      const auto& a = c.analysis;
      Unit u;
      u.name = prefix + "analysis";
      u.stage = "analysis";
      u.seed = c.seeds.front();
      u.encoder = ei;
      u.needs = enc_needs;
      json after = nullptr;
      // The map after fine-tuning needs the first seed's model: planned now, or from a complete
      // earlier run with the same inputs.
      const auto rec = read_stage_record(out / (prefix + seed_unit("finetune", u.seed)));
      if (c.stage_enabled("finetune") || (rec && (*rec)["fingerprint"] == finetune_fp[u.seed])) {
        after = finetune_fp[u.seed];
        u.needs.push_back(prefix + seed_unit("finetune", u.seed));
      }
      json sentences = json::object();
      for (const auto& lang : c.languages) {
        if (a.sentences.count(lang)) sentences[lang] = a.sentences.at(lang);
      }
      json parallel = nullptr;
      int64_t blank_rows = 0;
      if (!a.parallel_file.empty()) {
        parallel = file_digest(a.parallel_file)["sha256"];
        // Rows blank in a study language are left out (xlt before December 2026 embedded them
        // as special tokens): only a file that has some gets other results, and a new key.
        try {
          analysis::ParallelReadOptions ro;
          ro.langs = c.languages;
          ro.ignore_missing = true;
          ro.max_rows = a.max_parallel;
          blank_rows = analysis::read_parallel_tsv(a.parallel_file, ro).blank_rows;
        } catch (const Error&) {
          // Reported with the study's wording when the analysis inputs are checked.
        }
      } else if (analysis_uses_eval_rows(c)) {
        parallel = {{"eval_rows", ev}};
      }
      u.inputs = {{"encoder", enc},
                  {"finetune", after},
                  {"sentences", sentences},
                  {"parallel", parallel},
                  {"max_parallel", a.max_parallel},
                  {"pooling", a.pooling},
                  {"layer", a.layer},
                  {"languages", c.languages},
                  {"tsne",
                   {{"perplexity", a.tsne_perplexity},
                    {"iterations", a.tsne_iterations},
                    {"seed", a.tsne_seed ? *a.tsne_seed : u.seed},
                    // only perplexity >= n is lowered (scikit-learn's bound), no longer 3 *
                    // perplexity > n - 1
                    {"perplexity_rule", "sklearn"}}}};
      // Sentences are truncated to eval.max_length before embedding. Only when not the
      // default, so that earlier runs' fingerprints stay valid.
      if (c.eval.max_length != EvalSettings{}.max_length)
        u.inputs["max_length"] = c.eval.max_length;
      if (blank_rows > 0) u.inputs["parallel_blank_rows_left_out"] = blank_rows;
      add(u);
    }
  }
  const ResolvedModel& encoder = encs.front();
  const ResolvedModel& att_model = c.attention.model == "causal_lm" ? causal : encoder;
  if (c.stage_enabled("attention")) {
    Unit u;
    u.name = "attention";
    u.stage = "attention";
    if (att_model.random) u.needs.push_back(att_model.init_unit);
    if (c.attention.model != "causal_lm") u.encoder = 0;  // the first encoder
    u.inputs = {{"model", model_identity(att_model)},
                {"role", att_model.role},
                {"sentences", c.attention.sentences},
                {"languages", c.attention.languages},
                {"layer", c.attention.layer}};
    add(u);
  }
  if (c.stage_enabled("perplexity")) {
    const auto& p = c.perplexity;
    Unit u;
    u.name = "perplexity";
    u.stage = "perplexity";
    if (causal.random) u.needs.push_back(causal.init_unit);
    // Every text the unit scores, those of languages outside study.languages too.
    json texts = json::object();
    for (const auto& [lang, file] : p.texts) texts[lang] = file_digest(file)["sha256"];
    u.inputs = {{"model", model_identity(causal)},
                {"texts", texts},
                {"eval", p.texts.empty() ? ev : json(nullptr)},
                {"languages", c.languages},
                {"max_lines", p.max_lines},
                {"max_length", p.max_length},
                {"stride", p.stride}};
    add(u);
  }
  if (c.stage_enabled("report")) {
    Unit u;
    u.name = "report";
    u.stage = "report";
    json upstream = json::object();
    for (const auto& other : units) {
      if (other.stage == "init") continue;
      // Planned fingerprints; the runner replaces those of units that will neither run now nor
      // are up to date by what is on disk (a recorded fingerprint or "missing").
      upstream[other.name] = other.fingerprint;
    }
    const std::string table = c.distance.file.empty()
                                  ? sha256_hex(builtin_distance_tsv())
                                  : file_digest(c.distance.file)["sha256"].get<std::string>();
    u.inputs = {{"units", upstream},
                {"title", c.title},
                {"languages", c.languages},
                {"seeds", c.seeds},
                {"distance", {{"measure", c.distance.measure}, {"table", table}}},
                {"schema_version", report::kResultsSchemaVersion},
                // tables/*.csv hold numbers, not display text (December 2026): rebuilt once.
                {"tables", "numbers"},
                {"encoder", encoder.name},
                {"causal_lm", c.causal_lm.enabled ? json(causal.name) : json(nullptr)}};
    if (c.multi_encoder()) {
      json names = json::object();
      for (size_t e = 0; e < encs.size(); ++e) names[c.encoders[e].name] = encs[e].name;
      u.inputs["encoders"] = names;
    }
    add(u);
  }
  return units;
}

std::unique_ptr<text::Tokenizer> load_study_tokenizer(const fs::path& path) {
  return text::load_tokenizer(path);
}

std::unique_ptr<models::Model> load_classifier(Context& ctx, const fs::path& dir, uint64_t seed,
                                               bool new_head) {
  models::LoadOptions lo;
  lo.num_labels = kNliLabels;
  lo.new_head = new_head;
  lo.seed = seed;
  lo.device = models::parse_device(ctx.device);
  auto model = models::load_model(dir, lo);
  if (ctx.log) *ctx.log << model->load_report().summary() << "\n";
  if (model->kind() != models::ModelKind::kSequenceClassification) {
    throw ConfigError(dir.string() + ": not a sequence-classification model");
  }
  return model;
}

void Context::select_encoder(int index) {
  if (index < 0 || encoders.empty()) return;
  encoder = encoders.at(static_cast<size_t>(index));
  prefix = encoder_prefix(config, static_cast<size_t>(index));
}

std::unique_ptr<models::Model> load_causal_lm(Context& ctx) {
  models::LoadOptions lo;
  lo.device = models::parse_device(ctx.device);
  auto model = models::load_model(ctx.causal_lm.dir, lo);
  if (model->kind() != models::ModelKind::kCausalLM) {
    throw ConfigError(ctx.causal_lm.dir.string() + ": not a causal LM");
  }
  return model;
}

json model_info(const models::Model& model, const ResolvedModel& spec) {
  return {{"role", spec.role},
          {"model", spec.name},
          {"path", spec.dir.string()},
          {"type", io::model_type_name(model.type())},
          {"layers", model.config().num_hidden_layers},
          {"parameters", model.num_parameters()},
          {"randomly_initialized", spec.random}};
}

}  // namespace xlt::study::detail
