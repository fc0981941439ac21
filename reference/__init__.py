"""seqbench.reference — the canonical NumPy statement of every equation in the notes.

Float64 is the oracle; every function also runs in the dtype of its inputs
(the ``numpy`` backend uses that for float32). Conventions (time-major
``x: (T, B, I)``, ``lengths``, ``reverse``) are stated in
:mod:`seqbench.reference.scan`; the embedding layout (``E: (V, d)``, rows
are words) in :mod:`seqbench.reference.embedding`.
"""

from .composite import bidirectional, stacked
from .embedding import embedding_lookup, embedding_one_hot, one_hot, softmax_prob
from .glove import cooccurrence, glove_cost, glove_embedding, weighting
from .gradients import FORWARD, check, gradient_norms, vjp
from .loss import log_softmax, sequence_loss, softmax
from .primitives import sigmoid
from .recurrent import GRU_VARIANTS, gru, lstm, rnn
from .rnn_types import encoder_decoder, many_to_many, many_to_one, one_to_many, one_to_one
from .word2vec import (
    cbow_loss, cbow_negative_sampling_loss, cbow_pairwise_loss, log_sigmoid, negative_sampling_loss, negative_sampling_lookup_loss,
    noise_distribution, sample_negatives, skipgram_loss,
)

__all__ = [
    "FORWARD", "GRU_VARIANTS", "bidirectional", "check", "encoder_decoder", "gradient_norms", "gru",
    "log_softmax", "lstm", "many_to_many", "many_to_one", "one_to_many", "one_to_one", "rnn",
    "sequence_loss", "sigmoid", "softmax", "stacked", "vjp",
    # word embeddings
    "cbow_loss", "cbow_negative_sampling_loss", "cbow_pairwise_loss", "cooccurrence", "embedding_lookup", "embedding_one_hot", "glove_cost",
    "glove_embedding", "log_sigmoid", "negative_sampling_lookup_loss", "negative_sampling_loss", "noise_distribution",
    "one_hot", "sample_negatives", "skipgram_loss", "softmax_prob", "weighting",
]
