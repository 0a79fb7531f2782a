#!/usr/bin/env python3
"""xlt.Tokenizer.encode_batch vs Hugging Face `tokenizers` (Rust) encode_batch, in one process on
one machine: the 55,110 XNLI test pairs of the 11 languages outside the study's seed languages
(ar bg de el ru sw th tr ur vi zh; ../shared/data/xnli/labelled, see SOURCES.md) through the real
mBERT tokenizer.json (../shared/data/bert-base-multilingual-cased). Both use all cores; the best
of --repeat runs counts. Prints a JSON line (tokens/s of each, the ratio) and, with --check,
exits 1 when xlt is slower.

    .venv/bin/python bench/tokenizer_py_bench.py [--repeat 5] [--check]
"""

import argparse
import json
import os
import pathlib
import sys
import time

LANGS = ["ar", "bg", "de", "el", "ru", "sw", "th", "tr", "ur", "vi", "zh"]


def read_pairs(shared):
    pairs = []
    for lang in LANGS:
        path = shared / "data" / "xnli" / "labelled" / f"test-{lang}.tsv"
        with open(path, encoding="utf-8") as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                pairs.append((cols[0], cols[1]))
    return pairs


def best_of(repeat, fn):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = pathlib.Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", default=os.environ.get("XLT_SHARED", repo.parent / "shared"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 when xlt is slower")
    args = parser.parse_args()
    shared = pathlib.Path(args.shared)
    tokenizer_json = shared / "data" / "bert-base-multilingual-cased" / "tokenizer.json"

    import tokenizers
    import xlt

    pairs = read_pairs(shared)
    firsts = [a for a, _ in pairs]
    seconds = [b for _, b in pairs]

    ours = xlt.Tokenizer.from_pretrained(str(tokenizer_json.parent))
    theirs = tokenizers.Tokenizer.from_file(str(tokenizer_json))
    theirs.no_truncation()
    theirs.no_padding()

    # Warm-up, and the same ids on both sides (a benchmark of different work would mean nothing).
    a = ours.encode_batch(firsts[:2000], pairs=seconds[:2000])
    b = theirs.encode_batch(pairs[:2000])
    mismatches = sum(x.input_ids != y.ids for x, y in zip(a, b))

    t_ours, enc_ours = best_of(args.repeat, lambda: ours.encode_batch(firsts, pairs=seconds))
    t_theirs, enc_theirs = best_of(args.repeat, lambda: theirs.encode_batch(pairs))
    tokens_ours = sum(len(e) for e in enc_ours)
    tokens_theirs = sum(len(e.ids) for e in enc_theirs)
    result = {
        "pairs": len(pairs),
        "tokens": tokens_ours,
        "tokens_hf": tokens_theirs,
        "id_mismatches_first_2000": mismatches,
        "xlt_tokens_per_s": tokens_ours / t_ours,
        "hf_tokens_per_s": tokens_theirs / t_theirs,
        "ratio": (tokens_ours / t_ours) / (tokens_theirs / t_theirs),
        "xlt_seconds": t_ours,
        "hf_seconds": t_theirs,
        "cores": os.cpu_count(),
        "tokenizers_version": tokenizers.__version__,
        "xlt_version": xlt.__version__,
    }
    print(json.dumps(result))
    if args.check and result["ratio"] < 1.0:
        print("tokenizer_py_bench: xlt is slower than Hugging Face tokenizers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
