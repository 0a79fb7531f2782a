// The CLI's pipelines as Python functions (xlt.evaluate, finetune, embed, tsne, align,
// perplexity, study, init_model): each maps its arguments onto the same library call the
// matching apps/xlt/cmd_*.cpp makes and returns what that command writes (results.json, ...) as
// Python objects. The GIL is released while they compute; progress goes through ProgressBridge.
#include <ATen/Parallel.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "common.h"
#include "model_handle.h"
#include "xlt/analysis/align_text.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/analysis/parallel_text.h"
#include "xlt/analysis/tokens.h"
#include "xlt/analysis/tsne.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/core/interrupt.h"
#include "xlt/data/spec.h"
#include "xlt/eval/eval_run.h"
#include "xlt/eval/perplexity.h"
#include "xlt/io/hub_cache.h"
#include "xlt/models/init_model.h"
#include "xlt/study/config.h"
#include "xlt/study/study.h"
#include "xlt/train/finetune.h"

namespace xlt::python {
namespace {
namespace fs = std::filesystem;

// A model argument: an xlt.Model already in memory, or a folder / hub id loaded for this call.
struct ModelArg {
  std::shared_ptr<ModelHandle> handle;
  std::unique_ptr<ModelLock> lock;
  std::unique_ptr<text::Tokenizer> tokenizer;

  // Loads (when `obj` is a path) and takes the model's lock; call without the GIL.
  static ModelArg take(std::shared_ptr<ModelHandle> given, const std::string& spec,
                       const models::LoadOptions& lo, const std::string& tokenizer) {
    ModelArg a;
    a.handle = given ? std::move(given) : ModelHandle::load(spec, lo);
    a.lock = std::make_unique<ModelLock>(*a.handle);
    const fs::path& p = a.handle->path;
    const fs::path dir = fs::is_directory(p) ? p : p.parent_path();
    const fs::path tok_path = tokenizer.empty() ? dir : fs::path(tokenizer);
    a.tokenizer = text::load_tokenizer(tok_path);
    models::check_tokenizer_fits(a.tokenizer->vocab_size(), *a.handle->model, tok_path);
    return a;
  }
  models::Model& model() { return *handle->model; }
};

std::shared_ptr<ModelHandle> handle_of(const py::object& model, std::string& spec) {
  if (py::isinstance<ModelHandle>(model)) return model.cast<std::shared_ptr<ModelHandle>>();
  if (py::isinstance<py::str>(model) || py::hasattr(model, "__fspath__")) {
    spec = fspath(model);
    return nullptr;
  }
  throw UsageError("model: expected an xlt.Model, a folder or a hub id");
}

// libtorch's CPU threads for a call: threads < 0 (Python's None) leaves the process's setting
// alone (xlt.set_threads or torch.set_num_threads); else as the CLI's --threads (0 = free cores).
int use_threads(int threads) {
  if (threads >= 0) return models::set_threads(threads);
  models::ensure_fast_blas();
  return at::get_num_threads();
}

py::object evaluate(const py::object& model, const std::vector<std::string>& data,
                    const std::vector<std::string>& langs, const std::string& format,
                    bool skip_bad_rows, int64_t samples, const py::int_& seed, int64_t num_labels,
                    int bootstrap, const std::string& source_lang, int64_t batch_size,
                    int64_t max_length, int64_t max_tokens, bool packing,
                    const std::string& attention, bool sort, const std::string& dtype,
                    const std::string& device, int threads, const std::string& out, bool verbose,
                    bool new_head, const py::object& progress) {
  eval::NliEvalConfig c;
  auto given = handle_of(model, c.model);
  if (given) c.model = given->spec;
  if (given && new_head) {
    throw UsageError(
        "new_head: an xlt.Model is evaluated with the head it was loaded with; give the model's "
        "path (its new head is then seeded by seed, as `xlt eval --new-head`), or load it with "
        "xlt.Model.from_pretrained(path, new_head=True, seed=...)");
  }
  c.new_head = new_head;
  c.data = data;
  c.langs = langs;
  c.format = format;
  c.skip_bad_rows = skip_bad_rows;
  c.samples = samples;
  c.seed = non_negative(seed, "seed");
  c.num_labels = num_labels;
  c.bootstrap = bootstrap;
  c.source_lang = source_lang;
  c.eval.batch_size = batch_size;
  c.eval.max_length = max_length;
  c.eval.max_tokens = max_tokens;
  c.eval.packed = packing;
  c.eval.attention = models::parse_attention(attention);
  c.eval.sort_by_length = sort;
  c.eval.progress = !progress.is_none();
  c.device = device;
  c.dtype = dtype;
  if (given) {
    // results.json records what ran: the in-memory model's own dtype and device, not this
    // call's defaults (a bfloat16 model was recorded as float32).
    c.dtype = models::dtype_name(given->model->dtype());
    c.device = given->model->device().str();
  }
  if (batch_size < 1 || max_length < 1 || max_tokens < 0 || samples < 0 || num_labels < 1) {
    throw UsageError(
        "batch_size, max_length and num_labels must be >= 1, samples and max_tokens >= 0");
  }
  ProgressBridge bridge(progress);
  eval::NliEvalRun run;
  {
    py::gil_scoped_release nogil;
    c.threads = use_threads(threads);
    std::ostream* log = verbose ? &std::cerr : nullptr;
    // A call that fails after this leaves no empty `out` behind, as `xlt eval` does.
    CreatedFolders out_folders(!out.empty() ? prepare_output_folder(out, "out")
                                            : std::vector<fs::path>{});
    if (given) {
      auto datasets = eval::read_eval_datasets(c, log);
      ModelLock lock(*given);
      const fs::path tok_dir =
          fs::is_directory(given->path) ? given->path : given->path.parent_path();
      auto tokenizer = text::load_tokenizer(tok_dir);
      models::check_tokenizer_fits(tokenizer->vocab_size(), *given->model, tok_dir);
      run = eval::evaluate_loaded_model(*given->model, *tokenizer, std::move(datasets), c, log);
      run.model_path = given->path.string();
    } else {
      run = eval::run_nli_eval(c, log);
    }
    if (!out.empty()) eval::write_eval_outputs(run, out);
  }
  return to_python(run.results_json());
}

// One finetune() option by its FinetuneConfig / CLI name (the Python layer checks names);
// py::cast_error for a value of the wrong type.
void set_finetune_option(train::FinetuneConfig& c, const std::string& key, const py::handle& v) {
  if (key == "tokenizer")
    c.tokenizer = fspath(v);
  else if (key == "skip_bad_rows")
    c.skip_bad_rows = v.cast<bool>();
  else if (key == "epochs")
    c.epochs = v.cast<int64_t>();
  else if (key == "lr")
    c.lr = v.cast<double>();
  else if (key == "batch_size")
    c.batch_size = v.cast<int64_t>();
  else if (key == "max_tokens")
    c.max_tokens = v.cast<int64_t>();
  else if (key == "packing")
    c.packed = v.cast<bool>();
  else if (key == "attention")
    c.attention = models::parse_attention(v.cast<std::string>());
  else if (key == "grad_accum")
    c.grad_accum = v.cast<int64_t>();
  else if (key == "max_length")
    c.max_length = v.cast<int64_t>();
  else if (key == "warmup_ratio")
    c.warmup_ratio = v.cast<double>();
  else if (key == "warmup_steps")
    c.warmup_steps = v.cast<int64_t>();
  else if (key == "weight_decay")
    c.weight_decay = v.cast<double>();
  else if (key == "max_grad_norm")
    c.max_grad_norm = v.cast<double>();
  else if (key == "seed")
    c.seed = v.cast<uint64_t>();
  else if (key == "samples")
    c.samples = v.cast<int64_t>();
  else if (key == "max_steps")
    c.max_steps = v.cast<int64_t>();
  else if (key == "eval_every")
    c.eval_every = v.cast<int64_t>();
  else if (key == "eval_batch_size")
    c.eval_batch_size = v.cast<int64_t>();
  else if (key == "log_every")
    c.log_every = v.cast<int64_t>();
  else if (key == "save_every")
    c.save_every = v.cast<int64_t>();
  else if (key == "stop_after")
    c.stop_after = v.cast<int64_t>();
  else if (key == "group_by_length")
    c.group_by_length = v.cast<bool>();
  else if (key == "new_head")
    c.new_head = v.cast<bool>();
  else if (key == "resume")
    c.resume = v.cast<bool>();
  else if (key == "overwrite")
    c.overwrite = v.cast<bool>();
  else if (key == "bf16")
    c.bf16 = v.cast<bool>();
  else if (key == "profile")
    c.profile.dir = fspath(v);
  else if (key == "profile_skip")
    c.profile.skip = v.cast<int64_t>();
  else if (key == "profile_steps")
    c.profile.steps = v.cast<int64_t>();
  else
    throw UsageError("finetune: unknown option '" + key + "'");
}

bool is_bool_option(const std::string& key) {
  for (const char* k :
       {"skip_bad_rows", "packing", "group_by_length", "new_head", "resume", "overwrite", "bf16"}) {
    if (key == k) return true;
  }
  return false;
}

py::object finetune(const std::string& model, const std::vector<std::string>& train,
                    const std::string& out, const std::vector<std::string>& dev,
                    const std::vector<std::string>& langs, const std::string& format,
                    py::dict options, const std::string& device, int threads,
                    const py::object& progress) {
  train::FinetuneConfig c;
  c.model = model;
  c.train_specs = train;
  c.dev_specs = dev;
  c.out_dir = out;
  c.device = device;
  c.format = data::parse_nli_format(format);
  c.langs = langs.empty() ? std::vector<std::string>{} : data::parse_lang_list(langs);
  c.progress = !progress.is_none();
  // The remaining options by their FinetuneConfig / CLI names (the Python layer checks names).
  for (const auto& [k, v] : options) {
    const std::string key = py::str(k);
    try {
      set_finetune_option(c, key, v);
    } catch (const py::cast_error&) {
      // pybind's own message names neither the option nor the value.
      const std::string what =
          key == "tokenizer" || key == "profile" ? "a str or path"
          : key == "attention"                   ? "a str"
          : key == "lr" || key == "warmup_ratio" || key == "weight_decay" || key == "max_grad_norm"
              ? "a number"
          : key == "seed"       ? "a non-negative int"
          : is_bool_option(key) ? "True or False"
                                : "an int";
      throw UsageError("finetune: " + key + " must be " + what + ", got " +
                       std::string(py::str(py::repr(v))));
    }
  }
  ProgressBridge bridge(progress);
  train::FinetuneResult r;
  {
    py::gil_scoped_release nogil;
    use_threads(threads);
    // finetune's InterruptScope takes SIGINT while it runs: Ctrl-C saves a resumable state.
    r = train::finetune(c);
  }
  if (r.interrupted_by != 0) {
    const std::string msg =
        std::string("stopped by ") + interrupt_signal_name(r.interrupted_by) + " at step " +
        std::to_string(r.steps) + "/" + std::to_string(r.total_steps) + "; state saved in " +
        (c.out_dir / "state").string() + ". To continue, call finetune again with resume=True";
    PyErr_SetString(PyExc_KeyboardInterrupt, msg.c_str());
    throw py::error_already_set();
  }
  nlohmann::json j = nlohmann::json::parse(read_file(c.out_dir / "results.json"));
  j["run"] = {{"steps", r.steps},
              {"total_steps", r.total_steps},
              {"stopped", r.stopped},
              {"best_step", r.best_step},
              {"train_tokens", r.train_tokens},
              {"train_seconds", r.train_seconds},
              {"out", c.out_dir.string()}};
  return to_python(j);
}

analysis::EmbeddingOptions embedding_options(const std::string& layers, int num_layers,
                                             const std::string& pooling, const std::string& special,
                                             int64_t batch_size, int64_t max_length,
                                             bool progress) {
  if (batch_size < 1 || max_length < 1) {
    throw UsageError("batch_size and max_length must be >= 1");
  }
  analysis::EmbeddingOptions eo;
  eo.layers = analysis::parse_layers(layers, num_layers, 0);
  eo.pooling = analysis::parse_pooling(pooling);
  eo.special = analysis::parse_special_policy(special);
  eo.batch_size = batch_size;
  eo.max_length = max_length;
  eo.progress = progress;
  return eo;
}

models::LoadOptions load_options(const std::string& device, const std::string& dtype) {
  models::LoadOptions lo;
  lo.device = models::parse_device(device);
  lo.dtype = models::parse_dtype(dtype);
  return lo;
}

py::object embed(const py::object& model, const std::vector<std::string>& inputs,
                 const std::vector<std::string>& sentences, const std::string& layers,
                 const std::string& pooling, const std::string& special, int64_t batch_size,
                 int64_t max_length, const std::string& tokenizer, const std::string& dtype,
                 const std::string& device, int threads, const py::object& progress) {
  if (!inputs.empty() && !sentences.empty()) {
    throw UsageError("embed: give either inputs (LANG=FILE specs) or sentences, not both");
  }
  if (inputs.empty() && sentences.empty()) {
    throw UsageError(
        "embed: nothing to embed: give inputs (LANG=FILE specs) or a non-empty list "
        "of sentences");
  }
  std::string spec;
  auto given = handle_of(model, spec);
  ProgressBridge bridge(progress);
  analysis::SentenceList list;
  analysis::SentenceEmbeddings emb;
  {
    py::gil_scoped_release nogil;
    use_threads(threads);
    if (!inputs.empty()) {
      list = analysis::read_sentence_inputs(inputs);
    } else {
      for (const auto& s : sentences) list.records.push_back({s, "", "", 0, {}});
    }
    auto m = ModelArg::take(given, spec, load_options(device, dtype), tokenizer);
    const auto eo =
        embedding_options(layers, static_cast<int>(m.model().config().num_hidden_layers), pooling,
                          special, batch_size, max_length, !progress.is_none());
    std::vector<std::string> texts;
    for (const auto& r : list.records) texts.push_back(r.sentence);
    emb = analysis::sentence_embeddings(m.model(), *m.tokenizer, texts, eo);
  }
  py::dict out;
  py::list matrices;
  for (const auto& mat : emb.matrices) {
    py::array_t<float> a({mat.rows, mat.cols});
    std::memcpy(a.mutable_data(), mat.data.data(), mat.data.size() * sizeof(float));
    matrices.append(a);
  }
  out["layers"] = emb.layers;
  out["embeddings"] = matrices;
  out["num_tokens"] = emb.num_tokens;
  py::list langs, texts;
  for (const auto& r : list.records) {
    langs.append(r.lang);
    texts.append(r.sentence);
  }
  out["langs"] = langs;
  out["sentences"] = texts;
  return out;
}

py::object tsne(py::array_t<float, py::array::c_style | py::array::forcecast> x, double perplexity,
                int iterations, const std::string& init, const py::int_& seed,
                const std::string& method, double theta, int threads, const py::object& progress) {
  if (x.ndim() != 2) throw UsageError("tsne: expected a matrix [n, dim]");
  analysis::TsneOptions o;
  o.perplexity = perplexity;
  o.max_iter = iterations;
  o.init = analysis::parse_tsne_init(init);
  o.seed = non_negative(seed, "seed");
  o.method = analysis::parse_tsne_method(method);
  o.theta = theta;
  o.threads =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ProgressBridge bridge(progress);
  // t-SNE reports iterations through its own callback; a Progress makes them observable.
  analysis::TsneResult r;
  {
    py::gil_scoped_release nogil;
    Progress bar("t-SNE", iterations, "it", !progress.is_none());
    o.on_progress = [&bar](int it, int) { bar.set(it); };
    r = analysis::tsne(analysis::MatrixView{x.data(), x.shape(0), x.shape(1)}, o);
    bar.set(r.iterations);
    bar.finish();
  }
  py::array_t<double> emb({static_cast<py::ssize_t>(r.n), py::ssize_t{2}});
  std::memcpy(emb.mutable_data(), r.embedding.data(), r.embedding.size() * sizeof(double));
  py::dict d;
  d["embedding"] = emb;
  d["iterations"] = r.iterations;
  d["kl_divergence"] = r.kl_divergence;
  d["method"] = analysis::to_string(r.method);
  d["perplexity"] = r.perplexity;
  d["learning_rate"] = r.learning_rate;
  d["warnings"] = r.warnings;
  return d;
}

py::object align(const py::object& model, const std::vector<std::string>& inputs,
                 const std::vector<std::string>& langs, const std::string& layers,
                 const std::string& pooling, const std::string& special, int64_t batch_size,
                 int64_t max_length, int64_t max_sentences, const std::string& tokenizer,
                 const std::string& dtype, const std::string& device, int threads,
                 const py::object& progress) {
  std::string spec;
  auto given = handle_of(model, spec);
  ProgressBridge bridge(progress);
  std::vector<analysis::AlignmentRow> rows;
  {
    py::gil_scoped_release nogil;
    const int n = use_threads(threads);
    analysis::ParallelReadOptions ro;
    ro.langs = langs.empty() ? std::vector<std::string>{} : data::parse_lang_list(langs, "langs");
    ro.max_rows = max_sentences;
    const auto par = analysis::read_parallel_inputs(inputs, ro);
    if (par.rows() < 2) {
      throw DataError("parallel input: " + std::to_string(par.rows()) +
                      " rows; alignment metrics need at least 2 parallel sentences");
    }
    auto m = ModelArg::take(given, spec, load_options(device, dtype), tokenizer);
    const auto eo =
        embedding_options(layers, static_cast<int>(m.model().config().num_hidden_layers), pooling,
                          special, batch_size, max_length, !progress.is_none());
    rows = analysis::align_parallel_text(m.model(), *m.tokenizer, par, eo, n);
  }
  py::list out;
  for (const auto& r : rows) {
    py::dict d;
    d["layer"] = r.layer;
    d["lang_a"] = r.lang_a;
    d["lang_b"] = r.lang_b;
    d["retrieval_a2b"] = r.metrics.retrieval_a2b;
    d["retrieval_b2a"] = r.metrics.retrieval_b2a;
    d["cos_pairs"] = r.metrics.cos_pairs;
    d["cos_random"] = r.metrics.cos_random;
    d["centered_retrieval_a2b"] = r.metrics.centered_retrieval_a2b;
    d["centered_retrieval_b2a"] = r.metrics.centered_retrieval_b2a;
    out.append(d);
  }
  return out;
}

py::object perplexity(const py::object& model, const std::vector<std::string>& langs,
                      const std::vector<py::object>& texts, int64_t max_length, int64_t stride,
                      int64_t batch_size, const std::string& join, const std::string& dtype,
                      const std::string& device, int threads, const py::object& progress) {
  // texts[i]: a file path (str) or the lines themselves (a list of str), for langs[i].
  std::vector<std::pair<std::string, std::vector<std::string>>> given_lines;
  std::vector<std::string> paths;
  for (size_t i = 0; i < texts.size(); ++i) {
    const py::object& t = texts[i];
    if (py::isinstance<py::str>(t) || py::hasattr(t, "__fspath__")) {
      paths.push_back(fspath(t));
      given_lines.emplace_back();
      continue;
    }
    paths.emplace_back();
    try {
      given_lines.emplace_back("", t.cast<std::vector<std::string>>());
    } catch (const py::cast_error&) {
      throw UsageError("texts[" + (i < langs.size() ? langs[i] : std::to_string(i)) +
                       "]: expected a path or a list of str, got " +
                       std::string(py::str(py::repr(t))));
    }
  }
  eval::PerplexityOptions po;
  po.max_length = max_length;
  po.stride = stride;
  po.batch_size = batch_size;
  po.join = eval::parse_join_mode(join);
  po.progress = !progress.is_none();
  std::string spec;
  auto given = handle_of(model, spec);
  ProgressBridge bridge(progress);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  {
    py::gil_scoped_release nogil;
    use_threads(threads);
    // Files are read (UTF-8 checked) before the model loads: a bad last file fails at once.
    std::vector<std::vector<std::string>> read(langs.size());
    for (size_t i = 0; i < langs.size(); ++i) {
      if (!paths[i].empty()) read[i] = eval::read_text_lines(paths[i]);
    }
    auto m = ModelArg::take(given, spec, load_options(device, dtype), "");
    for (size_t i = 0; i < langs.size(); ++i) {
      po.progress_label = "perplexity " + langs[i];
      const auto& lines = paths[i].empty() ? given_lines[i].second : read[i];
      auto r = eval::text_perplexity(m.model(), *m.tokenizer, lines, po);
      r.lang = langs[i];
      r.source = paths[i].empty() ? "<list>" : paths[i];
      out[langs[i]] = r.to_json();
    }
  }
  return to_python(out);
}

py::object run_study(const std::string& config_path, const std::string& out,
                     const std::vector<std::string>& stages, bool overwrite, int threads,
                     const std::string& device, const py::object& progress) {
  ProgressBridge bridge(progress);
  study::StudyOutcome r;
  {
    py::gil_scoped_release nogil;
    const study::StudyConfig config = study::load_study_config(config_path);
    study::RunOptions ro;
    ro.out = out;
    ro.stages = stages;
    ro.overwrite = overwrite;
    ro.progress = !progress.is_none();
    ro.threads = threads;
    ro.device = device;
    r = study::run_study(config, ro);
  }
  if (!r.stopped_unit.empty()) {
    const std::string sig =
        interrupt_signal_name(r.interrupted_by != 0 ? r.interrupted_by : SIGINT);
    const std::string msg =
        r.stopped_unit_complete
            ? "stopped by " + sig + " after " + r.stopped_unit +
                  " (complete). To continue, call study again with the same arguments"
            : "stopped by " + sig + " in " + r.stopped_unit + " at step " +
                  std::to_string(r.stopped_at_step) + "/" + std::to_string(r.stopped_total_steps) +
                  "; its state is saved in " + (r.out / r.stopped_unit / "run" / "state").string() +
                  ". To continue, call study again with the same arguments";
    PyErr_SetString(PyExc_KeyboardInterrupt, msg.c_str());
    throw py::error_already_set();
  }
  return to_python(r.results);
}

}  // namespace

void bind_pipelines(py::module_& m) {
  using py::arg;
  m.def("evaluate", &evaluate, arg("model"), arg("data"), arg("langs"), arg("format"),
        arg("skip_bad_rows"), arg("samples"), arg("seed"), arg("num_labels"), arg("bootstrap"),
        arg("source_lang"), arg("batch_size"), arg("max_length"), arg("max_tokens"), arg("packing"),
        arg("attention"), arg("sort"), arg("dtype"), arg("device"), arg("threads"), arg("out"),
        arg("verbose"), arg("new_head"), arg("progress"));
  m.def("finetune", &finetune, arg("model"), arg("train"), arg("out"), arg("dev"), arg("langs"),
        arg("format"), arg("options"), arg("device"), arg("threads"), arg("progress"));
  m.def("embed", &embed, arg("model"), arg("inputs"), arg("sentences"), arg("layers"),
        arg("pooling"), arg("special"), arg("batch_size"), arg("max_length"), arg("tokenizer"),
        arg("dtype"), arg("device"), arg("threads"), arg("progress"));
  m.def("tsne", &tsne, arg("x"), arg("perplexity"), arg("iterations"), arg("init"), arg("seed"),
        arg("method"), arg("theta"), arg("threads"), arg("progress"));
  m.def("align", &align, arg("model"), arg("inputs"), arg("langs"), arg("layers"), arg("pooling"),
        arg("special"), arg("batch_size"), arg("max_length"), arg("max_sentences"),
        arg("tokenizer"), arg("dtype"), arg("device"), arg("threads"), arg("progress"));
  m.def("perplexity", &perplexity, arg("model"), arg("langs"), arg("texts"), arg("max_length"),
        arg("stride"), arg("batch_size"), arg("join"), arg("dtype"), arg("device"), arg("threads"),
        arg("progress"));
  m.def("study", &run_study, arg("config_path"), arg("out"), arg("stages"), arg("overwrite"),
        arg("threads"), arg("device"), arg("progress"));
  m.def(
      "init_model",
      [](const std::string& arch, const std::string& config, const std::string& out,
         const py::int_& seed, int64_t num_labels) {
        models::InitModelOptions o{arch, config, out, non_negative(seed, "seed"), num_labels};
        py::gil_scoped_release nogil;
        return models::init_model(o);
      },
      arg("arch"), arg("config"), arg("out"), arg("seed"), arg("num_labels"));
}

}  // namespace xlt::python
