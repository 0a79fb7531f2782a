#!/usr/bin/env python3
"""Gathers what scripts/gpu_check.sh has produced so far into gpu_check.json (atomically) and
prints a summary. Called after every step, so a run stopped by a time limit still leaves every
figure it reached. Reads, under the check folder:
  info.json            GPU, versions, mode
  steps.jsonl          {"step", "ok", "seconds"} per step
  parity-*.log         gtest output of the parity suite ([parity] lines, PASSED/FAILED)
  xlt-eval-B-DTYPE/results.json, xlt-train-B-DTYPE/log.jsonl   xlt's own figures
  hf.jsonl             the Hugging Face side, one {"eval": ...} or {"train": ...} per line
  profile-KIND-B-DTYPE/profile.json   `--profile` summaries (ms per step, device busy share,
                       the operators and kernels that take the time); ops.csv beside it gives
                       the host-device synchronisations per step
  study/               `xlt study` on the original study's workload: its wall time (steps.jsonl)
                       and each unit's seconds (UNIT/stage.json)
Usage: gpu_check_collect.py CHECK_DIR OUT_JSON
"""
import csv
import glob
import json
import os
import re
import statistics
import sys


# CUDA runtime calls that make the host wait for the device (PyTorch's blocking copies are a
# cudaMemcpyAsync followed by cudaStreamSynchronize).
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize",
              "cudaMemcpy")


def host_syncs(ops_csv, steps):
    """Synchronising CUDA runtime calls and .item() reads (aten::_local_scalar_dense) per step in a
    profile's ops.csv. The profiler's own closing synchronisation (one cudaStreamSynchronize, which
    makes the window end between steps on the device too) is not counted. None without the file."""
    try:
        with open(ops_csv, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    try:
        syncs = sum(int(r["calls"]) for r in rows if r["name"] in SYNC_CALLS)
        items = sum(int(r["calls"]) for r in rows if r["name"] == "aten::_local_scalar_dense")
    except (KeyError, ValueError):
        return None
    steps = max(int(steps or 1), 1)
    return {"host_syncs_per_step": round(max(syncs - 1, 0) / steps, 2),
            "item_reads_per_step": round(items / steps, 2)}


def read_json(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_jsonl(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return rows


PARITY = re.compile(r"^\[parity\] (\S+) (.+?) max\|diff\|(?:/max\|ref\|)? ([0-9.eE+-]+)")


def parity(path):
    """Worst difference per fixture and kind (forward / gradient), and the gtest verdict."""
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return None
    worst = {}
    for line in text.splitlines():
        m = PARITY.match(line)
        if not m:
            continue
        fixture, key, d = m.group(1), m.group(2), float(m.group(3))
        kind = "gradient_rel" if key.startswith(("grad", "adamw")) else "forward_abs"
        w = worst.setdefault(fixture, {})
        if d > w.get(kind, {}).get("max_diff", -1):
            w[kind] = {"max_diff": d, "tensor": key}
    passed = re.search(r"\[  PASSED  \] (\d+) test", text)
    failed = re.findall(r"^\[  FAILED  \] (\S+)", text, re.M)
    return {"passed": int(passed.group(1)) if passed else 0,
            "failed": sorted(set(f for f in failed if "." in f)), "worst": worst}


def xlt_eval(folder):
    r = read_json(os.path.join(folder, "results.json"))
    if not r:
        return None
    lang = next(iter(r.get("timing", {})), None)
    t = r.get("timing", {}).get(lang, {})
    acc = r.get("languages", {}).get(lang, {}).get("accuracy") if isinstance(
        r.get("languages"), dict) else None
    return {"pairs_per_s": t.get("pairs_per_s"), "seconds": t.get("seconds"), "accuracy": acc}


MULTINLI_PAIRS = 392702  # MultiNLI's training split


def xlt_train(folder):
    rows = [r for r in read_jsonl(os.path.join(folder, "log.jsonl")) if r.get("type") == "train"]
    if not rows:
        return None
    # Steady state: the logging windows after the first (CUDA context, allocator, autotuning).
    steady = [r["tokens_per_s"] for r in rows[1:]] or [rows[0]["tokens_per_s"]]
    res = {"tokens_per_s": statistics.median(steady), "steps": rows[-1].get("step"),
           "first_loss": rows[0].get("loss"), "last_loss": rows[-1].get("loss"),
           "windows": len(steady)}
    # The shared data hold a 10k-pair MultiNLI sample: a full epoch's time is estimated from the
    # sample's real tokens per pair at the steady rate (start-up and evaluation not counted).
    data = (read_json(os.path.join(folder, "train_config.json"), {}).get("data") or {}).get(
        "train") or {}
    if data.get("examples") and data.get("tokens") and res["tokens_per_s"]:
        tokens_per_pair = data["tokens"] / data["examples"]
        res["tokens_per_pair"] = round(tokens_per_pair, 2)
        res["multinli_epoch_estimate_s"] = round(
            MULTINLI_PAIRS * tokens_per_pair / res["tokens_per_s"], 1)
    return res


def study(check, steps):
    """The study step's wall time and where it went, per stage (units' own seconds)."""
    step = next((s for s in steps if s.get("step") == "study"), None)
    units = {}
    for path in glob.glob(os.path.join(check, "study", "**", "stage.json"), recursive=True):
        rec = read_json(path, {})
        unit = os.path.relpath(os.path.dirname(path), os.path.join(check, "study"))
        if isinstance(rec.get("seconds"), (int, float)):
            units[unit] = round(rec["seconds"], 2)
    if not step and not units:
        return None
    by_stage = {}
    for unit, secs in units.items():
        stage = unit.split(os.sep)[0]
        by_stage[stage] = round(by_stage.get(stage, 0) + secs, 2)
    return {"ok": step.get("ok") if step else None, "seconds": step.get("seconds") if step else None,
            "report": os.path.exists(os.path.join(check, "study", "report.html")),
            "stage_seconds": dict(sorted(by_stage.items(), key=lambda kv: -kv[1])),
            "unit_seconds": dict(sorted(units.items()))}


def train_flops_per_token(config):
    """6 x the non-embedding parameters of a BERT classifier (forward 2, backward 4 per parameter
    and token); attention's score products and the embedding lookups are not counted."""
    if not config:
        return None
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    per_layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h  # QKV+out, FFN, two LayerNorms
    params = layers * per_layer + h * h + h + 3 * h + 3  # pooler, 3-way classifier
    return 6 * params


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def main():
    check, out = sys.argv[1], sys.argv[2]
    res = read_json(os.path.join(check, "info.json"), {})
    res["steps"] = read_jsonl(os.path.join(check, "steps.jsonl"))
    res["parity"] = {os.path.basename(p)[7:-4]: parity(p)
                     for p in sorted(glob.glob(os.path.join(check, "parity-*.log")))}
    hf = read_jsonl(os.path.join(check, "hf.jsonl"))
    hf_eval = {(r["eval"]["batch_size"], r["eval"]["dtype"]): r["eval"] for r in hf if "eval" in r}
    hf_train = {(r["train"]["batch_size"], r["train"]["dtype"]): r["train"] for r in hf
                if "train" in r}
    res["hf_versions"] = next((r["versions"] for r in hf if "versions" in r), None)

    def runs(kind, read, hf_rows, unit):
        rows = []
        for folder in sorted(glob.glob(os.path.join(check, f"xlt-{kind}-*"))):
            _, _, bs, rest = os.path.basename(folder).split("-", 3)
            dtype, _, variant = rest.partition("-")  # e.g. bf16-padded: --no-packing
            x = read(folder)
            h = hf_rows.get((int(bs), dtype))
            rows.append({"batch_size": int(bs), "dtype": dtype, "variant": variant or "packed",
                         "xlt": x, "hf": h,
                         "xlt_over_hf": ratio(x and x.get(unit), h and h.get(unit))})
        return sorted(rows, key=lambda r: (r["dtype"] != "fp32", r["batch_size"], r["variant"]))

    res["eval"] = runs("eval", xlt_eval, hf_eval, "pairs_per_s")
    res["train"] = runs("train", xlt_train, hf_train, "tokens_per_s")
    res["peak"] = read_json(os.path.join(check, "peak.json"))
    res["flops_per_token"] = train_flops_per_token(
        read_json(os.path.join(check, "mbert-config", "config.json")))
    peak_tflops = (res["peak"] or {}).get("bf16_tflops")
    for r in res["train"]:
        for side in ("xlt", "hf"):
            tps = (r[side] or {}).get("tokens_per_s")
            if tps and peak_tflops and res["flops_per_token"]:
                r[side]["frac_of_bf16_peak"] = round(
                    tps * res["flops_per_token"] / (peak_tflops * 1e12), 4)
    res["profiles"] = {}
    for path in sorted(glob.glob(os.path.join(check, "profile-*", "profile.json"))):
        p = read_json(path)
        if p:
            if str(p.get("device", "cpu")).startswith("cuda"):
                p.update(host_syncs(os.path.join(os.path.dirname(path), "ops.csv"),
                                    p.get("steps")) or {})
            res["profiles"][os.path.basename(os.path.dirname(path))[8:]] = p
    res["study"] = study(check, res["steps"])
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    os.replace(tmp, out)

    lines = []
    for name, p in res["parity"].items():
        if p:
            worst = {k: max((w.get(k, {}).get("max_diff", 0) for w in p["worst"].values()),
                            default=0) for k in ("forward_abs", "gradient_rel")}
            lines.append(f"  parity {name}: {p['passed']} passed, {len(p['failed'])} failed; worst "
                         f"forward {worst['forward_abs']:.2e} abs, gradient "
                         f"{worst['gradient_rel']:.2e} rel")
    for kind, unit in (("eval", "pairs_per_s"), ("train", "tokens_per_s")):
        for r in res[kind]:
            x = (r["xlt"] or {}).get(unit)
            h = (r["hf"] or {}).get(unit)
            frac = (r["xlt"] or {}).get("frac_of_bf16_peak")
            lines.append(f"  {kind} batch {r['batch_size']} {r['dtype']} {r['variant']}: xlt "
                         f"{x and round(x)} HF "
                         f"{h and round(h)} {unit}, xlt/HF {r['xlt_over_hf']}" +
                         (f", xlt at {100 * frac:.1f} % of the bf16 peak" if frac else ""))
    for name, p in res["profiles"].items():
        steps = max(p.get("steps") or 1, 1)
        top = [o for o in p.get("ops", []) if o.get("device")][:3] or p.get("ops", [])[:3]
        lines.append(f"  profile {name}: {p.get('wall_ms_per_step', 0):.2f} ms/step, device busy "
                     f"{100 * p.get('device_busy_fraction', 0):.1f} %, "
                     f"{p.get('device_events', 0) // steps} device events/step" +
                     (f", {p['host_syncs_per_step']} host syncs/step "
                      f"({p['item_reads_per_step']} .item())" if "host_syncs_per_step" in p else "")
                     + "; top: " +
                     ", ".join(f"{o['name'][:40]} {o['self_ms_per_step']:.2f} ms" for o in top))
    epochs = [r for r in res["train"] if (r["xlt"] or {}).get("multinli_epoch_estimate_s")]
    if epochs:
        best = min(epochs, key=lambda r: r["xlt"]["multinli_epoch_estimate_s"])
        lines.append(f"  MultiNLI epoch ({MULTINLI_PAIRS} pairs) estimated "
                     f"{best['xlt']['multinli_epoch_estimate_s']} s at xlt's steady rate (batch "
                     f"{best['batch_size']} {best['dtype']} {best['variant']}; target < 180 s)")
    s = res.get("study")
    if s and s.get("seconds") is not None:
        lines.append(f"  study: {s['seconds']} s wall, ok {s['ok']}; by stage: " +
                     ", ".join(f"{k} {v:.1f} s" for k, v in s["stage_seconds"].items()))
    # Only what the last step added: the log then reads as the run went.
    seen_path = os.path.join(check, "printed.txt")
    try:
        seen = set(open(seen_path, encoding="utf-8").read().splitlines())
    except OSError:
        seen = set()
    for line in lines:
        if line not in seen:
            print(line)
    with open(seen_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
