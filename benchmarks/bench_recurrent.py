"""Recurrent cells over a sequence (RNN, LSTM, GRU in both variants) and the sequence loss.

One class per catalog op, e.g. ``bench_recurrent.lstm.time_forward``; axes
backend × device × dtype × seq_len × hidden × batch (the loss: × vocab instead
of hidden). See ``common`` for the grids and caps.
"""

from . import common

globals().update(common.benchmark_classes("recurrent", __name__))
