#!/usr/bin/env bash
# The fine-tune -> evaluate loop on 2 CPU cores: LoRA SFT of the packaged Gemma 3 270M on
# `arith` training problems in the card's format, before/after accuracy on held-out `arith` items (with
# McNemar's test), the adapter merged, exported to GGUF, and the GGUF evaluated by the llama.cpp engine.
# docs/train.md (section 11) has the figures measured with these settings and what they cost in time.
#
#   N_TRAIN   arith training problems (default 300; one epoch at batch 4 = 75 steps)
#   N_EVAL    held-out arith test items for every evaluation (default 40)
#   QUANT     GGUF type (default Q8_0)
#   WORK      the output folder (default runs/sft-arith; an existing run there is replaced)
set -euo pipefail
cd "$(dirname "$0")/../.."
n_train=${N_TRAIN:-300}
n_eval=${N_EVAL:-40}
quant=${QUANT:-Q8_0}
work=${WORK:-runs/sft-arith}
mathforge=.venv/bin/mathforge
run=$work/run
gguf=$work/gemma3-270m-arith-$quant.gguf
mkdir -p "$work"
: > "$work/timings.txt"
stage() {  # stage NAME COMMAND...: run it, and append its wall seconds to timings.txt
  local name=$1 started=$SECONDS
  shift
  "$@"
  echo "$name $((SECONDS - started))s" | tee -a "$work/timings.txt"
}

# Training rows from arith's train split (the test split, which eval reads, is disjoint by construction).
stage data .venv/bin/python -c "
import json, sys
from mathforge.benchmarks.arith import generate
rows = generate($n_train, seed=0, split='train')
with open(sys.argv[1], 'w') as out:
    out.writelines(json.dumps({'question': r['question'], 'answer': r['answer']}) + '\n' for r in rows)
" "$work/train.jsonl"

# Training, then the merge into $run/merged and the base and the merged model evaluated on the same items
# (transformers, greedy, eval's zero-shot prompt = the training prompt); $run/comparison.md is the table.
stage train+merge+before/after "$mathforge" train sft --config recipes/sft-arith/sft.yaml \
  --data "$work/train.jsonl" --out "$run" --eval-limit "$n_eval" --fresh

# Where that stage's time went (training loop, merge with its check, generation of each evaluation).
.venv/bin/python - "$run" >> "$work/timings.txt" <<'PY'
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
summary = json.loads((run / "train_summary.json").read_text())
print(f"  training loop {summary['seconds']:.0f}s ({summary['steps']} steps, final loss {summary['final_loss']:.3f})")
merge = json.loads((run / "merged" / "merge_report.json").read_text())
print(f"  merge {merge['seconds']:.0f}s (largest logit difference {merge['max_abs_logit_diff']:.2g})")
for side in ("before", "after"):
    for metrics in sorted((run / "eval" / side).rglob("metrics.json")):
        m = json.loads(metrics.read_text())
        print(f"  eval {side}: generation {m['wall_seconds']:.0f}s, accuracy {m['acc']:.1f}%")
PY
tail -n 4 "$work/timings.txt"

stage export "$mathforge" export "$run/merged" "$gguf" --quant "$quant"

stage eval-gguf "$mathforge" eval --model "$gguf" --bench arith --prompt zero-shot --limit "$n_eval" \
  --max-new-tokens 192 --out "$work/eval-gguf"

# The merged model under transformers against its GGUF under llama.cpp, item by item.
"$mathforge" compare "$run/eval/after" "$work/eval-gguf" || true
echo "total $SECONDS s" | tee -a "$work/timings.txt"
cat "$run/comparison.md"
