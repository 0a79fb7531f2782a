// Tests of the study report renderer on a hand-made results.json (study_fixture.h): the answers
// follow the numbers (and hedge where the intervals overlap), the HTML is well-formed and
// self-contained with one inline SVG per figure, every figure/table is exported, and the fixture
// itself satisfies docs/results-schema.json.
#include "xlt/report/study_report.h"

#include <gtest/gtest.h>

#include <set>

#include "common/test_env.h"
#include "report/study_fixture.h"
#include "report/study_internal.h"
#include "report/xml_check.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/report/json_schema.h"

namespace xlt::report {
namespace {

using nlohmann::json;

const StudyAnswer& find(const std::vector<StudyAnswer>& a, const std::string& id) {
  for (const auto& x : a) {
    if (x.id == id) return x;
  }
  throw std::runtime_error("no answer " + id);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(StudyAnswers, FollowTheNumbers) {
  const auto answers = study_answers(test::study_results_fixture());
  ASSERT_EQ(answers.size(), 4u);
  const auto& base = find(answers, "baseline_above_chance");
  EXPECT_TRUE(base.hedged);
  EXPECT_TRUE(contains(base.answer, "indistinguishable from chance in every language"));
  EXPECT_TRUE(contains(base.answer, "en 34.0%")) << base.answer;
  EXPECT_TRUE(contains(base.answer, "chance 33.3%"));

  const auto& gain = find(answers, "english_gain");
  EXPECT_FALSE(gain.hedged);
  EXPECT_EQ(gain.answer.rfind("Yes:", 0), 0u) << gain.answer;
  EXPECT_TRUE(contains(gain.answer, "+46.0 points")) << gain.answer;  // 0.80 - 0.34

  const auto& gap = find(answers, "transfer_gap");
  EXPECT_TRUE(gap.hedged);  // fr's interval [-0.02, 0.06] contains zero
  EXPECT_TRUE(contains(gap.answer,
                       "A clear gap (the 95% interval excludes zero) in es 5.0 "
                       "points [1.0, 9.0] and hi 20.0 points [15.0, 25.0]."))
      << gap.answer;
  EXPECT_TRUE(contains(gap.answer, "No gap distinguishable from zero in fr 2.0 points"));
  // Every target's zero-shot CI lies above its baseline CI.
  EXPECT_TRUE(contains(gap.answer, "clearly higher in es, fr and hi"));

  const auto& dist = find(answers, "distance_ordering");
  EXPECT_TRUE(dist.hedged);
  EXPECT_EQ(dist.answer.rfind("Too few target languages to tell (n = 3", 0), 0u) << dist.answer;
  EXPECT_TRUE(contains(dist.answer, "Smallest to largest gap: fr < es < hi"));
  EXPECT_TRUE(contains(dist.answer, "syntactic distance: es < fr < hi"));
}

TEST(StudyAnswers, ClaimsWhenIntervalsSeparateAndHedgesWhenTheyOverlap) {
  json r = test::study_results_fixture();
  // Baseline clearly above chance in every language.
  for (auto& [lang, l] : r["baseline"]["languages"].items()) l["ci95"] = {0.50, 0.60};
  // ... and English after fine-tuning overlaps the baseline: no clear gain.
  r["zero_shot"]["languages"]["en"]["accuracy"] = 0.58;
  r["zero_shot"]["languages"]["en"]["ci95"] = {0.55, 0.61};
  r["baseline"]["languages"]["en"]["accuracy"] = 0.55;
  r["transfer_gap"]["correlation"] = {{"method", "spearman"},
                                      {"n", 6},
                                      {"rho", 0.94},
                                      {"p_value", 0.0167},
                                      {"meaningful", true},
                                      {"measure", "syntactic"},
                                      {"note", ""}};
  const auto answers = study_answers(r);
  EXPECT_FALSE(find(answers, "baseline_above_chance").hedged);
  EXPECT_EQ(find(answers, "baseline_above_chance").answer.rfind("Yes, in every language", 0), 0u);
  const auto& gain = find(answers, "english_gain");
  EXPECT_TRUE(gain.hedged);
  EXPECT_EQ(gain.answer.rfind("Not clearly:", 0), 0u) << gain.answer;
  EXPECT_TRUE(contains(gain.answer, "overlap"));
  const auto& dist = find(answers, "distance_ordering");
  EXPECT_FALSE(dist.hedged);
  EXPECT_EQ(dist.answer.rfind("Yes: the gap's ranking follows the syntactic distance", 0), 0u)
      << dist.answer;
  EXPECT_TRUE(contains(dist.answer, "exact permutation p = 0.017")) << dist.answer;
  // A Monte Carlo p-value (more than 8 languages) is not called exact.
  r["transfer_gap"]["correlation"]["exact"] = false;
  r["transfer_gap"]["correlation"]["n"] = 14;
  const auto mc = find(study_answers(r), "distance_ordering");
  EXPECT_TRUE(contains(mc.answer, "(n = 14, Monte Carlo permutation p = 0.017)")) << mc.answer;
}

TEST(StudyAnswers, MissingPartsAreLeftOut) {
  json r = test::study_results_fixture();
  r["zero_shot"] = nullptr;
  r["transfer_gap"] = nullptr;
  const auto answers = study_answers(r);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].id, "baseline_above_chance");
}

TEST(StudyReport, RendersEverySectionSelfContained) {
  json r = test::study_results_fixture();
  r["answers"] = answers_to_json(study_answers(r));
  const StudyReport rep = render_study_report(r);
  std::vector<std::string> figures, tables;
  for (const auto& [n, svg] : rep.figures) {
    figures.push_back(n);
    EXPECT_EQ(test::check_xml(svg).error, "") << n;
  }
  for (const auto& [n, csv] : rep.tables) tables.push_back(n);
  EXPECT_EQ(figures, (std::vector<std::string>{"accuracy", "transfer_gap_distance", "tsne_before",
                                               "tsne_after", "alignment_before", "alignment_after",
                                               "attention", "perplexity"}));
  EXPECT_EQ(tables, (std::vector<std::string>{"accuracy", "transfer_gap", "tsne", "alignment",
                                              "attention", "perplexity", "timings"}));
  const std::string html = rep.html;
  const auto xml = test::check_xml(html.substr(html.find('\n') + 1));
  ASSERT_EQ(xml.error, "");
  EXPECT_EQ(xml.elements.at("svg"), 8);  // one inline SVG per figure
  EXPECT_TRUE(contains(html, "RANDOMLY INITIALISED"));
  EXPECT_LT(html.find("RANDOMLY INITIALISED"), html.find("id=\"answers\""));  // at the top
  EXPECT_TRUE(contains(html, "fixture &lt;study&gt; &amp; co"));
  EXPECT_TRUE(contains(html, "<title>[es] #1 sentence &lt;3&gt;</title>"));  // t-SNE hover
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // The page shows percentages; tables/accuracy.csv holds the same row as numbers (fractions,
  // as in results.json; the std is empty with one seed), readable by pandas as floats.
  EXPECT_TRUE(contains(html, "<tr><td>en</td><td class=\"num\">34.0%</td><td>[30.0%, 38.0%]</td>"));
  const auto& acc = rep.tables[0].second;
  EXPECT_EQ(acc.substr(0, acc.find('\n')),
            "language,baseline_accuracy,baseline_std,baseline_ci_low,baseline_ci_high,"
            "zero_shot_accuracy,zero_shot_std,zero_shot_ci_low,zero_shot_ci_high,gain,seeds,n,"
            "chance");
  EXPECT_TRUE(contains(acc, "\nen,0.34,,0.3,0.38,0.8,,0.76,0.84,0.46,1,500,0.333333333333333\n"))
      << acc;
  const auto& gap = rep.tables[1].second;
  EXPECT_EQ(gap.substr(0, gap.find('\n')), "language,gap,ci_low,ci_high,std,paired,distance");
  EXPECT_TRUE(contains(gap, "\nhi,0.2,")) << gap;
}

TEST(StudyReport, PartialStudyAndVersionCheck) {
  json r = test::study_results_fixture();
  r["analysis"] = nullptr;
  r["attention"] = nullptr;
  r["perplexity"] = nullptr;
  const StudyReport rep = render_study_report(r);
  EXPECT_EQ(rep.figures.size(), 2u);  // accuracy + transfer gap
  EXPECT_TRUE(contains(rep.html, "The attention analysis was not part of this run"));
  r["schema_version"] = 2;
  EXPECT_THROW(render_study_report(r), DataError);
}

// A study of the source language alone has no transfer gap to draw, and perplexity of languages
// that only perplexity.texts names is shown after the study's: the report says so, not crashes.
TEST(StudyReport, SourceLanguageAloneAndPerplexityOfOtherLanguages) {
  json r = test::study_results_fixture();
  ASSERT_TRUE(r["transfer_gap"].is_object());
  r["transfer_gap"]["languages"] = json::object();
  ASSERT_TRUE(r["perplexity"].is_object());
  json ppl = r["perplexity"]["languages"];
  ASSERT_FALSE(ppl.empty());
  r["perplexity"]["languages"] = {{"zz", ppl.begin().value()}};
  const StudyReport rep = render_study_report(r);
  EXPECT_TRUE(contains(rep.html, "No target language")) << rep.html.substr(0, 200);
  EXPECT_TRUE(contains(rep.html, "<td>zz</td>"));
  // The accuracy table names the language fine-tuned in, not always English, and says how its
  // intervals were made.
  EXPECT_TRUE(contains(rep.html, "after fine-tuning in en (zero-shot)"));
  EXPECT_TRUE(contains(rep.html, "95% CI: percentile bootstrap over the test pairs;"));
  json with_resamples = r;
  with_resamples["config"]["eval"] = {{"bootstrap_resamples", 400}};
  EXPECT_TRUE(contains(render_study_report(with_resamples).html,
                       "percentile bootstrap over the test pairs (400 resamples)"));
  json es = r;
  es["study"]["source_lang"] = "es";
  es["zero_shot"]["source_lang"] = "es";
  es["transfer_gap"]["source_lang"] = "es";
  EXPECT_TRUE(contains(render_study_report(es).html, "after fine-tuning in es (zero-shot)"));
  r["perplexity"]["languages"] = json::object();
  EXPECT_TRUE(contains(render_study_report(r).html, "No language was scored."));
}

// A shared report shows no absolute path of the machine that ran the study: every table,
// caption and the configuration dump show them relative to the config's folder (or <out>, ~).
TEST(StudyReport, ShowsPathsRelativeToTheStudyNotAbsolute) {
  json r = test::study_results_fixture();
  r["study"]["config_file"] = "/srv/lab/study/examples/study.toml";
  r["study"]["out_dir"] = "/scratch/runs/s1";
  r["study"]["encoder"]["path"] = "/scratch/runs/s1/init/encoder/model";
  // A local model's name is its (absolute) path: shown as the other paths, in the random-model
  // warning and the configuration list.
  r["study"]["encoder"]["model"] = "/srv/lab/models/enc";
  r["study"]["causal_lm"] = r["study"]["encoder"];
  r["study"]["causal_lm"]["path"] = "/home/ann/.cache/huggingface/hub/models--x";
  r["analysis"]["alignment"]["source"] = "/srv/lab/study/examples/demo/parallel.tsv";
  r["transfer_gap"]["distance"]["source"] = "/srv/lab/shared/distances.tsv";
  for (auto& l : r["perplexity"]["languages"]) {
    l["source"] = "/srv/lab/study/examples/demo/text-" + l["lang"].get<std::string>() + ".txt";
  }
  r["perplexity"]["languages"]["hi"]["source"] = "/opt/corpora/hi/wiki.txt";
  r["config"] = {{"train", {{"data", "/srv/lab/study/examples/demo/train-en.jsonl"}}},
                 {"eval", {{"data", "xnli:split=validation"}, {"samples", 1000}}},
                 {"out", "/scratch/runs/s1"}};
  const json before = r;
  const std::string html = render_study_report(r).html;
  EXPECT_EQ(r, before);  // results.json itself keeps the absolute paths
  for (const char* relative :
       {"demo/text-en.txt", "demo/parallel.tsv", "../../shared/distances.tsv",
        "The encoder (../../models/enc) is RANDOMLY", "encoder: ../../models/enc (",
        "&lt;out&gt;/init/encoder/model", "configuration file: study.toml", "demo/train-en.jsonl",
        "xnli:split=validation", ".../wiki.txt"}) {
    EXPECT_TRUE(contains(html, relative)) << relative;
  }
  for (const char* absolute : {"/srv/", "/scratch/", "/opt/", "/home/"}) {
    EXPECT_FALSE(contains(html, absolute)) << absolute;
  }
  // $HOME (read when the report is rendered) becomes ~.
  const detail::PathDisplay show(r, "/home/ann");
  EXPECT_EQ(show("/home/ann/.cache/hub/m"), "~/.cache/hub/m");
  EXPECT_EQ(show("/srv/lab/study/examples"), ".");
  EXPECT_EQ(show("/scratch/runs/s1"), "<out>");
  EXPECT_EQ(show("relative/already.txt"), "relative/already.txt");
  EXPECT_EQ(show("/srv/lab/study/examples/../data/x.tsv"), "../data/x.tsv");
  EXPECT_EQ(show.scrub(json{{"a", {"/usr/share/x.tsv", 3}}}), (json{{"a", {".../x.tsv", 3}}}));
}

TEST(StudyReport, FixtureMatchesTheShippedSchema) {
  const json schema = json::parse(read_file(test::source_dir() / "docs" / "results-schema.json"));
  json r = test::study_results_fixture();
  r["answers"] = answers_to_json(study_answers(r));
  const auto errors = validate_json(r, schema);
  for (const auto& e : errors) ADD_FAILURE() << e.path << ": " << e.message;
  // Bits per character/byte are null when no byte could be attributed (stride = max_length).
  json no_bits = r;
  no_bits["perplexity"]["languages"]["es"]["bits_per_char"] = nullptr;
  no_bits["perplexity"]["languages"]["es"]["bits_per_byte"] = nullptr;
  for (const auto& e : validate_json(no_bits, schema)) ADD_FAILURE() << e.path << ": " << e.message;
  // And the schema catches a broken document.
  r["baseline"]["languages"]["en"]["accuracy"] = 1.5;
  r.erase("timings");
  const auto errors_after = validate_json(r, schema);
  std::set<std::string> where;
  for (const auto& e : errors_after) where.insert(e.path);
  EXPECT_TRUE(where.count("/baseline/languages/en/accuracy")) << errors_after.size();
  EXPECT_TRUE(where.count(""));  // the missing "timings"
  // The several-encoder layout too, and a broken per-encoder block is caught.
  json m = test::multi_encoder_results_fixture();
  m["answers"] = answers_to_json(study_answers(m));
  for (const auto& e : validate_json(m, schema)) ADD_FAILURE() << e.path << ": " << e.message;
  m["encoders"]["xlmr"]["zero_shot"]["languages"]["es"]["accuracy"] = -0.5;
  m["comparison"]["pairs"][0]["languages"]["hi"].erase("ci95");
  std::set<std::string> where_m;
  for (const auto& e : validate_json(m, schema)) where_m.insert(e.path);
  EXPECT_TRUE(where_m.count("/encoders/xlmr/zero_shot/languages/es/accuracy")) << where_m.size();
  EXPECT_TRUE(where_m.count("/comparison/pairs/0/languages/hi")) << where_m.size();
}

TEST(StudyReport, SeveralEncodersSideBySide) {
  json r = test::multi_encoder_results_fixture();
  const auto answers = study_answers(r);
  // Each encoder's answers, named; the same answers as its one-encoder view.
  const auto one = study_answers(test::study_results_fixture());
  ASSERT_EQ(answers.size(), 2 * one.size());
  EXPECT_EQ(answers[0].id, "mbert/" + one[0].id);
  EXPECT_EQ(answers[0].answer, one[0].answer);
  EXPECT_EQ(answers[one.size()].question, "[xlmr] " + one[0].question);
  r["answers"] = answers_to_json(answers);
  const StudyReport rep = render_study_report(r);
  std::set<std::string> figures;
  for (const auto& [name, svg] : rep.figures) figures.insert(name);
  for (const char* f :
       {"compare_accuracy", "compare_gap_distance", "compare_gap_difference_mbert_xlmr",
        "accuracy_mbert", "accuracy_xlmr", "transfer_gap_distance_xlmr", "tsne_before_mbert",
        "attention", "perplexity"}) {
    EXPECT_TRUE(figures.count(f)) << f;
  }
  EXPECT_FALSE(figures.count("accuracy"));
  EXPECT_NE(rep.html.find("Encoders side by side"), std::string::npos);
  EXPECT_NE(rep.html.find("Accuracy per language (xlmr)"), std::string::npos);
  // Both (random) encoders are flagged at the top, each by name.
  EXPECT_LT(rep.html.find("The encoder mbert ("), rep.html.find("id=\"answers\""));
  EXPECT_LT(rep.html.find("The encoder xlmr (tiny-xlmr) is RANDOMLY"),
            rep.html.find("id=\"answers\""));
  // The configuration lists every encoder by name, not only the first.
  EXPECT_NE(rep.html.find("<li>encoder mbert: tiny-bert ("), std::string::npos);
  EXPECT_NE(rep.html.find("<li>encoder xlmr: tiny-xlmr ("), std::string::npos);
  // The paired table names the encoder with the smaller gap where the interval excludes 0.
  std::string paired;
  for (const auto& [name, csv] : rep.tables) {
    if (name == "compare_gap_difference_mbert_xlmr") paired = csv;
  }
  EXPECT_NE(paired.find("\nhi,0.2,0.18,0.02,0.005,0.035,500,xlmr\n"), std::string::npos) << paired;
  EXPECT_NE(rep.html.find("<td class=\"num\">2.0</td><td>[0.5, 3.5]</td>"), std::string::npos);
  // Unique section ids: every id appears once.
  for (const char* id : {"accuracy_mbert", "accuracy_xlmr", "compare"}) {
    const std::string tag = "<section id=\"" + std::string(id) + "\">";
    size_t n = 0;
    for (size_t p = rep.html.find(tag); p != std::string::npos; p = rep.html.find(tag, p + 1)) ++n;
    EXPECT_EQ(n, 1u) << id;
  }
}

}  // namespace
}  // namespace xlt::report
