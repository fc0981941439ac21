"""A third party's backends that declare traits: the tests install this package with pip and check that each
trait reaches the grid, the shard plan, the report and the main job as a built-in's would."""

from seqbench.backends.numpy_backend import NumpyBackend
from seqbench.backends.protocol import Traits


class MyFast(NumpyBackend):
    """The reference's math under another name, with trainer steps of its own."""

    name = "myfast"
    traits = Traits(implementation="hand-fused NumPy (test plug-in)", compile_seconds={"cpu": 7.0},
                    grid_dtypes={"mid": (("float32",), "myfast benchmarks float32 only on the mid grid")},
                    left_out_of_grids={"full": "myfast is too slow for the full grid"})

    def training_steps(self, device, dtype):
        return super().training_steps(device, dtype)


class MySlow(NumpyBackend):
    """A backend the main job and the quick grid leave out, by its own word."""

    name = "myslow"
    traits = Traits(left_out_of_main_job="compiles for an hour; seqbench check --backend myslow checks it",
                    left_out_of_grids={"quick": "myslow is too slow for the quick grid"})
