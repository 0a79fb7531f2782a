// The parts of the study report that stay readable with many languages and several encoders: the
// side-by-side comparison of encoders (accuracy per language and model, gap against distance per
// model, rank correlations with bootstrap intervals per model and measure, the paired
// per-language gap difference) and the alignment heat map (languages x layers).
#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "report/study_internal.h"
#include "xlt/report/html.h"
#include "xlt/report/study_report.h"
#include "xlt/report/svg.h"

namespace xlt::report::detail {
namespace {

// The page shows `shown`; tables/NAME.csv gets `data`, the same rows as plain numbers.
void add_table(HtmlDocument& doc, StudyReport& out, const std::string& name, const Table& shown,
               const Table& data) {
  out.tables.emplace_back(name, table_csv(data));
  doc.table(shown);
}

void add_figure(HtmlDocument& doc, StudyReport& out, const std::string& name,
                const std::string& svg, const std::string& caption) {
  out.figures.emplace_back(name, svg);
  doc.figure(svg, caption, name);
}

std::string interval(double lo, double hi, double scale, int decimals) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return "-";
  return "[" + fmt(scale * lo, decimals) + ", " + fmt(scale * hi, decimals) + "]";
}

// Wide enough for 15 language groups of several bars.
double chart_width(size_t categories, size_t series) {
  return std::clamp(140.0 + 22.0 * static_cast<double>(categories * std::max<size_t>(series, 1)),
                    720.0, 1240.0);
}

void accuracy_by_model(const json& r, const std::vector<std::string>& names, HtmlDocument& doc,
                       StudyReport& out) {
  const auto langs = study_languages(r);
  Table t;
  t.caption = "Zero-shot accuracy per language and encoder (mean over seeds; 95% interval)";
  t.header = {"language"};
  for (const auto& n : names) {
    t.header.push_back(n);
    t.header.push_back(n + " 95% CI");
    t.header.push_back(n + " baseline");
  }
  Table data;
  data.header = {"language",          "encoder", "zero_shot_accuracy",
                 "zero_shot_std",     "ci_low",  "ci_high",
                 "baseline_accuracy", "seeds",   "n"};
  BarChartData bars;
  bars.categories = langs;
  double chance = NAN;
  for (const auto& n : names) bars.series.push_back({n, {}, {}});
  for (const auto& lang : langs) {
    std::vector<std::string> row = {lang};
    for (size_t i = 0; i < names.size(); ++i) {
      const json v = encoder_view(r, names[i]);
      const auto z = lang_stat(v, "zero_shot", lang);
      const auto b = lang_stat(v, "baseline", lang);
      row.push_back(z ? percent(z->accuracy) : "-");
      row.push_back(z ? interval(z->low, z->high, 100.0, 1) : "-");
      row.push_back(b ? percent(b->accuracy) : "-");
      const auto& any = z ? z : b;
      data.rows.push_back({lang, names[i], z ? csv_number(z->accuracy) : "",
                           z ? csv_number(z->std) : "", z ? csv_number(z->low) : "",
                           z ? csv_number(z->high) : "", b ? csv_number(b->accuracy) : "",
                           any ? std::to_string(any->seeds) : "",
                           any ? std::to_string(any->n) : ""});
      if (z && std::isfinite(z->chance)) chance = z->chance;
      bars.series[i].values.push_back(z ? 100.0 * z->accuracy : NAN);
      double err = 0.0;
      if (z && z->seeds > 1 && std::isfinite(z->std)) {
        err = 100.0 * z->std;
      } else if (z && std::isfinite(z->low)) {
        err = 100.0 * std::max(z->accuracy - z->low, z->high - z->accuracy);
      }
      bars.series[i].errors.push_back(err);
    }
    t.rows.push_back(row);
  }
  BarChartOptions o;
  o.title = "Zero-shot NLI accuracy per language and encoder";
  o.x_label = "language";
  o.y_label = "accuracy (%)";
  o.y_min = 0.0;
  o.y_max = 100.0;
  o.width = chart_width(langs.size(), names.size());
  if (std::isfinite(chance)) o.reference = 100.0 * chance;
  const std::string svg = bar_chart_svg(bars, o);
  add_figure(doc, out, "compare_accuracy", svg,
             "Zero-shot accuracy per language, one bar per encoder; error bars: standard "
             "deviation over seeds (one seed: bootstrap half-width); dashed line: chance.");
  add_table(doc, out, "compare_accuracy", t, data);
}

void gap_by_model(const json& r, const std::vector<std::string>& names, HtmlDocument& doc,
                  StudyReport& out) {
  ScatterData d;
  std::string measure = "linguistic";
  for (const auto& n : names) {
    const json& tg = r["encoders"][n].value("transfer_gap", json());
    if (!tg.is_object()) continue;
    measure = tg.value("distance", json::object()).value("measure", measure);
    const json& langs = tg.value("languages", json::object());
    for (const auto& [lang, g] : langs.items()) {
      const double gap = num_or_nan(g, "gap"), dist = num_or_nan(g, "distance");
      if (!std::isfinite(gap) || !std::isfinite(dist)) continue;
      d.x.push_back(dist);
      d.y.push_back(100.0 * gap);
      d.category.push_back(n);
      d.label.push_back(lang);
      d.hover.push_back(n + ", " + lang + ": gap " + fmt(100.0 * gap, 1) + " points, distance " +
                        fmt(dist, 4));
    }
  }
  if (d.x.size() >= 2) {
    ScatterOptions o;
    o.title = "Transfer gap against " + measure + " distance, per encoder";
    o.x_label = measure + " distance from " + source_language(r);
    o.y_label = "transfer gap (points)";
    o.legend_title = "encoder";
    o.category_order = names;
    o.equal_aspect = false;
    o.point_radius = 5.0;
    o.width = 900.0;
    o.height = 520.0;
    add_figure(doc, out, "compare_gap_distance", scatter_svg(d, o),
               "Transfer gap (points) against distance, one colour per encoder, points "
               "labelled by language.");
  }
  // Rank correlation per encoder and measure.
  Table t;
  t.caption = "Spearman rank correlation of the transfer gap with each distance measure";
  t.header = {"encoder", "measure", "n", "rho", "95% bootstrap CI", "permutation p", "note"};
  Table data;
  data.header = {"encoder", "measure", "n",          "rho", "ci_low",
                 "ci_high", "p_value", "meaningful", "note"};
  for (const auto& n : names) {
    const json& tg = r["encoders"][n].value("transfer_gap", json());
    if (!tg.is_object()) continue;
    for (const auto& c : tg.value("correlations", json::array())) {
      const json ci95 = c.value("ci95", json());
      data.rows.push_back({n, c.value("measure", std::string()), std::to_string(c.value("n", 0)),
                           csv_number(num_or_nan(c, "rho")), csv_number(pair_at(ci95, 0)),
                           csv_number(pair_at(ci95, 1)), csv_number(num_or_nan(c, "p_value")),
                           csv_bool(c.value("meaningful", json())),
                           c.value("note", std::string())});
      t.rows.push_back({n, c.value("measure", std::string()), std::to_string(c.value("n", 0)),
                        fmt(num_or_nan(c, "rho"), 3),
                        interval(pair_at(ci95, 0), pair_at(ci95, 1), 1.0, 3),
                        fmt(num_or_nan(c, "p_value"), 4), c.value("note", std::string())});
    }
  }
  if (!t.rows.empty()) {
    add_table(doc, out, "compare_correlations", t, data);
    doc.paragraph(
        "The bootstrap interval resamples the target languages with replacement (percentile "
        "interval); with 14 languages it is wide, and it says how much the correlation depends "
        "on which languages happen to be in XNLI.");
  }
}

void paired_difference(const json& r, HtmlDocument& doc, StudyReport& out) {
  const json& cmp = r.value("comparison", json());
  if (!cmp.is_object()) return;
  for (const auto& p : cmp.value("pairs", json::array())) {
    const std::string a = p.value("a", std::string()), b = p.value("b", std::string());
    const json& langs = p.value("languages", json::object());
    if (langs.empty()) continue;
    Table t;
    t.caption = "Transfer gap of " + a + " minus that of " + b +
                " per language (points; paired bootstrap over the parallel test rows)";
    t.header = {"language", "gap " + a, "gap " + b, "difference", "95% CI", "rows", "smaller gap"};
    Table data;
    data.header = {"language", "gap_a",   "gap_b", "difference",
                   "ci_low",   "ci_high", "rows",  "smaller_gap"};
    BarChartData bars;
    BarSeries diff{"gap(" + a + ") \u2212 gap(" + b + ")", {}, {}};
    for (const auto& lang : study_languages(r)) {
      if (!langs.contains(lang)) continue;
      const json& l = langs[lang];
      const double dv = num_or_nan(l, "difference");
      const double lo = pair_at(l.value("ci95", json()), 0),
                   hi = pair_at(l.value("ci95", json()), 1);
      t.rows.push_back({lang, fmt(100.0 * num_or_nan(l, "gap_a"), 1),
                        fmt(100.0 * num_or_nan(l, "gap_b"), 1), fmt(100.0 * dv, 1),
                        interval(lo, hi, 100.0, 1), std::to_string(l.value("rows", 0)),
                        l.value("smaller_gap", std::string())});
      data.rows.push_back({lang, csv_number(num_or_nan(l, "gap_a")),
                           csv_number(num_or_nan(l, "gap_b")), csv_number(dv), csv_number(lo),
                           csv_number(hi), std::to_string(l.value("rows", 0)),
                           l.value("smaller_gap", std::string())});
      bars.categories.push_back(lang);
      diff.values.push_back(100.0 * dv);
      diff.errors.push_back(std::isfinite(lo) ? 100.0 * std::max(dv - lo, hi - dv) : 0.0);
    }
    bars.series.push_back(diff);
    BarChartOptions o;
    o.title = "Which encoder transfers better where: gap(" + a + ") \u2212 gap(" + b + ")";
    o.x_label = "target language";
    o.y_label = "difference of transfer gaps (points)";
    o.reference = 0.0;
    o.reference_label = "";
    o.width = chart_width(bars.categories.size(), 2);
    const std::string name = "compare_gap_difference_" + a + "_" + b;
    add_figure(doc, out, name, bar_chart_svg(bars, o),
               "Below 0: " + a + " loses less accuracy from " + source_language(r) +
                   " to that language than " + b + "; above 0: " + b +
                   " does. Error bars: the larger half of the paired bootstrap 95% interval "
                   "(exact interval in the table).");
    add_table(doc, out, name, t, data);
  }
}

}  // namespace

void render_comparison(const json& r, HtmlDocument& doc, StudyReport& out) {
  const auto names = encoder_names(r);
  doc.section("compare", "Encoders side by side");
  // A local model folder is shown as the rest of the report shows paths (no absolute path).
  const PathDisplay path(r, std::getenv("HOME") ? std::getenv("HOME") : "");
  std::string list;
  for (const auto& n : names) {
    std::string model;
    for (const auto& e : r["study"].value("encoders", json::array())) {
      if (e.value("name", std::string()) == n) model = e.value("model", std::string());
    }
    list += (list.empty() ? "" : "; ") + n + " = " + path(model);
  }
  doc.paragraph("Encoders: " + list +
                ". Each is fine-tuned on the same data with the same seeds and evaluated on "
                "the same rows; the sections after this one show each encoder in full.");
  accuracy_by_model(r, names, doc, out);
  doc.subsection("Transfer gap and linguistic distance per encoder");
  gap_by_model(r, names, doc, out);
  doc.subsection("Paired comparison of the transfer gaps");
  paired_difference(r, doc, out);
}

std::string alignment_heatmap_svg(const json& alignment, const std::string& source,
                                  const std::string& title, bool similarity) {
  std::vector<HeatmapPanel> panels;
  for (const char* phase : {"before", "after"}) {
    if (!alignment.contains(phase) || !alignment[phase].is_array()) continue;
    std::map<std::string, std::map<int, double>> cells;  // other language -> layer -> %
    std::vector<std::string> order;
    std::set<int> layers;
    for (const auto& row : alignment[phase]) {
      const std::string a = row.value("lang_a", std::string()),
                        b = row.value("lang_b", std::string());
      if (a != source && b != source) continue;
      const std::string other = a == source ? b : a;
      if (!cells.count(other)) order.push_back(other);
      const int layer = row.value("layer", 0);
      layers.insert(layer);
      // Retrieval: mean of both directions in %; similarity: how much closer translations are
      // than random pairs (mean cosine of pairs minus that of non-pairs).
      cells[other][layer] =
          similarity ? row.value("cos_pairs", 0.0) - row.value("cos_random", 0.0)
                     : 50.0 * (row.value("retrieval_a2b", 0.0) + row.value("retrieval_b2a", 0.0));
    }
    if (order.empty()) continue;
    HeatmapPanel p;
    p.title = std::string(phase) + " fine-tuning";
    p.rows = static_cast<int64_t>(order.size());
    p.cols = static_cast<int64_t>(layers.size());
    for (const auto& o : order) p.row_labels.push_back(source + "\u2013" + o);
    for (int l : layers) p.col_labels.push_back(std::to_string(l));
    for (const auto& o : order) {
      for (int l : layers) {
        auto it = cells[o].find(l);
        p.values.push_back(it == cells[o].end() ? NAN : it->second);
      }
    }
    panels.push_back(std::move(p));
  }
  if (panels.empty()) return "";
  HeatmapOptions o;
  o.title = title;
  o.x_label = "layer (0 = embeddings)";
  o.y_label = "language pair";
  o.colorbar_label = similarity ? "cos(pairs) − cos(non-pairs)" : "top-1 retrieval (%)";
  if (!similarity) {
    o.vmin = 0.0;
    o.vmax = 100.0;
  }
  o.cell_size = 34.0;
  o.annotate = true;
  return heatmap_svg(panels, o);
}

}  // namespace xlt::report::detail
