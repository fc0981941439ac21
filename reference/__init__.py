"""seqbench.reference — the canonical NumPy statement of every equation in the notes.

Float64 is the oracle; every function also runs in the dtype of its inputs
(the ``numpy`` backend uses that for float32). Conventions (time-major
``x: (T, B, I)``, ``lengths``, ``reverse``) are stated in
:mod:`seqbench.reference.scan`.
"""

from .composite import bidirectional, stacked
from .gradients import FORWARD, check, gradient_norms, vjp
from .loss import log_softmax, sequence_loss, softmax
from .primitives import sigmoid
from .recurrent import GRU_VARIANTS, gru, lstm, rnn
from .rnn_types import encoder_decoder, many_to_many, many_to_one, one_to_many, one_to_one

__all__ = [
    "FORWARD", "GRU_VARIANTS", "bidirectional", "check", "encoder_decoder", "gradient_norms", "gru",
    "log_softmax", "lstm", "many_to_many", "many_to_one", "one_to_many", "one_to_one", "rnn",
    "sequence_loss", "sigmoid", "softmax", "stacked", "vjp",
]
