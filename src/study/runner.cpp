// The study runner: output-folder checks and the lock, the plan (which units run and why), and
// the loop that runs units and records each one's stage.json last, atomically.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <set>

#include "study/internal.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/core/interrupt.h"
#include "xlt/core/lock.h"
#include "xlt/distributed/distributed.h"
#include "xlt/models/model.h"
#include "xlt/study/study.h"
#include "xlt/version.h"

namespace xlt::study {
namespace {

// Test hook: XLT_TEST_SIGNAL_IN_UNIT=UNIT (e.g. baseline/seed-1) sends this process SIGINT as
// that unit starts (XLT_TEST_SIGNAL=TERM: SIGTERM), as a Ctrl-C during it would.
void signal_in_unit_for_tests(const std::string& unit) {
  const char* want = std::getenv("XLT_TEST_SIGNAL_IN_UNIT");
  if (!want || unit != want) return;
  const char* which = std::getenv("XLT_TEST_SIGNAL");
  ::raise(which && std::string(which) == "TERM" ? SIGTERM : SIGINT);
}

using namespace detail;
constexpr const char* kMarker = "study.json";
constexpr const char* kLockFile = ".xlt-study.lock";

// Empty, or holding only what a run creates before study.json: the lock file (taken first) and
// temp files of an interrupted write. A run killed in that window must be able to rerun.
bool only_startup_files(const fs::path& p) {
  if (!fs::is_directory(p)) return false;
  for (const auto& e : fs::directory_iterator(p)) {
    const std::string name = e.path().filename().string();
    if (name != kLockFile && !is_temp_name(name)) return false;
  }
  return true;
}

void check_out_dir(const fs::path& out, const RunOptions& o, const StudyConfig& c) {
  if (!fs::exists(out)) return;
  if (!fs::is_directory(out)) {
    throw UsageError("--out " + out.string() + " exists and is not a folder");
  }
  if (o.overwrite) {
    const fs::path abs = fs::weakly_canonical(out);
    const fs::path cwd = fs::weakly_canonical(fs::current_path());
    const char* home = std::getenv("HOME");
    auto inside = [&abs](const fs::path& p) {
      const auto rel = fs::relative(p, abs);
      return !rel.empty() && *rel.begin() != "..";
    };
    if (abs == abs.root_path() || (home && abs == fs::weakly_canonical(home)) || inside(cwd) ||
        inside(fs::weakly_canonical(c.config_file))) {
      throw UsageError("--overwrite refuses to empty " + out.string() +
                       " (the root, home or working folder, or the folder of the config); "
                       "choose a dedicated --out folder");
    }
    return;
  }
  if (only_startup_files(out) || fs::exists(out / kMarker)) return;
  throw UsageError("--out " + out.string() +
                   " exists and is not an xlt study folder (no study.json): choose another "
                   "folder, or pass --overwrite to empty it and start the study there");
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

struct Prepared {
  std::unique_ptr<Context> ctx;
  std::vector<UnitStatus> plan;
};

bool stage_selected(const StudyConfig& c, const RunOptions& o, const std::string& stage) {
  if (!c.stage_enabled(stage)) return false;
  return o.stages.empty() || std::find(o.stages.begin(), o.stages.end(), stage) != o.stages.end();
}

// A fine-tuning unit's saved partial run of the same inputs, which a rerun resumes.
bool resumable(const Unit& u) {
  const fs::path pending = u.dir / "pending.json";
  if (!fs::exists(pending) || !fs::exists(u.dir / "run" / "state")) return false;
  try {
    return json::parse(read_file(pending)).value("fingerprint", "") == u.fingerprint;
  } catch (const std::exception&) {
    return false;
  }
}

UnitStatus decide(const Unit& u, const StudyConfig& c, const RunOptions& o, bool overwrite) {
  UnitStatus s{u.name, u.stage, "run", "", 0.0};
  const auto rec = read_stage_record(u.dir);
  if (rec && !overwrite && (*rec)["fingerprint"] == u.fingerprint) {
    s.action = "skip";
    s.reason = "up to date";
    s.seconds = rec->value("seconds", 0.0);
    return s;
  }
  if (u.stage != "init" && !stage_selected(c, o, u.stage)) {
    s.action = "not selected";
    s.reason =
        !c.stage_enabled(u.stage) ? "stage not in the config's study.stages" : "not in --stages";
    s.reason += rec ? " (outputs out of date)" : (fs::exists(u.dir) ? " (incomplete)" : "");
    return s;
  }
  if (overwrite) {
    s.reason = "--overwrite";
  } else if (rec && is_legacy_fingerprint((*rec)["fingerprint"])) {
    s.reason = "recorded by an older xlt (FNV-1a file digests, now SHA-256): runs once again";
  } else if (rec) {
    auto keys = changed_keys(rec->value("inputs", json::object()), u.inputs);
    s.reason = "inputs changed: " + (keys.empty() ? std::string("(unknown)") : join(keys));
  } else if (fs::exists(u.dir)) {
    s.reason = u.stage != "finetune" ? "incomplete: an earlier run stopped"
               : resumable(u)
                   ? "incomplete: an earlier run stopped; resumes from its last saved state"
                   : "incomplete: an earlier run stopped with other inputs (or without a saved "
                     "state); starts over";
  } else {
    s.reason = "not run yet";
  }
  return s;
}

Prepared prepare(const StudyConfig& c, const RunOptions& o, bool dry_run) {
  Prepared p;
  const fs::path out = resolve_out_dir(c, o);
  for (const auto& st : o.stages) {
    if (!is_stage_name(st)) {
      throw UsageError("--stages: unknown stage '" + st + "' (stages: " + join(stage_names()) +
                       ")");
    }
  }
  for (const auto& st : o.stages) {
    if (!c.stage_enabled(st)) {
      throw UsageError("--stages: '" + st + "' is not in study.stages of " +
                       c.config_file.string() + " (" + join(c.stages) +
                       "): add it there to run it");
    }
  }
  if (o.overwrite && !o.stages.empty()) {
    // --overwrite empties the folder; --stages would then rerun only some of what it deleted.
    throw UsageError(
        "--overwrite empties the output folder and runs every stage again; with --stages the "
        "other stages' results would be deleted and not rerun. Drop --stages to start over, or "
        "drop --overwrite (out-of-date units of the selected stages rerun anyway)");
  }
  check_out_dir(out, o, c);
  p.ctx = std::make_unique<Context>(c, out);
  Context& ctx = *p.ctx;
  ctx.progress = o.progress;
  ctx.log = o.log ? o.log : &std::cerr;
  ctx.device = o.device.empty() ? c.device : o.device;
  // The spelling is checked before anything else (a bad device used to fail in the first
  // baseline unit, after the folder and the init units were made); whether the device is there,
  // once the plan shows that a unit that uses it runs (below).
  if (!is_device_name(ctx.device)) {
    try {
      models::parse_device(ctx.device);  // throws the usual message for the spelling
    } catch (const UsageError& e) {
      if (!o.device.empty()) throw;
      throw ConfigError(c.config_file.string() + ": study.device = \"" + ctx.device +
                        "\": " + e.what());
    }
  }
  for (size_t e = 0; e < c.encoders.size(); ++e) {
    ctx.encoders.push_back(
        resolve_model(c, c.encoders[e].spec, "encoder", out, dry_run, encoder_prefix(c, e)));
  }
  ctx.encoder = ctx.encoders.front();
  const bool need_causal =
      c.causal_lm.enabled && (c.stage_enabled("perplexity") ||
                              (c.stage_enabled("attention") && c.attention.model == "causal_lm"));
  if (need_causal) ctx.causal_lm = resolve_model(c, c.causal_lm, "causal_lm", out, dry_run);
  ctx.causal_lm.role = "causal_lm";
  if (!need_causal) ctx.causal_lm.available = false;
  for (size_t e = 0; e < c.encoders.size(); ++e) {
    const std::string key = c.multi_encoder() ? "encoders." + c.encoders[e].name : "encoder";
    check_model_settings(c, ctx.encoders[e], ctx.causal_lm, key);
    check_tokenizer_fits(c, ctx.encoders[e], key);
  }
  if (need_causal) check_tokenizer_fits(c, ctx.causal_lm, "causal_lm");
  ctx.units = build_units(c, ctx.encoders, ctx.causal_lm, out);

  const bool overwrite = o.overwrite;
  std::map<std::string, UnitStatus> status;
  for (const auto& u : ctx.units) {
    if (u.stage != "init") status[u.name] = decide(u, c, o, overwrite);
  }
  // Units left as they are although their recorded inputs differ from the config's: the report
  // says so, as their numbers are an earlier configuration's.
  for (const auto& u : ctx.units) {
    const auto it = status.find(u.name);
    if (it != status.end() && it->second.action == "not selected" && read_stage_record(u.dir)) {
      ctx.stale.push_back(u.name);
    }
  }
  // The report's inputs are what will exist after this run.
  for (auto& u : ctx.units) {
    if (u.stage != "report") continue;
    for (auto& [name, fp] : u.inputs["units"].items()) {
      const auto& st = status.at(name);
      if (st.action == "run" || st.action == "skip") continue;
      const auto rec = read_stage_record(out / name);
      // A unit left out of date makes the report out of date too: rebuilt, it says so.
      const bool stale = std::find(ctx.stale.begin(), ctx.stale.end(), name) != ctx.stale.end();
      fp = !rec    ? json("missing")
           : stale ? json{{"out_of_date", (*rec)["fingerprint"]}}
                   : (*rec)["fingerprint"];
    }
    u.fingerprint = fingerprint_of(u.inputs);
    status[u.name] = decide(u, c, o, overwrite);
  }
  // Init units run only when a unit that runs now needs their model and it is not up to date.
  for (const auto& u : ctx.units) {
    if (u.stage != "init") continue;
    UnitStatus s = decide(u, c, o, overwrite);
    bool needed = false;
    for (const auto& d : ctx.units) {
      if (std::find(d.needs.begin(), d.needs.end(), u.name) != d.needs.end() &&
          status.count(d.name) && status[d.name].action == "run") {
        needed = true;
      }
    }
    if (s.action == "run" && !needed) {
      s.action = "not selected";
      s.reason = "no unit that runs now needs this model";
    } else if (s.action == "skip" && needed && !fs::exists(u.dir / "model")) {
      s.action = "run";
      s.reason = "model folder missing";
    }
    status[u.name] = s;
  }
  // Every unit that runs needs its inputs complete and up to date, or running before it.
  for (const auto& u : ctx.units) {
    const auto& s = status[u.name];
    if (s.action != "run") continue;
    for (const auto& need : u.needs) {
      auto it = status.find(need);
      const bool ok =
          it != status.end() && (it->second.action == "run" || it->second.action == "skip");
      if (!ok) {
        throw ConfigError(
            u.name + " needs " + need + ", which is " +
            (it == status.end() ? std::string("not part of the plan")
                                : it->second.action + " (" + it->second.reason + ")") +
            ": add its stage to --stages (or to study.stages), or run the whole study once");
      }
    }
  }
  // bf16 fine-tuning needs a GPU; finished fine-tuning runs do not (later stages may run on the
  // CPU).
  const bool finetune_runs = std::any_of(ctx.units.begin(), ctx.units.end(), [&](const Unit& u) {
    return u.stage == "finetune" && status[u.name].action == "run";
  });
  if (c.train.bf16 && finetune_runs && ctx.device.rfind("cuda", 0) != 0) {
    throw ConfigError(
        (c.config_file.empty() ? std::string("study config") : c.config_file.filename().string()) +
        ": train.bf16 = true is bf16 autocast on a GPU; this study runs on " + ctx.device +
        " (set study.device = \"cuda\" or pass --device cuda, or drop "
        "train.bf16 to fine-tune in float32)");
  }
  // A unit that runs a model now needs the device (a report or an up-to-date study does not).
  const bool device_used = std::any_of(ctx.units.begin(), ctx.units.end(), [&](const Unit& u) {
    return u.stage != "init" && u.stage != "report" && status[u.name].action == "run";
  });
  if (!dry_run && device_used && ctx.device != "cpu") {
    try {
      models::parse_device(ctx.device);
    } catch (const Error& e) {
      const std::string where =
          o.device.empty() ? c.config_file.string() + ": study.device = \"" + ctx.device + "\": "
                           : std::string();
      throw ConfigError(where + e.what() + " (--device cpu runs the study on the CPU)");
    }
  }
  for (const auto& u : ctx.units) p.plan.push_back(status[u.name]);
  return p;
}

// Whether every rank runs the unit (sharded evaluation, data-parallel fine-tuning) or rank 0
// alone (initialisation, analyses, report: small or not worth sharding).
bool all_ranks_run(const std::string& stage) {
  return stage == "baseline" || stage == "zero_shot" || stage == "finetune";
}

json run_one(Context& ctx, const Unit& u, bool& resumed) {
  resumed = false;
  ctx.select_encoder(u.encoder);
  const bool writer = ctx.writer();
  if (u.stage == "finetune") {
    // Keep a partial run of the same inputs (resume); start over for anything else.
    const fs::path pending = u.dir / "pending.json";
    const bool same = resumable(u);
    resumed = same;
    // A complete run whose inputs changed keeps its final state too: only a stopped one (with
    // pending.json) is a "partial run".
    if (writer && !same && fs::exists(pending) && fs::exists(u.dir / "run" / "state")) {
      *ctx.log << u.name << ": discarding the saved partial run: its inputs differ from this run's"
               << " (or were fingerprinted by an xlt before SHA-256 digests); starting over\n";
    }
    ctx.sync("every rank has decided whether to resume " + u.name);
    if (writer) {
      if (same) {
        // A run killed while writing this unit's stage.json left its temp file here.
        remove_temp_files(u.dir);
      } else {
        fs::remove_all(u.dir);
        fs::create_directories(u.dir);
        write_json(pending, {{"fingerprint", u.fingerprint}});
      }
      fs::remove(u.dir / "stage.json");
    }
    ctx.sync("rank 0 has prepared " + u.name);
    // pending.json goes once stage.json is written (run_units): a stop between the two keeps
    // the finished run resumable instead of starting it over.
    return run_finetune(ctx, u, resumed);
  }
  if (writer) {
    fs::remove_all(u.dir);
    fs::create_directories(u.dir);
  }
  if (u.stage == "init") return run_init(ctx, u);
  if (u.stage == "baseline") return run_baseline(ctx, u);
  if (u.stage == "zero_shot") return run_zero_shot(ctx, u);
  if (u.stage == "analysis") return run_analysis(ctx, u);
  if (u.stage == "attention") return run_attention(ctx, u);
  if (u.stage == "perplexity") return run_perplexity(ctx, u);
  if (u.stage == "report") return run_report(ctx, u);
  throw Error("study: unknown stage " + u.stage);
}

// The plan as rank 0 sees it, checked on every rank: ranks that read a different study folder
// (a multi-node job whose --out is not on a shared filesystem) would run different units.
void check_same_plan(const Context& ctx, const std::vector<UnitStatus>& plan) {
  std::string mine;
  for (const auto& s : plan) mine += s.unit + "=" + s.action + "\n";
  const auto all = ctx.group->all_gather_bytes(mine);
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      throw ConfigError("xlt study: rank " + std::to_string(r) +
                        " plans other units than rank 0 for " + ctx.out.string() +
                        ": every rank must see the same study folder (on several machines, put "
                        "--out on a shared filesystem)");
    }
  }
}

void empty_folder(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename() != kLockFile) fs::remove_all(e.path());
  }
}

}  // namespace

namespace detail {

bool Context::writer() const {
  return group == nullptr || group->rank() == 0;
}

int Context::world() const {
  return group ? group->size() : 1;
}

void Context::sync(const std::string& what) const {
  if (group) group->wait_for_all(what);
}

std::string iso_time_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_json(const fs::path& path, const json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace detail

fs::path resolve_out_dir(const StudyConfig& c, const RunOptions& o) {
  // Absolute: results.json records its paths so, and a rerun from another working folder (or
  // with another spelling of --out) names the same folder.
  fs::path out = !o.out.empty()   ? o.out
                 : !c.out.empty() ? c.out
                                  : fs::path("runs") / c.config_file.stem();
  return fs::absolute(out).lexically_normal();
}

std::vector<UnitStatus> plan_study(const StudyConfig& config, const RunOptions& options) {
  Prepared p = prepare(config, options, /*dry_run=*/true);
  // Hub models that a real run would download first.
  std::vector<UnitStatus> plan;
  std::vector<std::pair<std::string, const ResolvedModel*>> models;
  for (size_t e = 0; e < p.ctx->encoders.size(); ++e) {
    models.emplace_back(config.multi_encoder() ? "encoders/" + config.encoders[e].name : "encoder",
                        &p.ctx->encoders[e]);
  }
  models.emplace_back("causal_lm", &p.ctx->causal_lm);
  for (const auto& [name, m] : models) {
    if (!m->available && !m->random && !m->name.empty()) {
      plan.push_back({"download/" + name, "download", "run",
                      m->name + " is not in the Hugging Face cache: downloaded first", 0.0});
    }
  }
  plan.insert(plan.end(), p.plan.begin(), p.plan.end());
  return plan;
}

std::string format_plan(const std::vector<UnitStatus>& plan) {
  std::string out;
  size_t width = 0;
  for (const auto& s : plan) width = std::max(width, s.unit.size());
  for (const auto& s : plan) {
    std::string action = s.action == "not selected" ? "-" : s.action;
    action.resize(6, ' ');
    std::string unit = s.unit;
    unit.resize(width + 2, ' ');
    out += "  " + action + unit + s.reason + "\n";
  }
  return out;
}

StudyOutcome run_study(const StudyConfig& config, const RunOptions& options) {
  distributed::Group* group = nullptr;
  if (!options.dry_run) {
    group = distributed::init(distributed::launch_env_from_process(),
                              {std::chrono::seconds(options.dist_timeout),
                               options.device.empty() ? config.device : options.device});
  }
  const bool writer = group == nullptr || group->rank() == 0;
  // Rank 0 plans first (it may download a hub model into the shared cache); the other ranks
  // plan once the model is there, and only rank 0 speaks.
  static std::ostream quiet(nullptr);
  RunOptions mine = options;
  if (!writer) {
    mine.log = &quiet;
    mine.progress = false;
    group->wait_for_all("rank 0 plans the study");
  }
  Prepared p = prepare(config, mine, options.dry_run);
  if (writer && group) group->wait_for_all("rank 0 plans the study");
  Context& ctx = *p.ctx;
  ctx.group = group;
  ctx.dist_timeout = options.dist_timeout;
  StudyOutcome outcome;
  outcome.out = ctx.out;
  std::ostream& log = *ctx.log;
  if (options.dry_run) {
    outcome.units = p.plan;
    return outcome;
  }
  if (group) {
    check_same_plan(ctx, p.plan);
    for (size_t i = 0; i < ctx.units.size(); ++i) {
      if (ctx.units[i].stage == "finetune" && p.plan[i].action == "run" &&
          config.train.batch_size % group->size() != 0) {
        throw ConfigError(config.config_file.string() + ": train.batch_size " +
                          std::to_string(config.train.batch_size) +
                          " is the global batch and must be a multiple of the number of ranks (" +
                          std::to_string(group->size()) + ") to fine-tune data-parallel");
      }
    }
  }
  // Read the evaluation data now when a unit will need it, so that bad data fail before any work.
  for (size_t i = 0; i < ctx.units.size(); ++i) {
    const std::string& st = ctx.units[i].stage;
    const bool reads_eval = st == "baseline" || st == "zero_shot" ||
                            (st == "perplexity" && config.perplexity.texts.empty());
    if (p.plan[i].action == "run" && reads_eval) {
      ctx.eval_sets();
      break;
    }
  }
  bool analysis_checked = false, perplexity_checked = false;
  for (size_t i = 0; i < ctx.units.size(); ++i) {
    if (p.plan[i].action != "run") continue;
    if (ctx.units[i].stage == "analysis" && !analysis_checked) {
      check_analysis_inputs(ctx);
      analysis_checked = true;
    }
    if (ctx.units[i].stage == "perplexity" && !perplexity_checked) {
      check_perplexity_inputs(ctx);
      perplexity_checked = true;
    }
  }
  // Rank 0 holds the lock and writes every file; the other ranks only compute.
  std::unique_ptr<FolderLock> lock;
  if (writer) {
    fs::create_directories(ctx.out);
    lock = std::make_unique<FolderLock>(ctx.out, kLockFile, "study");
    if (options.overwrite) empty_folder(ctx.out);
    // Temp files of atomic writes a killed run left in the study folder (study.json, config.json,
    // results.json, report.html). Unit folders that rerun are emptied first, but for a resumed
    // fine-tuning unit's (run_one).
    remove_temp_files(ctx.out);
    if (!fs::exists(ctx.out / kMarker)) {
      write_json(ctx.out / kMarker, {{"xlt_study", 1},
                                     {"xlt_version", XLT_VERSION},
                                     {"created", iso_time_now()},
                                     {"config_file", config.config_file.string()}});
    }
    write_json(ctx.out / "config.json", config.to_json());
  }
  ctx.sync("rank 0 prepares the study folder");
  models::set_threads(ctx.threads);
  // Ctrl-C / SIGTERM only sets a flag for the whole run: fine-tuning stops at its next step with
  // a resumable state, any other unit finishes (it is short next to fine-tuning, and a unit
  // killed halfway is redone anyway), and the study stops after it. Without this, a signal in an
  // evaluation or analysis unit ended the process without a word.
  InterruptScope interrupts;
  for (size_t i = 0; i < ctx.units.size(); ++i) {
    const Unit& u = ctx.units[i];
    UnitStatus& s = p.plan[i];
    if (s.action == "skip") {
      log << "skip " << u.name << ": up to date\n";
      ctx.status[u.name] = "skipped";
      // A run killed between a fine-tuning unit's stage.json and removing its pending record.
      if (writer && u.stage == "finetune") {
        std::error_code ec;
        fs::remove(u.dir / "pending.json", ec);
      }
      continue;
    }
    if (s.action != "run") continue;
    log << "run " << u.name << ": " << s.reason << "\n";
    signal_in_unit_for_tests(u.name);
    if (group) {
      group->set_failure_context("study unit " + u.name,
                                 "rerun the same command: finished units are skipped");
    }
    const auto t0 = std::chrono::steady_clock::now();
    bool resumed = false;
    json summary;
    try {
      if (writer || all_ranks_run(u.stage)) summary = run_one(ctx, u, resumed);
    } catch (const UnitInterrupted& stop) {
      // Every rank stopped after the same step (the trainer agrees on it). The unit keeps its
      // pending record and saved state and gets no stage.json: a rerun resumes it.
      s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ctx.status[u.name] = "interrupted";
      log << "stopped " << u.name << " at step " << stop.steps << "/" << stop.total_steps
          << ": state saved; units after it did not run\n";
      outcome.units = p.plan;
      outcome.interrupted_by = stop.signal;
      outcome.stopped_unit = u.name;
      outcome.stopped_at_step = stop.steps;
      outcome.stopped_total_steps = stop.total_steps;
      return outcome;
    }
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ctx.status[u.name] = "ran";
    if (writer) {
      json record = {
          {"unit", u.name},     {"stage", u.stage},           {"fingerprint", u.fingerprint},
          {"inputs", u.inputs}, {"xlt_version", XLT_VERSION}, {"seconds", s.seconds},
          {"resumed", resumed}, {"finished", iso_time_now()}, {"summary", summary}};
      // Written last: the unit counts as complete only from here on.
      write_json(u.dir / "stage.json", record);
      if (u.stage == "finetune") fs::remove(u.dir / "pending.json");
    }
    ctx.sync("rank 0 finishes " + u.name);
    log << "done " << u.name << " in " << std::to_string(s.seconds).substr(0, 6) << " s\n";
    // A signal during a unit (for fine-tuning: during its last step, final evaluation or saves)
    // found it complete; the study stops after it all the same (every rank alike).
    const bool more_to_run =
        std::any_of(p.plan.begin() + static_cast<std::ptrdiff_t>(i) + 1, p.plan.end(),
                    [](const UnitStatus& later) { return later.action == "run"; });
    // After the last unit there is nothing left to stop: the study is complete (exit 0).
    if (const int sig = distributed::agreed_signal(ctx.group, interrupt_signal());
        sig != 0 && more_to_run) {
      log << "stopped after " << u.name << " (complete): units after it did not run\n";
      outcome.units = p.plan;
      outcome.interrupted_by = sig;
      outcome.stopped_unit = u.name;
      outcome.stopped_unit_complete = true;
      return outcome;
    } else if (sig != 0) {
      log << "interrupt received during " << u.name << ", the last unit: the study is complete\n";
    }
  }
  outcome.units = p.plan;
  // Only a report this run made or found up to date: after `--stages finetune` the folder's
  // results.json is an earlier run's and would be printed as if it were this one's.
  const bool report_current = std::any_of(p.plan.begin(), p.plan.end(), [](const UnitStatus& s) {
    return s.stage == "report" && (s.action == "run" || s.action == "skip");
  });
  if (writer && report_current && fs::exists(ctx.out / "results.json") &&
      fs::exists(ctx.out / "report.html")) {
    outcome.report = ctx.out / "report.html";
    outcome.results = json::parse(read_file(ctx.out / "results.json"));
  }
  return outcome;
}

}  // namespace xlt::study
