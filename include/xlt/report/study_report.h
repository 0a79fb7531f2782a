// The report of an `xlt study`, rendered from its results.json alone (schema_version 1, described
// by docs/results-schema.json and docs/study.md): one self-contained report.html (inline SVG and
// CSS, no scripts, opens offline), every figure as a standalone SVG, every table as CSV, and
// plain-language answers to the study's questions generated from the numbers (hedged when the
// confidence intervals overlap). Rendering needs no model and no libtorch, so a report can be
// rebuilt from results.json on any machine.
//
// Usage:
//   nlohmann::json results = ...;                            // the study runner's results.json
//   results["answers"] = xlt::report::answers_to_json(xlt::report::study_answers(results));
//   xlt::report::StudyReport r = xlt::report::render_study_report(results);
//   write r.html to DIR/report.html, r.figures to DIR/figures/<name>.svg, r.tables to
//   DIR/tables/<name>.csv
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace xlt::report {

inline constexpr int kResultsSchemaVersion = 1;

struct StudyAnswer {
  std::string id;        // stable key: baseline_above_chance, english_gain, transfer_gap,
                         // distance_ordering
  std::string question;  // the study's question in plain words
  std::string answer;    // generated from the numbers
  bool hedged = false;   // the data do not settle it (overlapping CIs, too few languages, ...)
};

// Answers for whatever parts of the study are present (a question whose numbers are missing is
// left out). Deterministic: the same results give the same text.
std::vector<StudyAnswer> study_answers(const nlohmann::json& results);
nlohmann::json answers_to_json(const std::vector<StudyAnswer>& answers);

struct StudyReport {
  std::string html;
  std::vector<std::pair<std::string, std::string>> figures;  // name (no extension) -> SVG
  std::vector<std::pair<std::string, std::string>> tables;   // name (no extension) -> CSV
};

// Renders results.json. Sections whose data are absent (stages not run) are omitted and listed as
// such. Throws xlt::DataError when schema_version is not kResultsSchemaVersion.
StudyReport render_study_report(const nlohmann::json& results);

// Formatting shared with the CLI's summary: 0.4567 -> "45.7%".
std::string percent(double fraction, int decimals = 1);

}  // namespace xlt::report
