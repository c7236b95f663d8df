#!/usr/bin/env bash
# GSM8K-style synthetic problems, end to end: 200 GSM8K train seeds -> synth with a teacher behind an
# OpenAI-compatible server -> curate (the staged filter) -> a funnel. Run by hand; see docs/data.md.
#
#   BASE_URL   the teacher's server (default http://localhost:8000/v1: `vllm serve Qwen/Qwen2.5-7B-Instruct`)
#   TEACHER    the served model name (default: the one the server serves)
#   N          problems to request (default 1000)
#   DATA_DIR   the benchmark data layout (default ../shared/data/benchmarks beside the checkout)
#   WORK       the output folder (default runs/synth-gsm8k)
set -euo pipefail
cd "$(dirname "$0")/../.."
base_url=${BASE_URL:-http://localhost:8000/v1}
n=${N:-1000}
data_dir=${DATA_DIR:-../shared/data/benchmarks}
work=${WORK:-runs/synth-gsm8k}
mathforge=.venv/bin/mathforge
mkdir -p "$work"

# 200 real GSM8K training problems as seeds (the card's), and the pipeline beside them (it names seeds.jsonl).
head -n 200 "$data_dir/gsm8k_openai/train.jsonl" > "$work/seeds.jsonl"
cp recipes/synth-gsm8k/pipeline.yaml "$work/pipeline.yaml"

# Re-running this resumes: finished requests are never sent again.
"$mathforge" synth --seeds "$work/seeds.jsonl" --backend openai --base-url "$base_url" ${TEACHER:+--teacher "$TEACHER"} \
  --n "$n" --shots 4 --samples 4 --temperature 0.8 --concurrency 32 --out "$work/synth.jsonl"

"$mathforge" curate "$work/synth.jsonl" --config "$work/pipeline.yaml" --data-dir "$data_dir" \
  --out "$work/curated.jsonl" --workers 2

# The curated set against every registered benchmark, as a report (nothing should be left to flag).
"$mathforge" decontam "$work/curated.jsonl" --against all --data-dir "$data_dir"
