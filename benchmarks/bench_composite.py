"""Bidirectional and stacked (deep, L = 2) RNN, LSTM and GRU.

One class per catalog op, e.g. ``bench_composite.stacked_lstm.time_forward``;
axes backend × device × dtype × seq_len × hidden × batch. See ``common``.
"""

from . import common

globals().update(common.benchmark_classes("composite", __name__))
