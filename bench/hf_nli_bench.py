#!/usr/bin/env python3
"""Hugging Face transformers side of xlt's same-run NLI baselines (scripts/gpu_check.sh).

Evaluates and fine-tunes a sequence-classification checkpoint folder with transformers on the
data xlt is given, the way a transformers user would, and prints one JSON object:

  eval  : tokenizer(premise, hypothesis, truncation=True, max_length) over all pairs, batches in
          file order padded to their longest row (DataCollatorWithPadding), argmax; pairs/s
          counts tokenisation, collation and the forward passes (as `xlt eval`'s pairs_per_s).
  train : one epoch over the training pairs in a Trainer-equivalent loop (RandomSampler with the
          seed, dynamic padding, AdamW lr 2e-5 with weight decay 0.01 off biases/LayerNorm,
          linear schedule, clipping at 1.0, bf16 autocast when asked); tokens/s counts real
          (unpadded) tokens over the steps after the first `--warmup-steps` (steady state).

Versions are pinned in bench/requirements-hf.txt. Usage:
  hf_nli_bench.py --model DIR --device cuda --eval-data test-en.tsv --train-data train.jsonl \
      --batch-sizes 32,256 --dtypes fp32,bf16
"""
import argparse
import csv
import json
import os
import sys
import time

LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}


def read_pairs(path, limit):
    """XNLI-style TSV (premise, hypothesis, label name) or MultiNLI JSONL."""
    pairs = []
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                pairs.append((r["premise"], r["hypothesis"], int(r["label"])))
                if limit and len(pairs) >= limit:
                    break
    else:
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) < 3 or row[2] not in LABELS:
                    continue  # a header line
                pairs.append((row[0], row[1], LABELS[row[2]]))
                if limit and len(pairs) >= limit:
                    break
    if not pairs:
        sys.exit(f"hf_nli_bench: no pairs in {path}")
    return pairs


def sync(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def autocast(torch, device, dtype):
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=dtype == "bf16")


def evaluate(torch, model, tok, collator, pairs, batch, device, dtype, max_length):
    model.eval()
    sync(torch, device)
    t0 = time.perf_counter()
    enc = tok([p for p, _, _ in pairs], [h for _, h, _ in pairs], truncation=True,
              max_length=max_length)
    preds = []
    with torch.no_grad(), autocast(torch, device, dtype):
        for i in range(0, len(pairs), batch):
            feats = [{k: enc[k][j] for k in enc.keys()} for j in range(i, min(i + batch, len(pairs)))]
            b = {k: v.to(device, non_blocking=True) for k, v in collator(feats).items()}
            preds.append(model(**b).logits.argmax(-1))
    preds = torch.cat(preds).cpu()
    sync(torch, device)
    dt = time.perf_counter() - t0
    gold = torch.tensor([y for _, _, y in pairs])
    return {"pairs": len(pairs), "seconds": dt, "pairs_per_s": len(pairs) / dt,
            "accuracy": float((preds == gold).float().mean())}


def train(torch, transformers, model, tok, collator, pairs, batch, device, dtype, max_length,
          seed, warmup_steps):
    torch.manual_seed(seed)
    model.train()
    enc = tok([p for p, _, _ in pairs], [h for _, h, _ in pairs], truncation=True,
              max_length=max_length)
    feats = [dict({k: enc[k][j] for k in enc.keys()}, labels=pairs[j][2]) for j in range(len(pairs))]
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(feats, batch_size=batch, shuffle=True, generator=gen,
                                         collate_fn=collator)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(s in n for s in no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(s in n for s in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=2e-5)
    sched = transformers.get_linear_schedule_with_warmup(opt, 0, len(loader))
    step_tokens, step_seconds, losses = [], [], []
    for b in loader:
        sync(torch, device)
        t0 = time.perf_counter()
        b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
        with autocast(torch, device, dtype):
            loss = model(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())  # synchronises, as Trainer's logging does
        step_seconds.append(time.perf_counter() - t0)
        step_tokens.append(int(b["attention_mask"].sum()))
    steady = slice(min(warmup_steps, len(step_seconds) - 1), None)
    toks, secs = sum(step_tokens[steady]), sum(step_seconds[steady])
    return {"pairs": len(pairs), "steps": len(step_seconds), "real_tokens": sum(step_tokens),
            "seconds": sum(step_seconds), "tokens_per_s": toks / secs if secs else 0.0,
            "steady_from_step": steady.start + 1, "first_loss": losses[0],
            "last_loss": losses[-1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint folder (config, weights, tokenizer)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval-data")
    ap.add_argument("--eval-pairs", type=int, default=0, help="0 = all")
    ap.add_argument("--train-data")
    ap.add_argument("--train-pairs", type=int, default=0, help="0 = all")
    ap.add_argument("--batch-sizes", default="32")
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--warmup-steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--jsonl", help="also append each result to this file as it is measured")
    a = ap.parse_args()

    import torch
    import transformers
    if a.threads:
        torch.set_num_threads(a.threads)
    # The folder's own tokenizer.json: mBERT's tokenizer_config.json names
    # "bert-base-multilingual-cased/tokenizer.json", a path relative to where it was saved.
    kw = {}
    if os.path.exists(os.path.join(a.model, "tokenizer.json")):
        kw["tokenizer_file"] = os.path.join(a.model, "tokenizer.json")
    tok = transformers.AutoTokenizer.from_pretrained(a.model, **kw)
    collator = transformers.DataCollatorWithPadding(tok)
    out = {"implementation": "transformers", "transformers": transformers.__version__,
           "torch": torch.__version__, "device": a.device,
           "device_name": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu",
           "tokenizer": type(tok).__name__, "eval": [], "train": []}
    sink = open(a.jsonl, "a", encoding="utf-8") if a.jsonl else None

    def emit(record):
        print(json.dumps(record), file=sys.stderr, flush=True)
        if sink:
            sink.write(json.dumps(record) + "\n")
            sink.flush()

    emit({"versions": {k: out[k] for k in ("transformers", "torch", "device_name", "tokenizer")}})
    batches = [int(x) for x in a.batch_sizes.split(",")]
    dtypes = a.dtypes.split(",")
    if a.eval_data:
        pairs = read_pairs(a.eval_data, a.eval_pairs)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(a.model).to(a.device)
        evaluate(torch, model, tok, collator, pairs[: max(batches)], max(batches), a.device,
                 "fp32", a.max_length)  # warm-up: CUDA context, kernels, allocator
        for dtype in dtypes:
            for bs in batches:
                r = evaluate(torch, model, tok, collator, pairs, bs, a.device, dtype, a.max_length)
                out["eval"].append(dict(r, batch_size=bs, dtype=dtype))
                emit({"eval": out["eval"][-1]})
        del model
    if a.train_data:
        pairs = read_pairs(a.train_data, a.train_pairs)
        for dtype in dtypes:
            for bs in batches:
                model = transformers.AutoModelForSequenceClassification.from_pretrained(
                    a.model).to(a.device)
                r = train(torch, transformers, model, tok, collator, pairs, bs, a.device, dtype,
                          a.max_length, a.seed, a.warmup_steps)
                out["train"].append(dict(r, batch_size=bs, dtype=dtype))
                emit({"train": out["train"][-1]})
                del model
                if a.device.startswith("cuda"):
                    torch.cuda.empty_cache()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
