"""The embedding trainers in a report: speed and quality per trainer over seeds, and the notes' skip-gram-or-CBOW
claims.

Read from the asv points of ``benchmarks/bench_training.py``: one run per
(machine, model, trainer, device, corpus fraction, seed) (:func:`table`),
then one row per point over its seeds (:func:`summary`): words/s and
every quality metric as mean ± sd, words/s as a ratio to gensim's on the
same machine, model and corpus (measured in the same sweep), and each
WordSim-353 ρ (all pairs, rare, frequent) against gensim's: the difference
of the means with its 90% confidence interval (Welch) and what it shows
against an equivalence margin of ±:data:`MARGIN` (two one-sided tests at
5%: the interval inside the margin). Then each claim of the notes about
skip-gram against CBOW, decided on the means.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from seqbench.results import asv_files

SUITE = "bench_training."
METRICS = ("words_per_second", "wordsim", "wordsim_rare", "wordsim_frequent", "wordsim_pairs", "analogy")
#: the ρ metrics compared with gensim's
RHOS = ("wordsim", "wordsim_rare", "wordsim_frequent")
#: the equivalence margin on a difference of WordSim-353 ρ: within it, two trainers' vectors are as good
MARGIN = 0.02
#: fewest WordSim-353 pairs in the vocabulary for a quality claim to be decided (each half of the rare/frequent split
#: then holds 30): below it a Spearman ρ is noise (its standard error is about 1/√(n − 1))
MIN_PAIRS = 60
KEYS = ["machine", "model", "trainer", "device", "fraction"]


def table(points: list[dict]) -> pd.DataFrame:
    """One row per training run: :data:`KEYS`, ``seed`` and the metrics; empty when no trainer was benchmarked.

    A run recorded before seeds were an axis counts as seed 1 of its point, unless the point has seeded runs."""
    runs: dict = {}
    ours = [p for p in points if p["suite"] == SUITE + "train"]
    for (machine, _, method, _), p in asv_files.latest(ours).items():
        if not asv_files.measured(p["result"]) or not method.startswith("track_"):
            continue
        params = p["params"]
        seed = int(params["seed"]) if "seed" in params else None
        key = (machine, params["model"], params["trainer"], params["device"], float(params["fraction"]), seed)
        runs.setdefault(key, {})[method.removeprefix("track_")] = p["result"]
    seeded = {key[:-1] for key in runs if key[-1] is not None}
    rows = [{**dict(zip([*KEYS, "seed"], (*key[:-1], 1 if key[-1] is None else key[-1]))), **metrics}
            for key, metrics in runs.items() if key[-1] is not None or key[:-1] not in seeded]
    frame = pd.DataFrame(rows, columns=[*KEYS, "seed", *METRICS])
    return frame.sort_values([*KEYS, "seed"]).reset_index(drop=True)


def memory(points: list[dict]) -> dict:
    """``(machine, model, trainer, device) -> bytes``: the host peak of one training run on the whole corpus."""
    ours = [p for p in points if p["suite"] == SUITE + "memory"]
    return {(machine, p["params"]["model"], p["params"]["trainer"], p["params"]["device"]): p["result"]
            for (machine, _, method, _), p in asv_files.latest(ours).items()
            if method == "peakmem_train" and asv_files.measured(p["result"])}


def pipeline(points: list[dict]) -> pd.DataFrame:
    """The host pipeline's rate per machine and item kind: ``machine``, ``items``, ``words_per_second`` (one epoch's
    corpus words over its fastest time)."""
    ours = [p for p in points if p["suite"] == SUITE + "pipeline_epoch"]
    rows = [{"machine": machine, "items": p["params"]["items"], "words_per_second": p["result"]}
            for (machine, _, method, _), p in asv_files.latest(ours).items()
            if method == "track_words_per_second" and asv_files.measured(p["result"])]
    return pd.DataFrame(rows, columns=["machine", "items", "words_per_second"])


def compared(ours, theirs, margin: float = MARGIN) -> dict:
    """``ours − theirs`` as means of independent samples: ``diff``, the 90% Welch interval ``low``, ``high``, and
    ``shows``: "equivalent" (the interval inside ±margin), "better"/"worse" (outside it, beyond the margin),
    "inconclusive" (across a bound), or "one seed" (no interval from a single run)."""
    a, b = np.asarray(ours, float), np.asarray(theirs, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return {"diff": math.nan, "low": math.nan, "high": math.nan, "shows": "unmeasured"}
    diff = a.mean() - b.mean()
    if len(a) < 2 or len(b) < 2:
        return {"diff": diff, "low": math.nan, "high": math.nan, "shows": "one seed"}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else 1.0
    half = stats.t.ppf(0.95, df) * se
    low, high = diff - half, diff + half
    shows = ("equivalent" if -margin < low and high < margin else "better" if low > margin
             else "worse" if high < -margin else "inconclusive")
    return {"diff": diff, "low": low, "high": high, "shows": shows}


def summary(runs: pd.DataFrame, peaks: dict | None = None) -> pd.DataFrame:
    """One row per point (:data:`KEYS`) over its seeds: ``seeds``, each metric's mean (named as the metric) and
    ``<metric>_sd``, ``vs_gensim`` (mean words/s over gensim's), ``<rho>_vs_gensim`` (:func:`compared`) for
    each of :data:`RHOS`, and ``peak_memory`` (bytes) from ``peaks`` (:func:`memory`)."""
    columns = [*KEYS, "seeds", *METRICS, *(f"{m}_sd" for m in METRICS), "vs_gensim",
               *(f"{r}_vs_gensim" for r in RHOS), "peak_memory"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    groups = {key: group for key, group in runs.groupby(KEYS, sort=True)}
    rows = []
    for key, group in groups.items():
        machine, model, trainer, device, fraction = key
        peer = groups.get((machine, model, "gensim", "cpu", fraction))
        row = {**dict(zip(KEYS, key)), "seeds": len(group)}
        for metric in METRICS:
            values = group[metric].astype(float)
            row[metric], row[f"{metric}_sd"] = values.mean(), values.std(ddof=1) if len(values) > 1 else math.nan
        row["vs_gensim"] = row["words_per_second"] / peer.words_per_second.mean() if peer is not None else math.nan
        for rho in RHOS:
            row[f"{rho}_vs_gensim"] = (compared(group[rho], peer[rho]) if peer is not None and trainer != "gensim"
                                       else None)
        row["peak_memory"] = (peaks or {}).get((machine, model, trainer, device), math.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


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


def _spread(mean, sd, pattern) -> str:
    if mean != mean:
        return ""
    return format(mean, pattern) + ("" if sd != sd else f" ± {format(sd, pattern)}")


def _versus(c) -> str:
    """A :func:`compared` result as the report prints it: ``−0.004 [−0.012, +0.004] equivalent``."""
    if not c or c["diff"] != c["diff"]:
        return ""
    interval = "" if c["low"] != c["low"] else f" [{c['low']:+.3f}, {c['high']:+.3f}]"
    return f"{c['diff']:+.3f}{interval} {c['shows']}"


def display(rows: pd.DataFrame) -> pd.DataFrame:
    """The trainers' table (:func:`summary`) as the report prints it."""
    def number(value, pattern):
        return "" if value != value else format(value, pattern)

    return pd.DataFrame({
        "machine": rows.machine, "model": rows.model, "trainer": rows.trainer, "device": rows.device,
        "corpus": [f"{f:g}" for f in rows.fraction], "seeds": rows.seeds,
        "words/s": [_spread(m, s, ",.0f") for m, s in zip(rows.words_per_second, rows.words_per_second_sd)],
        "x gensim": [number(v, ".2f") for v in rows.vs_gensim],
        **{f"{label} ρ": [_spread(m, s, ".3f") for m, s in zip(rows[rho], rows[f"{rho}_sd"])]
           for label, rho in (("wordsim353", "wordsim"), ("rare", "wordsim_rare"), ("frequent", "wordsim_frequent"))},
        **{f"{label} Δρ vs gensim": [_versus(c) for c in rows[f"{rho}_vs_gensim"]]
           for label, rho in (("all", "wordsim"), ("rare", "wordsim_rare"), ("frequent", "wordsim_frequent"))},
        "pairs": [number(v, ".0f") for v in rows.wordsim_pairs],
        "analogy": [number(v, ".3f") for v in rows.analogy],
        "peak host memory": [number(v / 2**20, ".0f") + (" MiB" if v == v else "") for v in rows.peak_memory],
    })


#: what each item kind of the host pipeline is, for the report
ITEM_KINDS = {"skipgram": "skip-gram pairs, K noise words each", "cbow": "CBOW windows, K noise words each",
              "skipgram_windows": "skip-gram windows, K noise words shared by a window"}


def blocks(runs: pd.DataFrame, rates: pd.DataFrame | None = None) -> list[tuple]:
    """The report's blocks for the trainers (none when the sweep had no bench_training); ``rates``:
    :func:`pipeline`."""
    if runs.empty:
        return []
    host = [] if rates is None or rates.empty else [
        ("p", "The host pipeline alone (the corpus encoded once; one epoch of subsampling, items and noise words, "
              "no training), on one core:"),
        ("table", pd.DataFrame({"machine": rates.machine, "items": [ITEM_KINDS.get(i, i) for i in rates["items"]],
                                "words/s": [f"{v:,.0f}" for v in rates.words_per_second]})),
    ]
    return [
        ("h2", "Word embeddings: training"),
        ("p", "Each backend's update step in seqbench's shared trainer (skip-gram and CBOW with negative sampling "
              "as word2vec trains them; GloVe by AdaGrad), and gensim's Word2Vec on the same corpus, settings and "
              "thread count, each point trained once per seed. words/s: corpus words per second of training, mean "
              "± sd over the seeds; x gensim: over gensim's mean in the same sweep; quality: WordSim-353 Spearman ρ "
              "(all pairs in the vocabulary, and split at the median count of a pair's rarer word), mean ± sd, and "
              f"analogy accuracy; Δρ vs gensim: the difference of the means with its 90% interval (Welch), "
              f"'equivalent' when the interval lies inside ±{MARGIN} (two one-sided tests at 5%); corpus: the "
              "fraction of the corpus trained on."),
        ("wide", display(runs)),
        *host,
        ("h2", "Skip-gram or CBOW? The notes' claims, measured"),
        ("p", "Each claim of the notes, decided by the runs above on the whole corpus (the last by the smaller "
              "corpus against the whole one)."),
        ("wide", claims(runs)),
    ]
