"""The pipelines give what the CLI gives on the same inputs: evaluate == `xlt eval`'s
results.json, finetune weights bit-identical to `xlt finetune`'s, the study's results.json, and
embed / align / perplexity / tsne / init-model outputs. Both sides run with one thread, so that
the recorded configuration and the arithmetic order are the same."""

import csv
import json

import numpy as np
import pytest

import xlt
from conftest import DEMO, read_safetensors

DEV = {lang: DEMO / f"dev-{lang}.tsv" for lang in ("en", "es", "fr", "hi")}
TIMING = {"timing", "seconds", "tokens_per_s", "pairs_per_s", "pairs_per_second", "elapsed",
          "seconds_per_step", "train_seconds", "xlt_version", "generated"}


def strip(j, replace=()):
    """`j` without wall-clock fields (and with `replace`d substrings in strings)."""
    if isinstance(j, dict):
        return {k: strip(v, replace) for k, v in j.items() if k not in TIMING}
    if isinstance(j, list):
        return [strip(v, replace) for v in j]
    if isinstance(j, str):
        for a, b in replace:
            j = j.replace(a, b)
    return j


def test_evaluate_equals_cli_eval(cli, tiny_bert, tmp_path):
    args = [f"{k}={v}" for k, v in DEV.items()]
    cli("eval", tiny_bert, *sum((["--data", a] for a in args), []), "--seed", "7", "--samples",
        "40", "--threads", "1", "--no-progress", "--out", tmp_path / "cli")
    want = json.loads((tmp_path / "cli" / "results.json").read_text())
    got = xlt.evaluate(str(tiny_bert), DEV, seed=7, samples=40, threads=1, progress=False,
                       out=tmp_path / "py")
    assert strip(got) == strip(want)
    assert strip(json.loads((tmp_path / "py" / "results.json").read_text())) == strip(want)
    assert (tmp_path / "py" / "predictions.jsonl").read_text() == \
        (tmp_path / "cli" / "predictions.jsonl").read_text()
    # An xlt.Model in memory gives the same numbers.
    model = xlt.Model.from_pretrained(tiny_bert)
    again = xlt.evaluate(model, DEV, seed=7, samples=40, threads=1, progress=False)
    assert strip(again)["languages"] == strip(want)["languages"]
    assert again["model"]["path"] == want["model"]["path"]
    # The fused attention kernel (PyTorch 2.x) and the variable-length path (on the CPU its
    # per-sequence reference) give the eager path's numbers.
    for attention in ("sdpa", "varlen"):
        fused = xlt.evaluate(model, DEV, seed=7, samples=40, threads=1, attention=attention,
                             progress=False)
        for lang, scores in strip(want)["languages"].items():
            assert fused["languages"][lang]["accuracy"] == scores["accuracy"], (attention, lang)


def test_finetune_weights_bit_identical_to_cli(cli, tiny_bert, tmp_path):
    common = dict(max_steps=6, batch_size=16, max_length=64, seed=3, save_every=3, lr=1e-3)
    cli("finetune", tiny_bert, "--train", f"en={DEMO / 'train-en.jsonl'}", "--dev",
        f"en={DEV['en']}", "--out", tmp_path / "cli", "--max-steps", "6", "--batch-size", "16",
        "--max-length", "64", "--seed", "3", "--save-every", "3", "--lr", "1e-3", "--eval-every",
        "3", "--threads", "1", "--quiet")
    # The Python run is also profiled (steps 3-4): the weights must not notice.
    r = xlt.finetune(tiny_bert, {"en": DEMO / "train-en.jsonl"}, tmp_path / "py",
                     dev={"en": DEV["en"]}, eval_every=3, threads=1, progress=False,
                     profile=tmp_path / "prof", profile_skip=2, profile_steps=2, **common)
    assert r["run"]["steps"] == 6
    assert json.loads((tmp_path / "prof" / "profile.json").read_text())["steps"] == 2
    assert "xlt::optimizer_step,cpu,2," in (tmp_path / "prof" / "ops.csv").read_text()
    for sub in ("best", "last"):
        a = (tmp_path / "cli" / sub / "model.safetensors").read_bytes()
        b = (tmp_path / "py" / sub / "model.safetensors").read_bytes()
        assert a == b, f"{sub}/model.safetensors differs"
    want = json.loads((tmp_path / "cli" / "results.json").read_text())
    replace = [(str(tmp_path / "cli"), "OUT"), (str(tmp_path / "py"), "OUT")]
    got = {k: v for k, v in r.items() if k != "run"}
    assert strip(got, replace) == strip(want, replace)


def test_init_model_equals_cli(cli, tmp_path):
    cli("init-model", "--arch", "bert", "--config", DEMO / "bert-config.json", "--out",
        tmp_path / "cli", "--seed", "5", "--num-labels", "3")
    n = xlt.init_model("bert", DEMO / "bert-config.json", tmp_path / "py", seed=5, num_labels=3)
    assert n > 0
    for f in ("model.safetensors", "config.json", "vocab.txt"):
        assert (tmp_path / "cli" / f).read_bytes() == (tmp_path / "py" / f).read_bytes(), f
    with pytest.raises(ValueError, match="xglm is a causal LM"):
        xlt.init_model("xglm", DEMO / "xglm-config.json", tmp_path / "x", num_labels=3)


def test_embed_and_tsne_equal_cli(cli, tiny_bert, tmp_path):
    inputs = {lang: DEMO / f"text-{lang}.txt" for lang in ("en", "es")}
    cli("embed", tiny_bert, *sum((["--input", f"{k}={v}"] for k, v in inputs.items()), []),
        "--layer", "all", "--out", tmp_path / "embed", "--threads", "1", "--no-progress")
    want = read_safetensors(tmp_path / "embed" / "embeddings.safetensors")
    got = xlt.embed(tiny_bert, inputs, threads=1, progress=False)
    assert got["langs"][0] == "en" and len(got["sentences"]) == len(got["langs"])
    for layer, matrix in zip(got["layers"], got["embeddings"]):
        np.testing.assert_array_equal(matrix, want[f"embeddings.layer{layer}"])
    last = got["layers"][-1]
    cli("tsne", tmp_path / "embed" / "embeddings.safetensors", "--tensor", f"embeddings.layer{last}", "--out",
        tmp_path / "tsne", "--iterations", "300", "--seed", "1", "--threads", "1")
    t = xlt.tsne(got["embeddings"][-1], iterations=300, seed=1, threads=1, progress=False)
    with open(tmp_path / "tsne" / "tsne.csv") as f:
        rows = list(csv.DictReader(f))
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    np.testing.assert_allclose(t["embedding"], xy, rtol=1e-8, atol=1e-9)


def test_align_equals_cli(cli, tiny_bert, tmp_path):
    parallel = DEMO / "parallel.tsv"
    cli("align", tiny_bert, "--input", parallel, "--layers", "all", "--out", tmp_path / "a",
        "--threads", "1", "--no-progress")
    with open(tmp_path / "a" / "alignment.csv") as f:
        want = list(csv.DictReader(f))
    got = xlt.align(tiny_bert, parallel, threads=1, progress=False)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g["layer"], g["lang_a"], g["lang_b"]) == (int(w["layer"]), w["lang_a"], w["lang_b"])
        for k in ("retrieval_a2b", "retrieval_b2a", "cos_pairs", "cos_random",
                  "centered_retrieval_a2b", "centered_retrieval_b2a"):
            assert f"{g[k]:.6f}" == w[k], k


def test_perplexity_equals_cli(cli, tiny_xglm, tmp_path):
    texts = {lang: DEMO / f"text-{lang}.txt" for lang in ("en", "hi")}
    cli("perplexity", tiny_xglm, "--text", *[f"{k}={v}" for k, v in texts.items()], "--out",
        tmp_path / "p", "--threads", "1", "--no-progress")
    want = json.loads((tmp_path / "p" / "perplexity.json").read_text())
    got = xlt.perplexity(tiny_xglm, texts, threads=1, progress=False)
    langs = want["languages"] if "languages" in want else want
    for lang in texts:
        assert strip(got[lang]) == strip(langs[lang])
    lines = (DEMO / "text-en.txt").read_text().split("\n")
    from_list = xlt.perplexity(tiny_xglm, {"en": lines}, threads=1, progress=False)
    assert from_list["en"]["perplexity"] == got["en"]["perplexity"]


def test_progress_callback_receives_events(tiny_bert):
    events = []
    xlt.evaluate(tiny_bert, {"en": DEV["en"]}, threads=1, progress=False, callback=events.append)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert events[-1]["done"] == events[-1]["total"] == 60


def test_study_equals_cli(cli, tmp_path):
    cli("study", REPO_DEMO_TOML, "--out", tmp_path / "cli", "--quiet")
    want = json.loads((tmp_path / "cli" / "results.json").read_text())
    got = xlt.study(REPO_DEMO_TOML, out=tmp_path / "py", progress=False)
    replace = [(str(tmp_path / "cli"), "OUT"), (str(tmp_path / "py"), "OUT")]
    assert strip(got, replace) == strip(want, replace)


REPO_DEMO_TOML = DEMO.parent / "demo.toml"


def test_interrupt_from_a_progress_report_propagates(tiny_bert, tmp_path):
    # The path a Ctrl-C takes: raised at a progress report (here the first, before any batch),
    # it unwinds the C++ work, which writes nothing.
    seen = []

    def stop(event):
        seen.append(event["kind"])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        xlt.evaluate(tiny_bert, {"en": DEV["en"]}, threads=1, progress=False, callback=stop,
                     out=tmp_path / "out")
    assert seen == ["start"]
    assert not (tmp_path / "out").exists()
    # The observer is gone afterwards: the next call runs normally and does not report to it.
    assert xlt.evaluate(tiny_bert, {"en": DEV["en"]}, threads=1, progress=False)["languages"]
    assert seen == ["start"]


CTRL_C = """
import os, signal, sys, xlt
model, train, out = sys.argv[1:4]
def interrupt(event):
    # Ctrl-C in the middle of training (the callback runs on the training thread).
    if event["label"] == "finetune" and event["kind"] == "update" and event["done"] >= 2:
        os.kill(os.getpid(), signal.SIGINT)
try:
    xlt.finetune(model, {"en": train}, out, max_steps=400, batch_size=4, max_length=32,
                 save_every=1000, threads=1, progress=False, callback=interrupt)
except KeyboardInterrupt as e:
    print("interrupted:", e)
r = xlt.finetune(model, {"en": train}, out, max_steps=400, batch_size=4, max_length=32,
                 save_every=1000, threads=1, progress=False, resume=True)
print("resumed to", r["run"]["steps"])
"""


def test_ctrl_c_in_finetune_saves_state_then_raises_keyboard_interrupt(tiny_bert, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", CTRL_C, str(tiny_bert),
                        str(DEMO / "train-en.jsonl"), str(tmp_path / "ft")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "interrupted: stopped by SIGINT at step" in r.stdout, r.stdout
    assert "call finetune again with resume=True" in r.stdout
    assert "resumed to 400" in r.stdout


STUDY_CTRL_C = """
import sys, xlt
config, out = sys.argv[1:3]
try:
    xlt.study(config, out=out, progress=False)
except KeyboardInterrupt as e:
    print("interrupted:", e)
r = xlt.study(config, out=out, progress=False)
print("languages:", sorted(r["languages"]) if "languages" in r else sorted(r))
"""


def test_ctrl_c_in_a_study_stops_it_and_the_next_call_resumes(tmp_path):
    # The test hook sends SIGINT after optimizer step 3 of the first fine-tuning, as a Ctrl-C
    # would: the study must stop there (not evaluate a half-trained model), then resume.
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLT_TEST_KILL_RANK="0", XLT_TEST_KILL_STEP="3",
               XLT_TEST_KILL_SIGNAL="INT")
    first = subprocess.run([sys.executable, "-c", STUDY_CTRL_C.split("r = xlt.study")[0],
                            str(REPO_DEMO_TOML), str(tmp_path / "s")],
                           capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "interrupted: stopped by SIGINT in finetune/seed-1 at step 3/" in first.stdout, \
        first.stdout
    assert "call study again with the same arguments" in first.stdout
    unit = tmp_path / "s" / "finetune" / "seed-1"
    assert not (unit / "stage.json").exists() and (unit / "pending.json").exists()
    assert not (tmp_path / "s" / "results.json").exists()
    r = subprocess.run([sys.executable, "-c", STUDY_CTRL_C, str(REPO_DEMO_TOML),
                        str(tmp_path / "s")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((unit / "stage.json").read_text())["resumed"] is True
    assert (tmp_path / "s" / "results.json").exists()


def test_threads_none_leaves_the_setting_and_new_head(cli, tiny_bert, tmp_path):
    torch = pytest.importorskip("torch")
    xlt.set_threads(3)  # more than the free cores of a 1- or 2-core runner
    xlt.evaluate(tiny_bert, {"en": DEV["en"]}, samples=20, progress=False)
    assert torch.get_num_threads() == 3  # threads=None: not reset to the free cores
    xlt.evaluate(tiny_bert, {"en": DEV["en"]}, samples=20, threads=2, progress=False)
    assert torch.get_num_threads() == 2
    # new_head: the path's classifier replaced by one seeded by `seed`, as `xlt eval --new-head`.
    cli("eval", tiny_bert, "--data", f"en={DEV['en']}", "--samples", "40", "--seed", "3",
        "--new-head", "--threads", "1", "--no-progress", "--out", tmp_path / "cli")
    want = json.loads((tmp_path / "cli" / "results.json").read_text())
    got = xlt.evaluate(tiny_bert, {"en": DEV["en"]}, samples=40, seed=3, new_head=True,
                       threads=1, progress=False)
    assert strip(got) == strip(want)
    assert '"new_head": true' in json.dumps(got)
    with pytest.raises(ValueError, match="new_head: an xlt.Model"):
        xlt.evaluate(xlt.Model.from_pretrained(tiny_bert), {"en": DEV["en"]}, new_head=True,
                     progress=False)
    # "es,fr" is two languages, as the CLI's --langs es,fr.
    two = xlt.evaluate(tiny_bert, DEV, langs="es,fr", samples=20, progress=False)
    assert sorted(two["languages"]) == ["es", "fr"]


def test_library_messages_go_through_python_stderr(tiny_bert, capsys):
    # The C++ library's std::cerr lines are written through sys.stderr (a notebook shows them;
    # here pytest captures them) instead of the process's file descriptor 2.
    xlt.evaluate(tiny_bert, {"en": DEV["en"]}, samples=20, verbose=True, progress=False)
    err = capsys.readouterr().err
    assert "xlt eval: en: 20 pairs" in err, err


CONCURRENT = """
import sys, threading, time, xlt
model = sys.argv[1]
seen = {"a": [], "b": []}
def run(name, n):
    xlt.embed(model, sentences=[f"a sentence for call {name}"] * n, batch_size=4, threads=1,
              progress=False, callback=lambda e: seen[name].append((e["label"], e["id"])))
a = threading.Thread(target=run, args=("a", 400))
a.start()
time.sleep(0.05)
run("b", 1600)  # the main thread's call outlives the other
a.join()
ids_a = {i for _, i in seen["a"]}
ids_b = {i for _, i in seen["b"]}
print("ids", len(ids_a), len(ids_b), "shared", len(ids_a & ids_b))
"""


def test_concurrent_calls_each_see_their_own_progress_and_exit_cleanly(tiny_bert):
    # The observer was process-wide: each call installed it over the other's and put back the
    # wrong one, so callbacks got the other call's events and the process aborted at exit.
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", CONCURRENT, str(tiny_bert)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ids 1 1 shared 0" in r.stdout, r.stdout + r.stderr[-2000:]
    assert "sentences" not in r.stderr  # progress=False: no C++ bar on stderr either


def test_a_callback_using_its_calls_model_is_refused_not_a_deadlock(tiny_bert):
    model = xlt.Model.from_pretrained(tiny_bert)

    def use_model(event):
        if event["kind"] == "start":
            model.forward([[1, 2, 3]])

    with pytest.raises(ValueError, match="in use by the call whose progress is being reported"):
        xlt.embed(model, sentences=["a b"] * 8, threads=1, progress=False, callback=use_model)
    # The model is free again afterwards, and another model may be used from a callback.
    other = xlt.Model.from_pretrained(tiny_bert)
    calls = []
    xlt.embed(model, sentences=["a b"] * 8, threads=1, progress=False,
              callback=lambda e: calls.append(other.forward([[1, 2]])["last_hidden_state"].shape))
    assert calls and calls[0][:2] == (1, 2)
    assert model.forward([[1, 2]])["last_hidden_state"].shape[:2] == (1, 2)


def test_evaluate_of_a_model_records_its_own_dtype(tiny_bert):
    model = xlt.Model.from_pretrained(tiny_bert, dtype="bfloat16")
    got = xlt.evaluate(model, {"en": DEV["en"]}, samples=6, threads=1, progress=False)
    assert got["config"]["dtype"] == "bfloat16"
    assert got["config"]["device"] == "cpu"
