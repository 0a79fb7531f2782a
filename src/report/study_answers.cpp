// Plain-language answers to the study's four questions, generated from results.json: is the
// baseline above chance, does English fine-tuning help English, how large is the transfer gap,
// and does the gap follow linguistic distance. Claims are made only when the 95% intervals
// separate; otherwise the answer says the data do not settle it (hedged = true).
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "report/study_internal.h"
#include "xlt/report/study_report.h"

namespace xlt::report {
namespace detail {

std::string fmt(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  // 15 significant digits: exact for every decimal the results hold, and 0.8 - 0.34 reads 0.46.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::string csv_bool(const json& b) {
  return b.is_boolean() ? (b.get<bool>() ? "true" : "false") : "";
}

double pair_at(const json& pair, size_t i) {
  return pair.is_array() && pair.size() > i && pair[i].is_number() ? pair[i].get<double>() : NAN;
}

std::string points(double d) {
  if (!std::isfinite(d)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.1f points", 100.0 * d);
  return buf;
}

}  // namespace detail

std::string percent(double fraction, int decimals) {
  if (!std::isfinite(fraction)) return "n/a";
  return detail::fmt(100.0 * fraction, decimals) + "%";
}

namespace {

using detail::json;
using detail::lang_stat;
using detail::LangStat;

std::string ci_text(const LangStat& s) {
  return "[" + percent(s.low) + ", " + percent(s.high) + "]";
}

std::string acc_text(const LangStat& s) {
  std::string t = percent(s.accuracy);
  if (s.seeds > 1 && std::isfinite(s.std)) {
    t += " \u00b1 " + detail::fmt(100.0 * s.std, 1) + " (" + std::to_string(s.seeds) + " seeds)";
  }
  return t;
}

std::string join(const std::vector<std::string>& items, const std::string& last_sep = " and ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? last_sep : ", ";
    out += items[i];
  }
  return out;
}

std::optional<StudyAnswer> baseline_answer(const json& r) {
  std::vector<std::string> above, below, level, values;
  double chance = NAN;
  for (const auto& lang : detail::study_languages(r)) {
    auto s = lang_stat(r, "baseline", lang);
    if (!s) continue;
    chance = s->chance;
    values.push_back(lang + " " + acc_text(*s));
    if (s->low > s->chance) {
      above.push_back(lang);
    } else if (s->high < s->chance) {
      below.push_back(lang);
    } else {
      level.push_back(lang);
    }
  }
  if (values.empty()) return std::nullopt;
  StudyAnswer a{"baseline_above_chance",
                "Before fine-tuning, does the model classify NLI better than chance?", "", false};
  const std::string numbers =
      " (" + join(values, ", ") + "; chance " + percent(chance) + ", the majority-class rate).";
  if (level.empty() && below.empty()) {
    a.answer = "Yes, in every language: each 95% confidence interval lies above chance" + numbers;
  } else if (above.empty() && below.empty()) {
    a.answer =
        "No: without fine-tuning, accuracy is indistinguishable from chance in every language "
        "(every 95% confidence interval includes chance)" +
        numbers +
        " This is expected: the classification head is newly initialised and has never seen a "
        "label.";
    a.hedged = true;
  } else {
    a.answer = "Mixed.";
    if (!above.empty()) a.answer += " Above chance: " + join(above) + ".";
    if (!level.empty()) a.answer += " Indistinguishable from chance: " + join(level) + ".";
    if (!below.empty()) {
      a.answer += " Below chance (a head biased towards a minority class): " + join(below) + ".";
    }
    a.answer += numbers;
    a.hedged = !level.empty();
  }
  return a;
}

std::optional<StudyAnswer> english_gain_answer(const json& r) {
  const std::string src = detail::source_language(r);
  auto b = lang_stat(r, "baseline", src);
  auto z = lang_stat(r, "zero_shot", src);
  if (!b || !z) return std::nullopt;
  StudyAnswer a{"english_gain",
                "Does fine-tuning on " + src + " improve accuracy in " + src + " itself?", "",
                false};
  const double gain = z->accuracy - b->accuracy;
  const std::string change = src + " accuracy went from " + acc_text(*b) + " " + ci_text(*b) +
                             " before fine-tuning to " + acc_text(*z) + " " + ci_text(*z) +
                             " after (" + detail::points(gain) + ")";
  const bool separated = z->low > b->high || b->low > z->high;
  if (separated && gain > 0) {
    a.answer = "Yes: " + change + "; the 95% confidence intervals do not overlap.";
  } else if (separated) {
    a.answer = "No, it got worse: " + change + "; the 95% confidence intervals do not overlap.";
  } else {
    a.answer = "Not clearly: " + change +
               ", but the 95% confidence intervals overlap, so the difference may be noise.";
    a.hedged = true;
  }
  return a;
}

std::optional<StudyAnswer> transfer_gap_answer(const json& r) {
  if (!r.contains("transfer_gap") || !r["transfer_gap"].is_object()) return std::nullopt;
  const json& langs = r["transfer_gap"].value("languages", json::object());
  if (langs.empty()) return std::nullopt;
  const std::string src = detail::source_language(r);
  StudyAnswer a{"transfer_gap",
                "How much accuracy is lost when the " + src +
                    "-trained model is applied zero-shot to other languages?",
                "", false};
  std::vector<std::string> clear, unclear, negative, helped, not_helped;
  for (const auto& lang : detail::study_languages(r)) {
    if (!langs.contains(lang)) continue;
    const json& g = langs[lang];
    const double gap = detail::num_or_nan(g, "gap");
    double lo = NAN, hi = NAN;
    if (g.contains("ci95") && g["ci95"].is_array() && g["ci95"].size() == 2) {
      lo = g["ci95"][0].get<double>();
      hi = g["ci95"][1].get<double>();
    }
    const std::string item = lang + " " + detail::fmt(100.0 * gap, 1) + " points [" +
                             detail::fmt(100.0 * lo, 1) + ", " + detail::fmt(100.0 * hi, 1) + "]";
    if (lo > 0) {
      clear.push_back(item);
    } else if (hi < 0) {
      negative.push_back(item);
    } else {
      unclear.push_back(item);
    }
    auto b = lang_stat(r, "baseline", lang);
    auto z = lang_stat(r, "zero_shot", lang);
    if (b && z) (z->low > b->high ? helped : not_helped).push_back(lang);
  }
  std::string text;
  if (!clear.empty()) {
    text += "A clear gap (the 95% interval excludes zero) in " + join(clear) + ".";
  }
  if (!negative.empty()) {
    text +=
        std::string(text.empty() ? "" : " ") + "Better than " + src + " in " + join(negative) + ".";
  }
  if (!unclear.empty()) {
    text += std::string(text.empty() ? "" : " ") + "No gap distinguishable from zero in " +
            join(unclear) + ".";
    a.hedged = true;
  }
  text += " (gap = accuracy in " + src + " minus accuracy in the target language, in points, " +
          "with its bootstrap 95% interval.)";
  if (!helped.empty() || !not_helped.empty()) {
    text +=
        " Compared with their own pre-fine-tuning baseline, zero-shot accuracy is clearly "
        "higher in " +
        (helped.empty() ? std::string("none of the target languages") : join(helped)) +
        (not_helped.empty() ? "" : "; not clearly higher in " + join(not_helped)) + ".";
  }
  a.answer = text;
  return a;
}

std::optional<StudyAnswer> distance_answer(const json& r) {
  if (!r.contains("transfer_gap") || !r["transfer_gap"].is_object()) return std::nullopt;
  const json& tg = r["transfer_gap"];
  const json corr = tg.value("correlation", json::object());
  const json& langs = tg.value("languages", json::object());
  StudyAnswer a{"distance_ordering",
                "Does the transfer gap grow with the target language's linguistic distance from " +
                    detail::source_language(r) + "?",
                "", true};
  std::vector<std::pair<double, std::string>> by_gap, by_dist;
  for (const auto& [lang, g] : langs.items()) {
    const double gap = detail::num_or_nan(g, "gap");
    const double dist = detail::num_or_nan(g, "distance");
    if (std::isfinite(gap) && std::isfinite(dist)) {
      by_gap.emplace_back(gap, lang);
      by_dist.emplace_back(dist, lang);
    }
  }
  if (by_gap.size() < 2) {
    a.answer = "Cannot tell: linguistic distances are known for fewer than two target languages.";
    return a;
  }
  std::sort(by_gap.begin(), by_gap.end());
  std::sort(by_dist.begin(), by_dist.end());
  auto order = [](const std::vector<std::pair<double, std::string>>& v) {
    std::string s;
    for (const auto& [value, lang] : v) s += (s.empty() ? "" : " < ") + lang;
    return s;
  };
  const double rho = detail::num_or_nan(corr, "rho");
  const double p = detail::num_or_nan(corr, "p_value");
  const int n = corr.value("n", static_cast<int>(by_gap.size()));
  const std::string measure = corr.value("measure", std::string("distance"));
  const std::string described = "Smallest to largest gap: " + order(by_gap) + "; smallest to " +
                                "largest " + measure + " distance: " + order(by_dist) +
                                " (Spearman rho = " + detail::fmt(rho, 2) + ").";
  if (!corr.value("meaningful", false)) {
    a.answer = "Too few target languages to tell (n = " + std::to_string(n) +
               ": with so few points no ordering of the languages can be statistically "
               "significant; " +
               detail::p_value_label(corr) + " = " + detail::fmt(p, 2) + "). " + described;
  } else if (p < 0.05) {
    a.hedged = false;
    a.answer = std::string(rho > 0 ? "Yes" : "No, the opposite") + ": the gap's ranking " +
               (rho > 0 ? "follows" : "runs against") + " the " + measure +
               " distance (n = " + std::to_string(n) + ", " + detail::p_value_label(corr) + " = " +
               detail::fmt(p, 3) + "). " + described;
  } else {
    a.answer = "Not significantly (n = " + std::to_string(n) + ", " + detail::p_value_label(corr) +
               " = " + detail::fmt(p, 2) + "). " + described;
  }
  return a;
}

}  // namespace

std::vector<StudyAnswer> study_answers(const nlohmann::json& results) {
  std::vector<StudyAnswer> out;
  // Several encoders: each one's answers, the question naming the encoder.
  for (const auto& name : detail::encoder_names(results)) {
    for (auto& a : study_answers(detail::encoder_view(results, name))) {
      a.id = name + "/" + a.id;
      a.question = "[" + name + "] " + a.question;
      out.push_back(std::move(a));
    }
  }
  if (!out.empty()) return out;
  for (auto f : {baseline_answer, english_gain_answer, transfer_gap_answer, distance_answer}) {
    if (auto a = f(results)) out.push_back(std::move(*a));
  }
  return out;
}

nlohmann::json answers_to_json(const std::vector<StudyAnswer>& answers) {
  json out = json::array();
  for (const auto& a : answers) {
    out.push_back(
        {{"id", a.id}, {"question", a.question}, {"answer", a.answer}, {"hedged", a.hedged}});
  }
  return out;
}

}  // namespace xlt::report
