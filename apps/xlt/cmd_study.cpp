// `xlt study CONFIG.toml [--out DIR] [--dry-run] [--stages a,b] [--overwrite]`: the whole
// cross-lingual transfer study (baseline -> fine-tune -> zero-shot -> analysis -> attention ->
// perplexity -> report) from one TOML file, resumable, with a self-contained HTML report.
// The config is validated completely before any work starts (exit 2 naming the key or file).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/core/interrupt.h"
#include "xlt/distributed/distributed.h"
#include "xlt/report/study_report.h"
#include "xlt/study/config.h"
#include "xlt/study/study.h"

namespace xlt::cli {
namespace {

struct StudyCliOptions {
  std::string config, out, stages, device;
  bool dry_run = false, overwrite = false, quiet = false;
  int threads = -1;
  int dist_timeout = 300;
};

std::vector<std::string> split_stages(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      const size_t b = cur.find_first_not_of(' '), e = cur.find_last_not_of(' ');
      if (b == std::string::npos) {
        throw UsageError("--stages: empty stage name in '" + s + "'");
      }
      out.push_back(cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

// Accuracy per language before and after fine-tuning; with several encoders, a pair of columns
// per encoder.
void print_summary(const study::StudyOutcome& r) {
  if (r.results.is_null()) return;
  const auto& res = r.results;
  std::vector<std::pair<std::string, const nlohmann::json*>> parts;
  if (res.contains("encoders") && res["encoders"].is_object()) {
    for (const auto& [name, block] : res["encoders"].items()) parts.emplace_back(name, &block);
  } else {
    parts.emplace_back("", &res);
  }
  int width = 12;
  for (const auto& [name, block] : parts) {
    if (!name.empty()) width = std::max<int>(width, static_cast<int>(name.size()) + 11);
  }
  std::printf("%-6s", "lang");
  for (const auto& [name, block] : parts) {
    const std::string prefix = name.empty() ? "" : name + " ";
    std::printf(" %-*s %-*s", width, (prefix + "baseline").c_str(), width,
                (prefix + "zero-shot").c_str());
  }
  std::printf("\n");
  for (const auto& lang : res["study"]["languages"]) {
    const std::string l = lang.get<std::string>();
    std::printf("%-6s", l.c_str());
    for (const auto& [name, block] : parts) {
      auto acc = [&, b = block](const char* key) -> std::string {
        if (!b->contains(key) || (*b)[key].is_null() || !(*b)[key]["languages"].contains(l)) {
          return "-";
        }
        const auto& x = (*b)[key]["languages"][l];
        return report::percent(x["across_seeds"].value("mean", x.value("accuracy", 0.0)));
      };
      std::printf(" %-*s %-*s", width, acc("baseline").c_str(), width, acc("zero_shot").c_str());
    }
    std::printf("\n");
  }
}

int run(const StudyCliOptions& o) {
  const study::StudyConfig config = study::load_study_config(o.config);
  study::RunOptions ro;
  ro.out = o.out;
  ro.dry_run = o.dry_run;
  ro.overwrite = o.overwrite;
  ro.progress = !o.quiet;
  ro.threads = o.threads;
  ro.device = o.device;
  ro.dist_timeout = o.dist_timeout;
  if (!o.stages.empty()) ro.stages = split_stages(o.stages);
  // Under a distributed launch rank 0 alone prints (the plan, the summary, the report path).
  if (o.dry_run) {
    if (distributed::launch_env_from_process().rank != 0) return 0;
    const auto plan = study::plan_study(config, ro);
    std::cout << "plan for " << config.config_file.string() << " -> "
              << study::resolve_out_dir(config, ro).string() << "\n"
              << study::format_plan(plan);
    return 0;
  }
  const study::StudyOutcome r = study::run_study(config, ro);
  if (!r.stopped_unit.empty()) {
    const int sig = r.interrupted_by != 0 ? r.interrupted_by : SIGINT;
    if (distributed::launch_env_from_process().rank == 0) {
      std::cerr << "xlt study: stopped by " << interrupt_signal_name(sig);
      if (r.stopped_unit_complete) {
        std::cerr << " after " << r.stopped_unit << " (complete)";
      } else {
        std::cerr << " in " << r.stopped_unit << " at step " << r.stopped_at_step << "/"
                  << r.stopped_total_steps << "; its state is saved in "
                  << (r.out / r.stopped_unit / "run" / "state").string();
      }
      std::cerr << ". To continue, run the same command: finished units are skipped"
                << (r.stopped_unit_complete ? "" : " and " + r.stopped_unit + " resumes") << "\n";
    }
    return interrupt_exit_code(sig);
  }
  print_summary(r);
  if (!r.report.empty()) {
    std::cout << "report: " << r.report.string() << "\n";
    for (const auto& note : r.results["study"].value("notes", nlohmann::json::array())) {
      const std::string text = note.is_string() ? note.get<std::string>() : "";
      if (text.rfind("OUT OF DATE", 0) == 0) std::cerr << "xlt study: warning: " << text << "\n";
    }
  } else if (distributed::launch_env_from_process().rank == 0 && config.stage_enabled("report")) {
    std::cerr << "xlt study: the report was not rebuilt (report is not among the stages run); "
              << (r.out / "report.html").string()
              << ", if there is one, is from an earlier run: add report to --stages to update "
                 "it\n";
  }
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<StudyCliOptions>();
  sub.add_option("config", o->config, "Study configuration (TOML; see docs/study.md)")->required();
  sub.add_option("--out", o->out,
                 "Output folder (default: study.out in the config, else runs/<config name>)");
  sub.add_flag("--dry-run", o->dry_run,
               "Print the plan (each stage: run or skip, and why) without running anything");
  sub.add_option("--stages", o->stages,
                 "Run only these stages, comma-separated (baseline, finetune, zero_shot, "
                 "analysis, attention, perplexity, report)");
  sub.add_flag("--overwrite", o->overwrite,
               "Empty the output folder first and run every stage again (also needed to use a "
               "folder that is not an xlt study folder)");
  sub.add_option("--threads", o->threads,
                 "CPU threads (0 = the cores not already busy; default: study.threads)")
      ->check(thread_count());
  sub.add_option("--device", o->device, "cpu or cuda[:N] (default: study.device)");
  sub.add_option("--dist-timeout", o->dist_timeout,
                 "Distributed runs (xlt launch, torchrun, srun): seconds a collective waits for a "
                 "lost peer before failing")
      ->check(positive())
      ->capture_default_str();
  sub.add_flag("--quiet,--no-progress", o->quiet, "No progress bars");
  return [o]() { return run(*o); };
}

}  // namespace

XLT_REGISTER_COMMAND("study",
                     "Run a whole zero-shot transfer study from a TOML config (resumable, with an "
                     "HTML report)",
                     1, configure);

}  // namespace xlt::cli
