"""xlt: zero-shot cross-lingual transfer studies on multilingual transformers (mBERT, XLM-R,
XGLM), from Python. Every function calls the same C++ library as the `xlt` command-line program
(no Python reimplementation) and returns what the matching command writes: ``evaluate`` returns
the dict of ``xlt eval``'s results.json, and so on. See docs/python.md.

Errors: ``ValueError`` for bad input (a malformed file, a wrong option), ``FileNotFoundError`` /
``OSError`` for files, ``RuntimeError`` otherwise, with the messages the CLI prints. Long calls
release the GIL, show tqdm bars in notebooks and terminals (``progress=False`` turns them off,
``callback=f`` receives every progress event) and stop with ``KeyboardInterrupt`` on Ctrl-C
(``finetune`` first saves a resumable state, as the CLI does).
"""

import os

from . import _xlt
from ._progress import ProgressEvents
from ._xlt import Encoding, Tokenizer, __version__, torch_version

__all__ = [
    "Tokenizer",
    "Encoding",
    "Model",
    "evaluate",
    "finetune",
    "embed",
    "tsne",
    "align",
    "perplexity",
    "study",
    "init_model",
    "set_threads",
    "__version__",
]


def set_threads(n=0):
    """Sets libtorch's CPU threads (0 = the cores not already busy); returns the count in use."""
    return _xlt.set_threads(int(n))


def _specs(data, what):
    """LANG=PATH specs from a dict {lang: path}, a list of specs/paths, or one spec/path."""
    if data is None:
        return []
    if isinstance(data, dict):
        return [f"{lang}={os.fspath(path)}" for lang, path in data.items()]
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)]
    try:
        return [os.fspath(d) for d in data]
    except TypeError:
        raise ValueError(f"{what}: expected a dict {{lang: path}}, a path or a list of them") from None


def _langs(langs):
    if langs is None:
        return []
    if isinstance(langs, str):
        return langs.split(",")  # "es,fr" as the CLI's --langs es,fr
    return list(langs)


def _threads(threads):
    # None leaves libtorch's thread count as the process has it (xlt.set_threads, or
    # torch.set_num_threads: one setting for both); a number sets it, 0 = the free cores.
    return -1 if threads is None else int(threads)


def _run(fn, progress, callback, *args):
    events = ProgressEvents(progress, callback)
    try:
        return fn(*args, events)
    finally:
        events.close()


class Model:
    """A Hugging Face checkpoint (BERT, XLM-R, XGLM) loaded into libtorch.

    ``forward`` returns float32 NumPy arrays named as Hugging Face's outputs; with
    ``return_tensors="pt"`` they are ``torch.Tensor`` (through DLPack, no copy). Calls on one model
    are serialised (a model is not safe for concurrent forwards); the GIL is released while it
    computes.
    """

    def __init__(self, handle):
        self._handle = handle

    @classmethod
    def from_pretrained(cls, path, device="cpu", dtype="float32", num_labels=0, new_head=False,
                        seed=42):
        """Loads a folder (config.json + safetensors), a .safetensors file or a cached hub id.
        ``num_labels``: classification labels (0 = config's; a head missing from the checkpoint
        is initialised from ``seed``, as ``xlt forward --num-labels`` does)."""
        return cls(_xlt.Model.from_pretrained(os.fspath(path), device, dtype, int(num_labels),
                                              bool(new_head), int(seed)))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                hidden_states=False, attentions=False, return_tensors="np",
                output_hidden_states=None, output_attentions=None):
        """One forward pass without gradients. Inputs: int arrays/lists/tensors [batch, seq]
        (or [seq]). Returns a dict: logits, last_hidden_state, pooler_output (BERT), loss (with
        labels), hidden_states and attentions (tuples, when asked for; transformers' names
        ``output_hidden_states``/``output_attentions`` work too). ``return_tensors="pt"`` gives
        torch.Tensors sharing the returned float32 CPU arrays' memory."""
        if output_hidden_states is not None:
            hidden_states = output_hidden_states
        if output_attentions is not None:
            attentions = output_attentions
        if return_tensors not in ("np", "pt"):
            raise ValueError(f"return_tensors: expected 'np' or 'pt', got {return_tensors!r}")
        out = self._handle.forward(input_ids, attention_mask, token_type_ids, labels,
                                   bool(hidden_states), bool(attentions))
        if return_tensors == "pt":
            import torch

            def conv(v):
                if isinstance(v, tuple):
                    return tuple(conv(x) for x in v)
                if isinstance(v, float):  # the loss: a 0-d tensor, as transformers returns it
                    return torch.tensor(v, dtype=torch.float32)
                return torch.from_dlpack(v) if hasattr(v, "__dlpack__") else v

            out = {k: conv(v) for k, v in out.items()}
        return out

    __call__ = forward

    def save_pretrained(self, path):
        """Writes config.json, model.safetensors and the tokenizer files into ``path``."""
        self._handle.save_pretrained(os.fspath(path))

    def named_parameters(self):
        """{Hugging Face state-dict name: float32 NumPy copy}."""
        return self._handle.named_parameters()

    config = property(lambda self: self._handle.config)
    model_type = property(lambda self: self._handle.model_type)
    num_labels = property(lambda self: self._handle.num_labels)
    num_layers = property(lambda self: self._handle.num_layers)
    num_parameters = property(lambda self: self._handle.num_parameters)
    device = property(lambda self: self._handle.device)
    dtype = property(lambda self: self._handle.dtype)
    path = property(lambda self: self._handle.path)
    load_report = property(lambda self: self._handle.load_report)

    def __repr__(self):
        return repr(self._handle)


def _model_arg(model):
    return model._handle if isinstance(model, Model) else os.fspath(model)


def evaluate(model, data, langs=None, samples=None, seed=0, batch_size=32, max_length=128,
             format="auto", skip_bad_rows=False, num_labels=3, bootstrap=1000, source_lang="en",
             max_tokens=0, packing=True, attention="auto", sort=True, dtype="float32", device="cpu", threads=None,
             out=None, verbose=False, new_head=False, progress=None, callback=None):
    """``xlt eval``: zero-shot NLI evaluation per language. ``model``: a folder, a hub id or an
    ``xlt.Model``; ``data``: {lang: path}, or specs as ``--data`` takes them; ``langs`` picks
    languages (among a {lang: path} dict's too; one it does not hold is an error). Returns the
    results.json dict (accuracy, bootstrap CIs, macro-F1, confusion, transfer gaps); ``out``
    also writes results.json, results.csv and predictions.jsonl there. ``samples=None`` keeps
    all rows; ``seed`` (issue #18's default 0; ``xlt eval``'s is 42) draws the subset and a new
    head's weights; ``new_head=True`` replaces a path's classifier by a fresh one (``xlt eval
    --new-head``). ``dtype``/``device`` load a path; an ``xlt.Model`` computes as it was loaded
    (results.json records its own). ``threads=None`` keeps libtorch's thread count as the process
    has it (as in every function here; ``xlt.set_threads`` or a number changes it)."""
    return _run(_xlt.evaluate, progress, callback, _model_arg(model), _specs(data, "data"),
                _langs(langs), format, bool(skip_bad_rows), int(samples or 0), int(seed),
                int(num_labels), int(bootstrap), source_lang, int(batch_size), int(max_length),
                int(max_tokens), bool(packing), str(attention), bool(sort), dtype, device, _threads(threads),
                os.fspath(out) if out is not None else "", bool(verbose), bool(new_head))


_FINETUNE_OPTIONS = {
    "tokenizer", "skip_bad_rows", "epochs", "lr", "batch_size", "max_tokens", "packing",
    "attention", "grad_accum", "max_length", "warmup_ratio", "warmup_steps", "weight_decay",
    "max_grad_norm", "seed", "samples", "max_steps", "eval_every", "eval_batch_size", "log_every", "save_every",
    "stop_after", "group_by_length", "new_head", "resume", "overwrite", "bf16",
    "profile", "profile_skip", "profile_steps",
}


def finetune(model, train, out, dev=None, langs=None, format="auto", device="cpu", threads=None,
             progress=None, callback=None, **options):
    """``xlt finetune``: NLI fine-tuning with Hugging Face Trainer semantics into ``out``
    (best/, last/, state/, log.jsonl, results.json). Options as the CLI's flags with '_' for
    '-': epochs=3, lr=2e-5, batch_size=32, max_length=128, seed=42, samples=0, max_steps=0,
    eval_every=0 (= every epoch), save_every=500, new_head, resume, overwrite,
    profile=DIR (profile_skip=3, profile_steps=5; libtorch's profiler), ... Returns
    results.json's dict plus "run" (steps, tokens, seconds). Ctrl-C saves a resumable state,
    then raises KeyboardInterrupt (continue with resume=True)."""
    if "learning_rate" in options:  # the study config's and transformers' name for lr
        if "lr" in options:
            raise TypeError("finetune() got both lr and learning_rate")
        options["lr"] = options.pop("learning_rate")
    unknown = sorted(set(options) - _FINETUNE_OPTIONS)
    if unknown:
        raise TypeError(f"finetune() got unexpected options: {', '.join(unknown)}")
    if "eval_every" in options and options["eval_every"] == "epoch":
        options["eval_every"] = 0
    # None is the option's default, as for the keyword arguments above (profile=None, ...).
    options = {k: v for k, v in options.items() if v is not None}
    if options.get("profile") is not None:
        options["profile"] = os.fspath(options["profile"])
    return _run(_xlt.finetune, progress, callback, os.fspath(model), _specs(train, "train"),
                os.fspath(out), _specs(dev, "dev"), _langs(langs), format, options, device,
                _threads(threads))


def embed(model, inputs=None, sentences=None, layers="all", pooling="mean", special="exclude",
          batch_size=32, max_length=128, tokenizer=None, dtype="float32", device="cpu",
          threads=None, progress=None, callback=None):
    """``xlt embed``: pooled sentence embeddings. ``inputs``: {lang: path} / LANG=FILE specs, or
    ``sentences``: a list of str. Returns {"layers": [...], "embeddings": [array [n, hidden]
    per layer], "num_tokens", "langs", "sentences"}."""
    if isinstance(sentences, (str, bytes)):
        # list("hello") would embed five one-letter sentences.
        raise ValueError("sentences: expected a list of str, got one str (wrap it: [text])")
    return _run(_xlt.embed, progress, callback, _model_arg(model), _specs(inputs, "inputs"),
                list(sentences or []), str(layers), pooling, special, int(batch_size),
                int(max_length), os.fspath(tokenizer) if tokenizer else "", dtype, device,
                _threads(threads))


def tsne(x, perplexity=30.0, iterations=1000, init="pca", seed=0, method="auto", theta=0.5,
         threads=None, progress=None, callback=None):
    """``xlt tsne``: a 2-D t-SNE map of the rows of ``x`` ([n, dim]; scikit-learn's algorithm).
    Returns {"embedding": array [n, 2], "kl_divergence", "iterations", "method", ...}."""
    import numpy as np

    return _run(_xlt.tsne, progress, callback, np.asarray(x, dtype=np.float32),
                float(perplexity), int(iterations), init, int(seed), method, float(theta),
                int(threads or 0))


def align(model, inputs, langs=None, layers="all", pooling="mean", special="exclude",
          batch_size=32, max_length=128, max_sentences=-1, tokenizer=None, dtype="float32",
          device="cpu", threads=None, progress=None, callback=None):
    """``xlt align``: cross-lingual alignment per layer and language pair on parallel text
    (``inputs``: a parallel TSV, or {lang: file}). Returns alignment.csv's rows as dicts."""
    return _run(_xlt.align, progress, callback, _model_arg(model), _specs(inputs, "inputs"),
                _langs(langs), str(layers), pooling, special, int(batch_size), int(max_length),
                int(max_sentences), os.fspath(tokenizer) if tokenizer else "", dtype, device,
                _threads(threads))


def perplexity(model, texts, max_length=0, stride=0, batch_size=8, join="stream",
               dtype="float32", device="cpu", threads=None, progress=None, callback=None):
    """``xlt perplexity``: per-language perplexity of a causal LM (XGLM). ``texts``: {lang: path
    or list of lines}. Returns {lang: {perplexity, loss, bits_per_byte, bits_per_char, ...}}."""
    if not isinstance(texts, dict):
        raise ValueError("texts: expected a dict {lang: path or list of lines}")
    values = [v if isinstance(v, (str, os.PathLike)) else list(v) for v in texts.values()]
    return _run(_xlt.perplexity, progress, callback, _model_arg(model), list(texts), values,
                int(max_length), int(stride), int(batch_size), join, dtype, device, _threads(threads))


def study(config_path, out=None, stages=None, overwrite=False, threads=None, device="",
          progress=None, callback=None):
    """``xlt study``: the whole study of a TOML config into ``out`` (default: the config's).
    Returns the study's results.json dict (None when the report stage was not run). Ctrl-C
    during fine-tuning saves that unit's state and raises KeyboardInterrupt; calling study
    again with the same arguments resumes it."""
    return _run(_xlt.study, progress, callback, os.fspath(config_path),
                os.fspath(out) if out is not None else "", _langs(stages), bool(overwrite),
                _threads(threads), device)


def init_model(arch, config, out, seed=42, num_labels=0):
    """``xlt init-model``: a randomly initialised model (HF init scheme) with the sizes of
    ``config`` (config.json or its folder), saved in HF layout to ``out``. Returns its number of
    parameters."""
    return _xlt.init_model(arch, os.fspath(config), os.fspath(out), int(seed), int(num_labels))
