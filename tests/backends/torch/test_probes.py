"""The torch probes (backends/torch/probes.py): their measurements run on the CPU as a dry run, and their
answers name the cause the rows show (each cause from rows made to show it, the others from rows that do not)."""

import pytest

torch = pytest.importorskip("torch")

from seqbench.backends import registry  # noqa: E402
from seqbench.backends.torch import probes  # noqa: E402
from seqbench.backends.torch.probes import AS_RUN, CONTROL, EVERY_SWITCH, MODEL, OVERRIDE, TRUNCATED  # noqa: E402


def test_the_probes_are_declared_where_they_ask_a_gpu_library():
    assert [p.name for p in registry.backend("torch-native").probes("cuda")] == ["cudnn-float32"]
    assert [p.name for p in registry.backend("torch").probes("cuda:tf32")] == ["tf32-matmul"]
    assert registry.backend("torch-native").probes("cpu") == registry.backend("torch").probes("cpu") == []
    assert registry.backend("torch-compile").probes("cuda:tf32") == []  # asked once, by torch


def test_the_cudnn_probe_runs_on_the_cpu_and_finds_nothing_to_explain():
    rows = probes.cudnn_rows("cpu")
    settings = {r["setting"] for r in rows}
    assert settings == {AS_RUN, OVERRIDE, CONTROL}  # the CUDA-only settings left out, the fresh process run
    assert all(0 < r["value"] < 10 for r in rows), rows  # float32 on the CPU: a few eps
    assert probes.cudnn_answer(rows).startswith("Every case is within")


def _rows(errors: dict) -> list[dict]:
    """Rows of every case under every setting: ``errors[(case, setting)]``, else 1 eps."""
    settings = (AS_RUN, EVERY_SWITCH, OVERRIDE, CONTROL)
    return [{"case": c.label, "setting": s, "value": errors.get((c.label, s), 1.0), "unit": "eps"}
            for c in probes.CASES for s in settings]


UNPACKED_SMALL_H = ("RNN tanh, H 32, T 64", "RNN relu, H 32, T 64", "RNN tanh, H 32, T 1", "LSTM, H 32, T 64")


def test_the_answer_names_the_algorithm_when_packed_input_is_accurate_and_no_switch_helps():
    rows = _rows({(case, s): 40.0 for case in UNPACKED_SMALL_H for s in (AS_RUN, EVERY_SWITCH, OVERRIDE)})
    answer = probes.cudnn_answer(rows)
    assert "4 of 7 cases are off" in answer and "not a TF32 switch" in answer
    assert "The algorithm" in answer and "ReLU is off too: not the transcendental functions" in answer
    assert "Off after one step already" in answer


def test_the_answer_names_a_tf32_switch_when_one_brings_the_error_back():
    rows = _rows({(case, AS_RUN): 3000.0 for case in ("RNN tanh, H 32, T 64", "RNN tanh, H 32, T 64, packed")})
    answer = probes.cudnn_answer(rows)
    assert f"{EVERY_SWITCH}: brings every case back" in answer and "The algorithm" not in answer
    assert "ReLU is not off where tanh is: the activation functions" in answer


def test_the_tf32_probe_tells_rounding_from_truncation():
    rows = probes.tf32_rows("cpu")
    err = {(r["case"], r["setting"]): r["value"] for r in rows}
    for case in {r["case"] for r in rows}:
        assert err[(case, "matmul on cpu (IEEE)")] < 10 < err[(case, MODEL)] < err[(case, TRUNCATED)] / 2
    assert probes.tf32_answer(rows).startswith("No TF32 matmul here")
    like_model = rows + [{"case": r["case"], "setting": "cuBLAS as run on cuda:tf32", "value": r["value"], "unit": "eps"}
                         for r in rows if r["setting"] == MODEL]
    assert "1x the faithful model's error" in probes.tf32_answer(like_model)
