"""Word-vector quality, measured the standard way, and the word2vec text format.

* :func:`wordsim`: Spearman's ρ between the cosine similarity of word pairs
  and human judgements (WordSim-353, ``wordsim353.tsv`` as shipped with
  gensim); pairs with a word outside the vocabulary are left out and counted.
* :func:`analogies`: accuracy on "a is to b as c is to ?" questions
  (``questions-words.txt``): the answer is ``argmax_x cos(x, b − a + c)``
  over unit vectors (3CosAdd, what gensim's ``most_similar`` ranks by),
  the three question words excluded, over the ``restrict`` most frequent
  words; questions with a word outside them are left out and counted.
* :func:`wordsim_by_frequency`: ρ on the rare and the frequent half of the
  pairs, split at the median corpus count of a pair's rarer word.

Words are matched case-insensitively (gensim's default for both tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqbench.embed.corpus import gensim_data


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def _index(words) -> dict:
    index: dict = {}
    for i, w in enumerate(words):
        index.setdefault(w.lower(), i)  # the most frequent spelling wins
    return index


def _pairs(path: Path | None) -> list[tuple[str, str, float]]:
    pairs = []
    for line in (path or gensim_data("wordsim353.tsv")).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 3:
            continue
        pairs.append((parts[0].lower(), parts[1].lower(), float(parts[2])))
    return pairs


def _rho(pairs, index, unit) -> float:
    from scipy.stats import spearmanr  # imported here: it takes a second, and the CLI starts without it

    if len(pairs) < 3:
        return float("nan")
    sims = [float(unit[index[a]] @ unit[index[b]]) for a, b, _ in pairs]
    return float(spearmanr(sims, [h for _, _, h in pairs]).statistic)


def wordsim(words, vectors: np.ndarray, path: Path | None = None) -> dict:
    """``{"spearman": ρ, "pairs": used, "of": all}`` on WordSim-353 (or the tab-separated ``path``)."""
    pairs, index = _pairs(path), _index(words)
    used = [p for p in pairs if p[0] in index and p[1] in index]
    return {"spearman": _rho(used, index, _unit(vectors)), "pairs": len(used), "of": len(pairs)}


def wordsim_by_frequency(words, vectors: np.ndarray, counts: np.ndarray, path: Path | None = None) -> dict:
    """``{"rare": ρ, "frequent": ρ, "split_count": n}``: the pairs whose rarer word has a corpus count below
    the median ``n`` of that count, and the rest."""
    pairs, index, unit = _pairs(path), _index(words), _unit(vectors)
    used = [p for p in pairs if p[0] in index and p[1] in index]
    rarer = np.array([min(counts[index[a]], counts[index[b]]) for a, b, _ in used])
    split = float(np.median(rarer)) if len(rarer) else 0.0
    return {"rare": _rho([p for p, n in zip(used, rarer) if n < split], index, unit),
            "frequent": _rho([p for p, n in zip(used, rarer) if n >= split], index, unit), "split_count": split}


def analogies(words, vectors: np.ndarray, path: Path | None = None, restrict: int = 30000,
              chunk: int = 512) -> dict:
    """``{"accuracy": ..., "questions": used, "of": all}`` on the analogy questions (``questions-words.txt``)."""
    words = list(words)[:restrict]
    index, unit = _index(words), _unit(vectors[: len(words)])
    questions, total = [], 0
    for line in (path or gensim_data("questions-words.txt")).read_text(encoding="utf-8").splitlines():
        parts = line.lower().split()
        if line.startswith(":") or len(parts) != 4:
            continue
        total += 1
        if all(p in index for p in parts):
            questions.append([index[p] for p in parts])
    if not questions:
        return {"accuracy": float("nan"), "questions": 0, "of": total}
    q = np.array(questions)
    correct = 0
    for start in range(0, len(q), chunk):
        a, b, c, d = q[start:start + chunk].T
        scores = (unit[b] - unit[a] + unit[c]) @ unit.T
        rows = np.arange(len(a))
        for excluded in (a, b, c):
            scores[rows, excluded] = -np.inf
        correct += int((scores.argmax(axis=1) == d).sum())
    return {"accuracy": correct / len(q), "questions": len(q), "of": total}


def write_word2vec(path: Path, words, vectors: np.ndarray) -> None:
    """The word2vec text format: a ``V d`` header, then one ``word v_1 … v_d`` line per word
    (``gensim.models.KeyedVectors.load_word2vec_format(path)`` reads it)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, row in zip(words, vectors):
            f.write(word + " " + " ".join(f"{v:.6g}" for v in row) + "\n")
