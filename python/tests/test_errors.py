"""Errors map to Python's types with the CLI's messages: bad input -> ValueError, a missing file
-> FileNotFoundError, other file problems -> OSError."""

import pytest

import xlt
from conftest import DEMO


def test_missing_model_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        xlt.Model.from_pretrained(tmp_path / "nothing")


def test_missing_data_is_file_not_found(tiny_bert, tmp_path):
    with pytest.raises(FileNotFoundError, match="file not found"):
        xlt.evaluate(tiny_bert, {"en": tmp_path / "missing.tsv"}, progress=False)


def test_bad_tokenizer_is_value_error(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n")
    with pytest.raises(ValueError, match="appears twice"):
        xlt.Tokenizer.from_pretrained(tmp_path / "vocab.txt")  # a path-like works too


def test_bad_options_are_value_errors(tiny_bert):
    with pytest.raises(ValueError, match="--device"):
        xlt.Model.from_pretrained(tiny_bert, device="tpu")
    with pytest.raises(ValueError, match="format"):
        xlt.evaluate(tiny_bert, {"en": DEMO / "dev-en.tsv"}, format="nope", progress=False)
    with pytest.raises(ValueError, match="expected auto, eager, sdpa or varlen"):
        xlt.evaluate(tiny_bert, {"en": DEMO / "dev-en.tsv"}, attention="flash", progress=False)
    with pytest.raises(ValueError, match="attention 'flash'"):
        xlt.finetune(tiny_bert, {"en": DEMO / "dev-en.tsv"}, "unused", attention="flash",
                     progress=False)
    model = xlt.Model.from_pretrained(tiny_bert)
    with pytest.raises(ValueError, match="input_ids"):
        model.forward([[0.5, 1.5]])
    with pytest.raises(ValueError, match="attention_mask"):
        model.forward([[1, 2, 3]], attention_mask=[[1, 1]])


def test_causal_lm_only_for_perplexity(tiny_bert):
    with pytest.raises(ValueError, match="causal language model"):
        xlt.perplexity(tiny_bert, {"en": DEMO / "text-en.txt"}, progress=False)


def test_output_onto_a_file_is_a_bad_argument(tiny_bert, tmp_path):
    # The CLI's usage error (exit 1) for `--out FILE`: a ValueError, and the file is kept.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="out .*file exists and is not a folder"):
        xlt.evaluate(tiny_bert, {"en": DEMO / "dev-en.tsv"}, out=blocker, progress=False)
    assert blocker.read_text() == "x"


def test_langs_pick_among_language_paths_and_a_failed_call_leaves_no_empty_out(tiny_bert,
                                                                              tmp_path):
    data = {lang: DEMO / f"dev-{lang}.tsv" for lang in ("en", "es", "fr")}
    result = xlt.evaluate(tiny_bert, data, langs="es", progress=False)
    assert sorted(result["languages"]) == ["es"]
    out = tmp_path / "runs" / "typo"
    with pytest.raises(ValueError, match="--langs names 'esp', which no --data LANG=PATH value"):
        xlt.evaluate(tiny_bert, data, langs="esp", out=out, progress=False)
    assert not (tmp_path / "runs").exists()


def test_one_string_as_sentences_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="expected a list of str, got one str"):
        xlt.embed(tiny_bert, sentences="hello", progress=False)


def test_saving_onto_a_file_is_refused_and_keeps_it(tiny_bert, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    model = xlt.Model.from_pretrained(tiny_bert)
    with pytest.raises(OSError, match="exists and is not a folder"):
        model.save_pretrained(notes)
    assert notes.read_text() == "mine"


def test_wrong_option_types_name_the_option(tiny_bert, tmp_path):
    train = {"en": DEMO / "train-en.jsonl"}
    with pytest.raises(ValueError, match=r"finetune: epochs must be an int, got 1\.5"):
        xlt.finetune(tiny_bert, train, tmp_path / "a", epochs=1.5, progress=False)
    with pytest.raises(ValueError, match="finetune: seed must be a non-negative int, got -1"):
        xlt.finetune(tiny_bert, train, tmp_path / "b", seed=-1, progress=False)
    with pytest.raises(ValueError, match="finetune: lr must be a number, got '1e-3'"):
        xlt.finetune(tiny_bert, train, tmp_path / "c", lr="1e-3", progress=False)
    assert not (tmp_path / "a").exists()


def test_perplexity_lines_must_be_strings(tiny_xglm):
    with pytest.raises(ValueError, match=r"texts\[en\]: expected a path or a list of str"):
        xlt.perplexity(tiny_xglm, {"en": ["a", 3]}, progress=False)


def test_thread_counts_above_the_cli_bound_are_refused():
    with pytest.raises(ValueError, match="threads: 1000000 is more than 1024"):
        xlt.set_threads(10**6)


def test_missing_inputs_are_file_not_found(tiny_bert, tmp_path):
    # Files read through the library's generic readers (sentence lists, safetensors) too.
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        xlt.embed(tiny_bert, {"en": tmp_path / "missing.txt"}, progress=False)
    with pytest.raises(FileNotFoundError, match="no-such.tsv"):
        xlt.align(tiny_bert, tmp_path / "no-such.tsv", progress=False)


def test_negative_and_none_arguments(tiny_bert, tmp_path):
    # Negative seeds and lengths are ValueErrors naming the argument (they were pybind
    # TypeErrors with the whole signature); None means the default everywhere.
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        xlt.evaluate(tiny_bert, {"en": DEMO / "dev-en.tsv"}, seed=-1, progress=False)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -2"):
        xlt.Model.from_pretrained(tiny_bert, seed=-2)
    tok = xlt.Tokenizer.from_pretrained(tiny_bert)
    with pytest.raises(ValueError, match="max_length must be >= 1, got -1"):
        tok.encode("a b", max_length=-1)
    with pytest.raises(ValueError, match="max_length must be >= 1, got 0"):
        tok.encode_batch(["a b"], max_length=0)
    # profile=None / tokenizer=None are the defaults: the call gets as far as the missing data.
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        xlt.finetune(tiny_bert, {"en": tmp_path / "missing.jsonl"}, tmp_path / "out",
                     profile=None, tokenizer=None, samples=None, progress=False)
    assert xlt.tsne([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], perplexity=1.5,
                    iterations=250, threads=None, progress=False)["embedding"].shape == (4, 2)


def test_empty_inputs_say_what_is_missing(tiny_bert):
    with pytest.raises(ValueError, match="nothing to embed"):
        xlt.embed(tiny_bert, sentences=[], progress=False)
    model = xlt.Model.from_pretrained(tiny_bert)
    import numpy as np

    with pytest.raises(ValueError, match=r"input_ids: an empty batch \(shape \[0, 0\]\)"):
        model.forward(np.zeros((0, 0), dtype=np.int64))
    with pytest.raises(ValueError, match=r"an empty batch \(shape \[1, 0\]\)"):
        model.forward(np.zeros((1, 0), dtype=np.int64))


def test_seeds_take_the_whole_unsigned_range(tiny_bert):
    assert xlt.Model.from_pretrained(tiny_bert, seed=2**64 - 1).num_labels >= 1
    with pytest.raises(ValueError, match=r"seed must be below 2\*\*64"):
        xlt.Model.from_pretrained(tiny_bert, seed=2**64)
