"""``seqbench embed``: train word vectors on a backend, write them, and measure their quality.

    seqbench embed --model skipgram --backend jax --corpus head500.noblanks.cor --epochs 5 --out vectors.txt

trains (a progress bar in corpus words with words/s), writes the vectors in
the word2vec text format, and prints words/s and the quality metrics of
:mod:`seqbench.embed.quality`; ``--peer`` also trains gensim's ``Word2Vec`` on the
same corpus, settings and thread count and prints it beside.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from seqbench import console
from seqbench.embed import corpus, quality, trainers
from seqbench.backends import registry
from seqbench.precision import training_check
from seqbench.backends.protocol import BackendUnavailable


def evaluate(vocab: corpus.Vocabulary, vectors) -> dict:
    """Every quality metric of word vectors trained on a corpus with vocabulary ``vocab``, flat."""
    sim = quality.wordsim(vocab.words, vectors)
    analogy = quality.analogies(vocab.words, vectors)
    split = quality.wordsim_by_frequency(vocab.words, vectors, vocab.counts)
    return {"wordsim": sim["spearman"], "wordsim_pairs": sim["pairs"], "wordsim_of": sim["of"],
            "wordsim_rare": split["rare"], "wordsim_frequent": split["frequent"],
            "analogy": analogy["accuracy"], "analogy_questions": analogy["questions"], "analogy_of": analogy["of"]}


def _settings(args) -> trainers.Settings:
    return trainers.Settings(model=args.model, dim=args.dim, window=args.window, negative=args.negative,
                             min_count=args.min_count, epochs=args.epochs, sample=args.sample, lr=args.lr,
                             batch=args.batch, seed=args.seed, threads=args.threads,
                             share_negatives=args.share_negatives)


def _train(name, backend, args, path, s, vocab) -> trainers.Trained:
    with console.phase(f"{s.model} on {name}", total=s.epochs * vocab.total) as bar:
        start, done = time.perf_counter(), [0]

        def progress(words):
            done[0] += words
            bar.advance(words, item=f"{done[0] / max(time.perf_counter() - start, 1e-9):,.0f} words/s")

        if backend is None:
            trained = trainers.train_gensim(path, s, vocab=vocab)
        else:
            trained = trainers.train(backend, args.device, args.dtype, path, s, vocab, progress)
        bar.done(f"{trained.words_per_second:,.0f} words/s, {console.duration(trained.seconds)}")
    return trained


def main(args) -> int:
    s = _settings(args)
    path = corpus.corpus_path(args.corpus)
    try:
        backend = registry.backend(args.backend)
    except BackendUnavailable as error:
        raise ValueError(f"--backend {args.backend} is unavailable here: {error}") from None
    if args.device not in backend.devices():
        raise ValueError(f"--device must be one of {backend.devices()} for backend {args.backend!r}, got {args.device!r}")
    if args.dtype not in backend.dtypes(args.device):
        raise ValueError(f"--dtype must be one of {list(backend.dtypes(args.device))} for backend "
                         f"{args.backend!r} on {args.device}, got {args.dtype!r}")
    steps = backend.training_steps(args.device, args.dtype)
    model = trainers.step_model(steps, s)
    verdict = training_check.check_step(backend, args.device, args.dtype, model)  # before the corpus is read
    if not verdict.passed:
        w = verdict.worst
        raise ValueError(f"{args.backend}'s {model} update step does not compute the reference update: {w.leaf} is "
                         f"{w.error:.3g} eps ({w.metric}) from it, budget {w.budget:.3g}; no training on it")
    if args.peer and s.model == "glove":
        raise ValueError("--peer trains gensim's Word2Vec, which has no GloVe; leave it out for --model glove")
    vocab = corpus.Vocabulary.build(path, s.min_count)
    print(f"seqbench embed: {s.model} on {args.backend}/{args.device}/{args.dtype}; corpus {path.name}: "
          f"{vocab.corpus_words:,} words, {len(vocab):,} in the vocabulary (min count {s.min_count}); "
          f"dim {s.dim}, window {s.window}, negatives {s.negative}, epochs {s.epochs}, "
          + ("windows drawn and trained on the device, chunk by chunk" if model == "skipgram_windows" and steps.corpus
             else f"item by item in {s.threads} threads" if steps.sequential else f"batch {s.batch or trainers.BATCH[model]}")
          + ("; a window's noise words shared (HogBatch)" if model == "skipgram_windows" else ""))
    print(f"update step: conforms ({verdict.ratio:.2g}x the error of a faithful {args.dtype} update)")
    rows = [(args.backend, _train(args.backend, backend, args, path, s, vocab))]
    if args.peer:
        rows.append((f"gensim ({s.threads} threads)", _train("gensim", None, args, path, s, vocab)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    quality.write_word2vec(out, vocab.words, rows[0][1].vectors)
    metrics = [evaluate(vocab, trained.vectors) for _, trained in rows]
    table = [[name, f"{trained.words_per_second:,.0f}", f"{m['wordsim']:.3f}", f"{m['wordsim_rare']:.3f}",
              f"{m['wordsim_frequent']:.3f}", f"{m['analogy']:.3f}"] for (name, trained), m in zip(rows, metrics)]
    print()
    print(console.table(table, ["trainer", "words/s", "wordsim353 ρ", "rare ρ", "frequent ρ", "analogy acc."]))
    m = metrics[0]
    print(f"\nwordsim353: {m['wordsim_pairs']} of {m['wordsim_of']} pairs in the vocabulary; analogies: "
          f"{m['analogy_questions']} of {m['analogy_of']} questions")
    print(f"vectors: {out} (word2vec text format)")
    return 0


def add_command(sub) -> None:
    e = sub.add_parser("embed", help="train word vectors (skip-gram, CBOW, GloVe) on a backend and measure them",
                       description=__doc__.split("\n\n")[0].removeprefix("``seqbench embed``: ").capitalize())
    e.add_argument("--model", choices=trainers.MODELS, default="skipgram")
    e.add_argument("--backend", required=True,
                   help="the backend whose update step trains (seqbench list: those with trainer steps)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--dtype", default="float32")
    e.add_argument("--corpus", default="head500.noblanks.cor",
                   help="a text file, one sentence per line, or a corpus shipped with gensim (default: %(default)s)")
    for name, default, what in (("dim", 100, "vector size"), ("window", 5, "window half-width"),
                                ("negative", 5, "noise words per item"), ("min-count", 5, "rarest word kept"),
                                ("epochs", 5, "passes over the corpus")):
        e.add_argument(f"--{name}", type=int, default=default, help=f"{what} (default: %(default)s)")
    e.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold (default: %(default)s)")
    e.add_argument("--lr", type=float, help="initial learning rate (default: 0.025 word2vec, 0.05 GloVe)")
    e.add_argument("--batch", type=int, help="items per minibatch step (default: 1024 skip-gram pairs, 256 skip-gram "
                                             "windows, 512 CBOW windows, 8192 GloVe entries)")
    e.add_argument("--share-negatives", action=argparse.BooleanOptionalAction,
                   help="skip-gram: draw a window's noise words once for all its context words (HogBatch; default: "
                        "on for a minibatch backend, off for one that trains item by item)")
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--peer", action="store_true", help="also train gensim's Word2Vec on the same settings")
    e.add_argument("--threads", type=int, default=0, help="threads of a sequential trainer (numba) and gensim's "
                                                         "workers (default: this machine's CPUs)")
    e.add_argument("--out", default="vectors.txt", help="where the vectors go (default: %(default)s)")
    e.set_defaults(func=main)
