"""Word-embedding ops and objectives: lookups, softmax, skip-gram, CBOW, negative sampling, GloVe.

One class per catalog op of the ``embedding`` family, e.g.
``bench_embedding.negative_sampling_lookup_loss.time_forward``; axes backend ×
device × dtype × the op's own sizes among vocab, dim, batch and words
(throughput in words/s). See ``common``.
"""

from . import common

globals().update(common.benchmark_classes("embedding", __name__))
