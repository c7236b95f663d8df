#!/usr/bin/env bash
# The Qwen3-8B-GSM8K-Synth card end to end on a GPU: synthetic GSM8K-style data (synth + curate, as in
# recipes/synth-gsm8k) -> QLoRA SFT of Qwen3-8B with the card's settings -> merge onto the bf16 base -> GSM8K
# before/after with significance -> GGUF (Q4_K_M) -> the GGUF evaluated by llama.cpp. See README.md beside this.
#
#   WORK       the output folder (default runs/sft-gsm8k-qlora)
#   DATA       training rows [default: $WORK/curated.jsonl, made by recipes/synth-gsm8k/run.sh when missing]
#   DATA_DIR   the benchmark data layout (default ../shared/data/benchmarks beside the checkout)
#   GPUS       GPUs to train on (default 1; more: accelerate launch with recipes/accelerate/ddp.yaml)
#   QUANT      GGUF type (default Q4_K_M)
#   RESUME     set to 1 to continue an interrupted training run (--resume)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${WORK:-runs/sft-gsm8k-qlora}
data=${DATA:-$work/curated.jsonl}
data_dir=${DATA_DIR:-../shared/data/benchmarks}
gpus=${GPUS:-1}
quant=${QUANT:-Q4_K_M}
mathforge=.venv/bin/mathforge
run=$work/run
mkdir -p "$work"

if [ ! -f "$data" ]; then
  # synth (a teacher behind an OpenAI-compatible server: BASE_URL, TEACHER, N) and curate, into $work.
  WORK="$work" DATA_DIR="$data_dir" recipes/synth-gsm8k/run.sh
fi

# Look before spending GPU hours: counts, truncation, and one example with the trained part marked.
"$mathforge" train sft --config recipes/sft-gsm8k-qlora/sft.yaml --data "$data" --dry-run

resume=${RESUME:+--resume}   # RESUME=1: continue an interrupted run from its last checkpoint
if [ "$gpus" -gt 1 ]; then
  # Keep the effective batch at 64: batch-size 8 x grad-accum (8 / GPUs) x GPUs. Only the main process
  # merges and runs the before/after evaluation, after training.
  .venv/bin/accelerate launch --config_file recipes/accelerate/ddp.yaml --num_processes "$gpus" \
    -m mathforge.cli train sft --config recipes/sft-gsm8k-qlora/sft.yaml --data "$data" --out "$run" \
    --grad-accum $((8 / gpus)) --eval-data-dir "$data_dir" $resume
else
  "$mathforge" train sft --config recipes/sft-gsm8k-qlora/sft.yaml --data "$data" --out "$run" \
    --eval-data-dir "$data_dir" $resume
fi
# $run/merged: the adapter merged onto the bf16 base (merge_report.json: the logit check);
# $run/comparison.md: GSM8K before/after with McNemar's test and a bootstrap interval.
cat "$run/comparison.md"

"$mathforge" export "$run/merged" "$work/qwen3-8b-gsm8k-synth-$quant.gguf" --quant "$quant"
"$mathforge" eval --model "$work/qwen3-8b-gsm8k-synth-$quant.gguf" --bench gsm8k --prompt chat \
  --max-new-tokens 1024 --data-dir "$data_dir" --out "$work/eval-gguf"
"$mathforge" compare "$run/eval/after" "$work/eval-gguf"
