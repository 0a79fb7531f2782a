#!/usr/bin/env bash
# Benchmark of `xlt eval`: 1,000 XNLI dev pairs per language for en/es/fr/hi with the real mBERT
# tokenizer and a randomly initialised model of mBERT-base shape, on a fixed thread count, with
# length-sorted batches (default) against the naive data order (--no-sort) measured in the same
# run. Prints wall time and pairs/s for both and their ratio.
#
# Usage: scripts/bench_eval.sh [XLT_BINARY] [THREADS] [SAMPLES]
#   defaults: build/xlt, 2 threads, 1000 pairs per language. XLT_SHARED overrides ../shared.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
xlt="${1:-$here/build/xlt}"
threads="${2:-2}"
samples="${3:-1000}"
shared="${XLT_SHARED:-$here/../shared}"
mbert="$shared/data/bert-base-multilingual-cased"
xnli="$shared/data/xnli/xtreme_format"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for f in "$mbert/config.json" "$xnli/dev-en.tsv"; do
  [[ -e "$f" ]] || { echo "bench_eval: missing $f (set XLT_SHARED)" >&2; exit 2; }
done

# init-model copies the tokenizer files that sit beside the config into the model folder.
"$xlt" init-model --arch bert --config "$mbert/config.json" --out "$work/model" \
  --num-labels 3 --seed 1 >&2

data=()
for l in en es fr hi; do data+=(--data "$l=$xnli/dev-$l.tsv"); done

run() {  # $1 = name, rest = extra flags
  local name="$1"; shift
  local start end
  start=$(date +%s.%N)
  "$xlt" eval "$work/model" "${data[@]}" --samples "$samples" --seed 7 --batch-size 32 \
    --max-length 128 --threads "$threads" --no-progress --out "$work/$name" "$@" \
    > "$work/$name.table" 2> "$work/$name.log"
  end=$(date +%s.%N)
  python3 - "$work/$name/results.json" "$name" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["timing"]
pairs = sum(v["n"] for v in r["data"].values())
model_s = sum(v["seconds"] for v in t.values())
tok = sum(v["tokens"] for v in t.values()); padded = sum(v["padded_tokens"] for v in t.values())
wall = float(sys.argv[4]) - float(sys.argv[3])
print(f"{sys.argv[2]:<8} pairs={pairs} wall_s={wall:.1f} eval_s={model_s:.1f} "
      f"pairs_per_s={pairs / model_s:.2f} tokens={tok} padded_tokens={padded} "
      f"padding={100 * (1 - tok / padded):.1f}%")
PY
}

echo "xlt eval benchmark: mBERT-base shape (random init), $samples pairs x 4 languages," \
     "$threads threads, batch 32, max_length 128"
sorted_line=$(run sorted)
echo "$sorted_line"
naive_line=$(run naive --no-sort)
echo "$naive_line"
s=$(sed -E 's/.*pairs_per_s=([0-9.]+).*/\1/' <<<"$sorted_line")
n=$(sed -E 's/.*pairs_per_s=([0-9.]+).*/\1/' <<<"$naive_line")
python3 -c "print(f'speed-up from length sorting: {float($s) / float($n):.2f}x')"
# Same predictions either way (sorting only changes padding).
python3 - "$work/sorted/predictions.jsonl" "$work/naive/predictions.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
same = sum(x["pred"] == y["pred"] for x, y in zip(a, b))
diff = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x["probs"], y["probs"]))
print(f"predictions identical: {same}/{len(a)}; max |prob difference| {diff:.2e}")
PY
