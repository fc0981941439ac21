"""The embedding trainers in a report: speed and quality per trainer, and the notes' skip-gram-or-CBOW claims.

Read from the asv points of ``benchmarks/bench_training.py``: one row per
(machine, model, trainer, device, corpus fraction) with words/s, its ratio
to gensim's on the same machine, model and corpus (measured in the same
sweep), and the quality metrics; then each claim of the notes about
skip-gram against CBOW, with the numbers that decide it here.
"""

from __future__ import annotations

import math

import pandas as pd

from seqbench.results import asv_files

SUITE = "bench_training."
METRICS = ("words_per_second", "wordsim", "wordsim_rare", "wordsim_frequent", "wordsim_pairs", "analogy")
#: fewest WordSim-353 pairs in the vocabulary for a quality claim to be decided (each half of the rare/frequent split
#: then holds 30): below it a Spearman ρ is noise (its standard error is about 1/√(n − 1))
MIN_PAIRS = 60
KEYS = ["machine", "model", "trainer", "device", "fraction"]


def table(points: list[dict]) -> pd.DataFrame:
    """One row per training run: :data:`KEYS`, the metrics, ``vs_gensim`` (words/s over gensim's) and
    ``peak_memory`` (bytes, the whole corpus); empty when no trainer was benchmarked."""
    runs: dict = {}
    memory: dict = {}
    ours = [p for p in points if p["suite"].startswith(SUITE)]
    for (machine, _, method, _), p in asv_files.latest(ours).items():
        if not asv_files.measured(p["result"]):
            continue
        params = p["params"]
        if method == "peakmem_train":
            memory[(machine, params["model"], params["trainer"], params["device"])] = p["result"]
        elif method.startswith("track_"):
            key = (machine, params["model"], params["trainer"], params["device"], float(params["fraction"]))
            runs.setdefault(key, {})[method.removeprefix("track_")] = p["result"]
    if not runs:
        return pd.DataFrame(columns=[*KEYS, *METRICS, "vs_gensim", "peak_memory"])
    frame = pd.DataFrame([{**dict(zip(KEYS, key)), **metrics} for key, metrics in runs.items()])
    for metric in METRICS:
        if metric not in frame:
            frame[metric] = math.nan
    gensim = frame[frame.trainer == "gensim"].set_index(["machine", "model", "fraction"])["words_per_second"]
    frame["vs_gensim"] = [r.words_per_second / gensim.get((r.machine, r.model, r.fraction), math.nan)
                          for r in frame.itertuples()]
    frame["peak_memory"] = [memory.get((r.machine, r.model, r.trainer, r.device), math.nan) for r in frame.itertuples()]
    return frame.sort_values(KEYS).reset_index(drop=True)


def claims(runs: pd.DataFrame) -> pd.DataFrame:
    """The notes' claims about skip-gram and CBOW, per machine and trainer on the whole corpus, and how the
    quality gap moves with corpus size: ``claim``, ``trainer``, ``evidence``, ``holds here``."""
    rows = []
    for (machine, trainer, device), group in runs.groupby(["machine", "trainer", "device"]):
        by = {(r.model, r.fraction): r for r in group.itertuples()}
        full = max(group.fraction)
        sg, cb = by.get(("skipgram", full)), by.get(("cbow", full))
        if sg is None or cb is None:
            continue
        who = f"{trainer} on {device} ({machine})"
        speed = cb.words_per_second / sg.words_per_second
        rows.append(_claim("CBOW trains faster", who, f"CBOW {speed:.2f}x skip-gram's words/s", speed > 1))
        enough = min(sg.wordsim_pairs, cb.wordsim_pairs) >= MIN_PAIRS
        rows.append(_claim("skip-gram is better on rare words", who,
                           f"ρ on the rare pairs: skip-gram {sg.wordsim_rare:.3f}, CBOW {cb.wordsim_rare:.3f}",
                           sg.wordsim_rare > cb.wordsim_rare if enough else None, sg.wordsim_pairs))
        rows.append(_claim("CBOW is better on frequent words", who,
                           f"ρ on the frequent pairs: CBOW {cb.wordsim_frequent:.3f}, skip-gram {sg.wordsim_frequent:.3f}",
                           cb.wordsim_frequent > sg.wordsim_frequent if enough else None, sg.wordsim_pairs))
        small = min(group.fraction)
        sg_small, cb_small = by.get(("skipgram", small)), by.get(("cbow", small))
        if small < full and sg_small is not None and cb_small is not None:
            gap_small, gap_full = sg_small.wordsim - cb_small.wordsim, sg.wordsim - cb.wordsim
            pairs = min(sg_small.wordsim_pairs, cb_small.wordsim_pairs)
            rows.append(_claim("skip-gram's lead is largest on a small corpus", who,
                               f"ρ skip-gram − CBOW: {gap_small:+.3f} on {small:g} of the corpus, {gap_full:+.3f} on "
                               f"all of it", gap_small > gap_full if pairs >= MIN_PAIRS else None, pairs))
    return pd.DataFrame(rows, columns=["claim", "trainer", "evidence", "holds here"])


def _claim(claim: str, trainer: str, evidence: str, holds, pairs=None) -> dict:
    """A row of :func:`claims`; ``holds`` None: undecided, for too few pairs (``pairs``) or a missing number."""
    if holds is None or "nan" in evidence:
        few = pairs is not None and pairs == pairs and pairs < MIN_PAIRS
        verdict = f"undecided: {pairs:.0f} pairs in the vocabulary, {MIN_PAIRS} needed" if few else "unmeasured"
    else:
        verdict = "yes" if holds else "no"
    return {"claim": claim, "trainer": trainer, "evidence": evidence, "holds here": verdict}


def display(runs: pd.DataFrame) -> pd.DataFrame:
    """The trainers' table as the report prints it."""
    def number(value, pattern):
        return "" if value != value else format(value, pattern)

    return pd.DataFrame({
        "machine": runs.machine, "model": runs.model, "trainer": runs.trainer, "device": runs.device,
        "corpus": [f"{f:g}" for f in runs.fraction],
        "words/s": [number(v, ",.0f") for v in runs.words_per_second],
        "x gensim": [number(v, ".2f") for v in runs.vs_gensim],
        "wordsim353 ρ": [number(v, ".3f") for v in runs.wordsim],
        "rare ρ": [number(v, ".3f") for v in runs.wordsim_rare],
        "frequent ρ": [number(v, ".3f") for v in runs.wordsim_frequent],
        "pairs": [number(v, ".0f") for v in runs.wordsim_pairs],
        "analogy": [number(v, ".3f") for v in runs.analogy],
        "peak host memory": [number(v / 2**20, ".0f") + (" MiB" if v == v else "") for v in runs.peak_memory],
    })


def blocks(runs: pd.DataFrame) -> list[tuple]:
    """The report's blocks for the trainers (none when the sweep had no bench_training)."""
    if runs.empty:
        return []
    return [
        ("h2", "Word embeddings: training"),
        ("p", "Each backend's update step in seqbench's shared trainer (skip-gram and CBOW with negative sampling "
              "as word2vec trains them; GloVe by AdaGrad), and gensim's Word2Vec on the same corpus, settings and "
              "thread count. words/s: corpus words per second of training; x gensim: over gensim's in the same "
              "sweep; quality: WordSim-353 Spearman ρ (all pairs in the vocabulary, and split at the median count "
              "of a pair's rarer word) and analogy accuracy; corpus: the fraction of the corpus trained on."),
        ("wide", display(runs)),
        ("h2", "Skip-gram or CBOW? The notes' claims, measured"),
        ("p", "Each claim of the notes, decided by the runs above on the whole corpus (the last by the smaller "
              "corpus against the whole one)."),
        ("wide", claims(runs)),
    ]
