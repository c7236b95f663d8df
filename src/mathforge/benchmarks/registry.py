"""The benchmark registry: every benchmark mathforge knows, as a declaration.

Local layout (`--data-dir`): the folder and file names of math-evaluation-harness / Qwen2.5-Math `data/`
(see ../shared/data/benchmarks/README.md). Hub sources are the public HF datasets for users with internet;
a benchmark with no trustworthy hub copy has `hub=None` and needs `--data-dir`.
"""

from __future__ import annotations

from mathforge.benchmarks.spec import BenchmarkSpec, FileSource, HubSource, Split
from mathforge.errors import MathforgeError, did_you_mean

_MATH_SUBJECT_CONFIGS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


def _local(folder: str, *files: str) -> FileSource:
    return FileSource(folder=folder, files=files or ("test.jsonl",))


_SPECS: list[BenchmarkSpec] = [
    BenchmarkSpec(
        name="arith",
        description=(
            "Built-in seeded multi-step grade-school word problems (GSM8K style; 1000 items, the first 50 "
            "unless --limit says otherwise); needs no data."
        ),
        test=Split(),
        train=Split(),
        question_template="{question}",
        answer_field="answer",
        gold_rules=("after_hashes",),
        solution_field="answer",
        answer_type="number",
        subsets={"template": "template", "steps": "steps"},
        id_field="id",
        generator="arith",
        size=1000,
        default_limit=50,
        max_new_tokens=256,
    ),
    BenchmarkSpec(
        name="gsm8k",
        description="GSM8K test (1319 grade-school word problems).",
        test=Split(local=_local("gsm8k"), hub=HubSource(path="openai/gsm8k", name="main", split="test")),
        train=Split(
            local=_local("gsm8k_openai", "train.jsonl"),
            hub=HubSource(path="openai/gsm8k", name="main", split="train"),
        ),
        answer_field="answer",
        gold_rules=("after_hashes",),
        solution_field="answer",
        answer_type="number",
        id_field="idx",
        prompt_file="gsm8k",
    ),
    BenchmarkSpec(
        name="math",
        description="MATH test, all 5000 problems (Hendrycks et al.).",
        test=Split(
            local=_local("math"),
            hub=HubSource(
                path="EleutherAI/hendrycks_math", name=",".join(_MATH_SUBJECT_CONFIGS), split="test"
            ),
        ),
        train=Split(
            hub=HubSource(
                path="EleutherAI/hendrycks_math", name=",".join(_MATH_SUBJECT_CONFIGS), split="train"
            )
        ),
        question_template="{problem}",
        answer_field="solution",
        gold_rules=("last_boxed",),
        solution_field="solution",
        answer_type="expression",
        subsets={"level": "level", "subject": "type"},
        id_field="idx",
        prompt_file="math",
    ),
    BenchmarkSpec(
        name="math500",
        description="MATH-500: the 500-problem MATH test subset of Lightman et al. (PRM800K).",
        test=Split(local=_local("math500"), hub=HubSource(path="HuggingFaceH4/MATH-500", split="test")),
        question_template="{problem}",
        answer_field="answer",
        solution_field="solution",
        answer_type="expression",
        subsets={"level": "level", "subject": "subject"},
        id_field="unique_id",
        prompt_file="math",
    ),
    BenchmarkSpec(
        name="ocw",
        description="MIT OpenCourseWare problems from the Minerva paper (272).",
        test=Split(local=_local("minerva_math")),
        question_template="{problem}",
        answer_field="solution",
        gold_rules=("last_boxed",),
        solution_field="solution",
        answer_type="expression",
        subsets={"subject": "type"},
        id_field="idx",
        prompt_file="minerva_math",
    ),
    BenchmarkSpec(
        name="svamp",
        description="SVAMP (1000: train+test of ChilleD/SVAMP in the local copy; the hub test split has 300).",
        test=Split(
            local=_local("svamp"),
            hub=HubSource(path="ChilleD/SVAMP", split="test"),
        ),
        question_template="{Body!p} {Question}",
        answer_field="Answer",
        answer_type="number",
        subsets={"type": "Type"},
        id_field="ID",
        prompt_file="gsm8k",
    ),
    BenchmarkSpec(
        name="asdiv",
        description="ASDiv (2215 word problems).",
        test=Split(local=_local("asdiv"), hub=HubSource(path="EleutherAI/asdiv", split="validation")),
        question_template="{body} {question}",
        answer_field="answer",
        gold_rules=("strip_unit_parens",),
        answer_type="number",
        subsets={"type": "solution_type"},
        id_field="idx",
        prompt_file="gsm8k",
    ),
    BenchmarkSpec(
        name="mawps",
        description="MAWPS (addsub, multiarith, singleeq, singleop: 2065).",
        test=Split(local=_local("mawps")),
        question_template="{input}",
        answer_field="target",
        answer_type="number",
        subsets={"type": "type"},
        id_field="idx",
        prompt_file="gsm8k",
    ),
    BenchmarkSpec(
        name="tabmwp",
        description="TabMWP test (tabular math word problems).",
        test=Split(local=_local("tabmwp")),
        question_template=(
            "Read the following table and then answer the question:\n{table_title}\n{table}\n{question}"
        ),
        answer_field="answer",
        # Multiple-choice rows list their options; free-answer rows have null there.
        choices_field="choices",
        choices_format="list",
        answer_type="text",
        subsets={"type": "ques_type"},
        prompt_file="gsm8k",
    ),
    BenchmarkSpec(
        name="gsm_hard",
        description="GSM-Hard: GSM8K with large numbers (1319).",
        test=Split(
            local=_local("gsm_hard"),
            hub=HubSource(path="reasoning-machines/gsm-hard", split="train"),
        ),
        question_template="{input}",
        answer_field="target",
        answer_type="number",
        id_field="idx",
        prompt_file="gsm8k",
    ),
    BenchmarkSpec(
        name="sat_math",
        description="SAT math multiple choice (32).",
        test=Split(local=_local("sat_math")),
        answer_field="Answer",
        gold_rules=("letters",),
        choices_field="options",
        choices_format="lettered_string",
        answer_type="choice",
        id_field="id",
        prompt_file="mmlu_stem",
    ),
    BenchmarkSpec(
        name="mmlu_stem",
        description="MMLU STEM subjects (3018 multiple-choice questions).",
        test=Split(local=_local("mmlu_stem"), hub=HubSource(path="TIGER-Lab/MMLU-STEM", split="test")),
        answer_field="answer",
        gold_rules=("index_to_letter",),
        choices_field="choices",
        choices_format="list",
        answer_type="choice",
        subsets={"subject": "type"},
        prompt_file="mmlu_stem",
    ),
    BenchmarkSpec(
        name="gaokao2023en",
        description="GAOKAO 2023 math, English translation (385).",
        test=Split(
            local=_local("gaokao2023en"),
            hub=HubSource(path="MARIO-Math-Reasoning/Gaokao2023-Math-En", split="test"),
        ),
        answer_field="answer",
        gold_rules=("answer_in_question", "strip_dollars"),
        answer_type="expression",
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="gaokao_math_qa",
        description="GAOKAO math multiple choice, Chinese (AGIEval; 351).",
        test=Split(local=_local("gaokao_math_qa")),
        answer_field="label",
        gold_rules=("letters",),
        choices_field="options",
        choices_format="dict",
        answer_type="choice",
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="gaokao_math_cloze",
        description="GAOKAO math fill-in-the-blank, Chinese (AGIEval; 118).",
        test=Split(local=_local("gaokao_math_cloze")),
        answer_field="answer",
        answer_type="expression",
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="cn_middle_school",
        description="ZHONGKAO: Chinese middle-school exam math (101; choice letters or answers).",
        test=Split(local=_local("cn_middle_school")),
        answer_field="answer",
        gold_rules=("prefer:choice_answer",),
        answer_type="expression",
        id_field="idx",
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="cmath",
        description="CMATH: Chinese elementary-school math word problems (600).",
        test=Split(local=_local("cmath")),
        answer_field="answer",
        answer_type="number",
        subsets={"grade": "grade"},
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="aqua",
        description="AQuA-RAT test (254 multiple-choice algebra word problems).",
        test=Split(local=_local("aqua"), hub=HubSource(path="deepmind/aqua_rat", name="raw", split="test")),
        answer_field="correct",
        gold_rules=("letters",),
        solution_field="rationale",
        choices_field="options",
        choices_format="list_lettered",
        answer_type="choice",
        prompt_file="mathqa",
    ),
    BenchmarkSpec(
        name="mathqa",
        description="MathQA test, the 1000-row sample of math-evaluation-harness.",
        test=Split(local=_local("mathqa")),
        question_template="{problem}",
        answer_field="correct",
        gold_rules=("letters",),
        solution_field="rationale",
        choices_field="options",
        choices_format="lettered_string",
        answer_type="choice",
        subsets={"type": "type"},
        prompt_file="mathqa",
    ),
    BenchmarkSpec(
        name="college_math",
        description="College math (2818 problems from open textbooks).",
        test=Split(local=_local("college_math")),
        answer_field="answer",
        gold_rules=("strip_dollars",),
        answer_type="expression",
        subsets={"topic": "data_topic"},
        # question_number repeats across textbooks, so items are numbered by position.
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="olympiadbench",
        description="OlympiadBench, English open-ended competition math (675).",
        test=Split(
            local=_local("olympiadbench"),
            hub=HubSource(path="Hothan/OlympiadBench", name="OE_TO_maths_en_COMP", split="train"),
        ),
        answer_field="final_answer",
        gold_rules=("first", "strip_dollars"),
        answer_type="expression",
        subsets={"subfield": "subfield", "answer_type": "answer_type"},
        id_field="id",
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="aime24",
        description="AIME 2024 (30).",
        test=Split(local=_local("aime24"), hub=HubSource(path="HuggingFaceH4/aime_2024", split="train")),
        question_template="{problem}",
        answer_field="answer",
        solution_field="solution",
        answer_type="number",
        id_field="id",
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="amc23",
        description="AMC 2023 (40).",
        test=Split(local=_local("amc23"), hub=HubSource(path="math-ai/amc23", split="test")),
        question_template="{problem}",
        answer_field="answer",
        answer_type="number",
        id_field="id",
        default_prompt="zero-shot",
    ),
    BenchmarkSpec(
        name="carp_en",
        description="CARP-en (976 English computational math problems, space-tokenized LaTeX answers).",
        test=Split(local=_local("carp_en")),
        question_template="{content}",
        answer_field="answer",
        solution_field="steps",
        answer_type="expression",
        default_prompt="zero-shot",
    ),
]

REGISTRY: dict[str, BenchmarkSpec] = {spec.name: spec for spec in _SPECS}

# Names that mean different sets in different public harnesses: asked for one, say which is which.
AMBIGUOUS_NAMES: dict[str, str] = {
    "minerva_math": (
        "'minerva_math' is ambiguous: math-evaluation-harness (and the Rho-1 released outputs) mean MATH-500 "
        "-> use 'math500'; Qwen2.5-Math's evaluation means the 272 MIT OCW problems -> use 'ocw'; "
        "lm-evaluation-harness's minerva_math tasks mean the full MATH test set (5000) -> use 'math'"
    ),
}


def get_spec(name: str) -> BenchmarkSpec:
    """The declaration for `name`, or a one-line error listing what exists."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in AMBIGUOUS_NAMES:
        raise MathforgeError(AMBIGUOUS_NAMES[name])
    raise MathforgeError(
        f"unknown benchmark '{name}'{did_you_mean(name, REGISTRY)}; known benchmarks: {', '.join(REGISTRY)}"
    )
