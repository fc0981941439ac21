"""The built-in backends' traits: declared on each class itself, never inherited from the backend it extends."""

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from seqbench.backends import registry
from seqbench.jobs import asv
from seqbench.backends.protocol import Backend, Traits

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = {ep.name: ep for ep in entry_points(group="seqbench.backends") if ep.value.startswith("seqbench.backends.")}


def test_the_built_ins_are_registered():
    assert set(BUILTIN) == {"numpy", "torch", "torch-compile", "torch-native", "jax", "jax-highest", "cupy",
                            "cupy-graph", "cupy-fused", "numba"}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_built_in_declares_its_own_traits(name):
    """Loaded without instantiating (no framework or device needed); a subclass that declared nothing would
    silently carry its parent's grid narrowing and omissions."""
    cls = BUILTIN[name].load()
    assert isinstance(cls.traits, Traits), cls
    assert "traits" in vars(cls), f"{cls.__name__} inherits its traits from {cls.__mro__[1].__name__}"
    assert registry.traits(name) is cls.traits
    assert cls.traits.implementation, f"{name} has no implementation label"


def test_reading_the_traits_imports_no_framework():
    """So a backend whose framework is missing here keeps its traits in grids, shard plans and reports."""
    code = ("import sys; from seqbench.backends import registry; [registry.traits(n) for n in registry.names()]; "
            "print([m for m in ('torch', 'jax', 'cupy') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_two_built_ins_share_a_trait_object_or_a_label():
    classes = [ep.load() for ep in BUILTIN.values()]
    assert len({id(cls.traits) for cls in classes}) == len(classes)
    assert len({cls.traits.implementation for cls in classes}) == len(classes)
    assert all(cls.traits is not Backend.traits for cls in classes)


def test_subclasses_do_not_share_their_parents_omissions():
    traits = {name: registry.traits(name) for name in BUILTIN}
    # torch-compile and torch-native extend torch: only torch is narrowed to float32 on the gpu grid
    assert "gpu" in traits["torch"].grid_dtypes
    assert not traits["torch-native"].grid_dtypes and not traits["torch-compile"].grid_dtypes
    # torch-compile compiles: left out of the quick grid and of the main job, but on the gpu grid (its compiled steps
    # are cached on disk, and on a GPU the whole sequence replays from one CUDA graph); torch-native is on every grid
    assert "quick" in traits["torch-compile"].left_out_of_grids and "gpu" not in traits["torch-compile"].left_out_of_grids
    assert not traits["torch-native"].left_out_of_grids and not traits["torch"].left_out_of_grids
    assert [name for name, t in traits.items() if t.left_out_of_main_job] == ["numba", "torch-compile"]
    # numba is a trainer only: out of every op grid (bench_training's trainer axis has it) and of the main job
    common = asv.suite_common(ROOT / "asv.conf.json", {"benchmark_dir": "benchmarks"})
    assert set(traits["numba"].left_out_of_grids) == set(common.GRIDS)
    assert "numba" not in common.backends("quick") and "numba" in common.trainers()
    # jax-highest extends jax: GPU only, left out of the gpu grid rather than narrowed on it
    assert traits["jax"].compile_seconds.keys() == {"cpu", "cuda"}
    assert traits["jax-highest"].compile_seconds.keys() == {"cuda"}
    assert not traits["jax-highest"].grid_dtypes and "gpu" in traits["jax-highest"].left_out_of_grids
    assert not traits["jax"].left_out_of_grids and not traits["jax"].grid_dtypes  # every gpu-grid dtype
    # the cupy paths share only their framework
    assert {traits[n].preimport for n in ("cupy", "cupy-graph", "cupy-fused")} == {("cupy",)}
    assert not any(traits[n].left_out_of_grids or traits[n].grid_dtypes for n in ("cupy", "cupy-graph", "cupy-fused"))
