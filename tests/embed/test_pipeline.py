"""The host pipeline: the encoded corpus, vectorized subsampling and windows, and the alias table's draws."""

import numpy as np
import pytest
from chi_square import chi_square_p_value

from seqbench.embed import corpus, pipeline
from seqbench.reference import noise_distribution

# Zipf-like counts with a never-seen word (index 7): P_n gives it 0
COUNTS = np.array([500, 250, 160, 120, 100, 80, 70, 0, 60, 50, 45, 40, 35, 30, 28, 25, 22, 20, 18, 15])


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b a c a b\nb a d\n\nc a b a\n" + "a b c " * 3000 + "\n")
    return path


def test_the_corpus_is_encoded_once_sentence_by_sentence(text):
    vocab = corpus.Vocabulary.build(text, min_count=2)
    encoded = pipeline.Encoded.encode(text, vocab)
    assert encoded.ids.dtype == np.int32 and encoded.words == vocab.total
    sentences = [list(vocab.ids(s)) for s in corpus.sentences_of(text)]
    assert [list(encoded.ids[a:b]) for a, b in zip(encoded.starts[:-1], encoded.starts[1:])] == sentences
    # chunks are whole sentences: every sentence lies inside one chunk
    parts = list(encoded.chunks(words=5))
    assert parts[0].start == 0 and parts[-1].stop == encoded.words
    assert all(a.stop == b.start for a, b in zip(parts[:-1], parts[1:]))
    assert set(encoded.starts) >= {p.start for p in parts}
    assert list(encoded.sentence_of(slice(5, 9))) == [0, 1, 1, 2]  # the blank line is no sentence


def test_windows_stay_inside_the_sentence_and_the_reach_drawn():
    rng = np.random.default_rng(0)
    ids = np.arange(100, 160, dtype=np.int32)
    sentence = np.repeat([0, 1], 30)  # two sentences of 30 words
    w_ctx, w_o = pipeline.skipgram_items(ids, sentence, 3, rng)
    distance = np.abs(w_ctx[:, 0] - w_o)
    assert w_ctx.shape[1] == 1 and distance.min() == 1 and distance.max() == 3
    assert np.all((w_ctx[:, 0] < 130) == (w_o < 130))  # never across the sentence boundary
    assert np.bincount(distance)[1] > np.bincount(distance)[3]  # a reach of 1 is drawn for every window size
    w_ctx, w_o = pipeline.cbow_items(ids, sentence, 3, rng)
    assert w_ctx.shape == (60, 6) and np.all((w_ctx >= 0).any(axis=1))
    present = w_ctx >= 0
    assert np.all(np.abs(np.where(present, w_ctx, w_o[:, None]) - w_o[:, None]) <= 3)
    assert np.all((np.where(present, w_ctx, w_o[:, None]) < 130) == (w_o < 130)[:, None])
    one_word = pipeline.cbow_items(np.array([7], np.int32), np.array([0]), 3, rng)
    assert one_word[0].shape == (0, 6)  # a one-word sentence has no window


def test_an_epoch_subsamples_frequent_words_and_counts_every_corpus_word(text):
    vocab = corpus.Vocabulary.build(text, min_count=2)
    encoded = pipeline.Encoded.encode(text, vocab)
    keep = np.array([0.5, 1.0, 1.0])  # "a" kept half the time
    noise = pipeline.NoiseTable.of_counts(vocab.counts)
    chunks = list(pipeline.epoch_items(encoded, keep, "skipgram", 2, noise, 5, np.random.default_rng(1), words=1000))
    assert sum(words for *_, words in chunks) == encoded.words
    assert all(w_neg.shape == (len(w_o), 5) for _, w_o, w_neg, _ in chunks)
    centres = np.bincount(np.concatenate([w_o for _, w_o, _, _ in chunks]), minlength=3)
    # pairs per centre follow the words kept: "a" (index 0) loses about half its pairs against "b"
    assert 0.35 < centres[0] / centres[1] < 0.65
    everything = pipeline.epoch_items(encoded, np.ones(3), "skipgram", 2, noise, 5, np.random.default_rng(1), 1000)
    assert sum(len(o) for _, o, _, _ in everything) > sum(len(o) for _, o, _, _ in chunks)


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_the_alias_table_draws_the_noise_distribution(seed):
    """χ² goodness of fit at p < 1e-3 (see tests/reference/test_samplers.py for the test's false-alarm rate)."""
    dist = noise_distribution(COUNTS)
    table = pipeline.NoiseTable(dist)
    samples = table.draw((2000, 10), np.random.default_rng(seed))
    assert samples.shape == (2000, 10) and samples.dtype == np.int32
    assert chi_square_p_value(samples, dist) > 1e-3


def test_a_wrong_alias_table_is_rejected():
    dist = noise_distribution(COUNTS)
    table = pipeline.NoiseTable(dist)
    table.alias = np.roll(table.alias, 1)  # every column's overflow given to the wrong word
    assert chi_square_p_value(table.draw(20000, np.random.default_rng(0)), dist) < 1e-3
    table = pipeline.NoiseTable(noise_distribution(COUNTS, power=1.0))  # the unigram table, not P_n
    assert chi_square_p_value(table.draw(20000, np.random.default_rng(0)), dist) < 1e-3
