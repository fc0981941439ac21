"""Building the cupy backend's CUDA kernels: the sources and what they export, the compiler choice, the nvcc and
host-build command lines, and the cubin cache. Imports no CuPy, so the tests build with exactly these settings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from seqbench.backends.protocol import BackendUnavailable

KERNELS_DIR = Path(__file__).with_name("kernels")
HEADERS = ("cell_math.cuh", "kernel_common.cuh")
CXX_FLAGS = ("-std=c++17",)
#: Also instantiate the float16 kernels (storage in half, arithmetic in float: cell_math.cuh's Acc).
DEFINES = ("-DSEQBENCH_HALF",)

#: The exported kernels of each source, without the dtype suffix (``_f32``/``_f64`` are appended).
KERNELS = {
    "rnn_cells.cu": (
        "rnn_forward_step", "rnn_backward_step", "lstm_forward_step", "lstm_backward_step",
        "gru_notes_gates_step", "gru_notes_candidate_step", "gru_notes_backward_step_1",
        "gru_notes_backward_step_2", "gru_reset_after_step", "gru_reset_after_backward_step",
    ),
    "persistent_lstm.cu": (
        "persistent_rnn_forward", "persistent_lstm_forward", "persistent_gru_notes_forward",
        "persistent_gru_reset_after_forward",
    ),
    "embedding.cu": ("negative_sampling", "glove"),
    "skipgram_corpus.cu": ("skipgram_corpus",),
}
#: Sources whose kernels need a cooperative launch (grid-wide sync).
COOPERATIVE = ("persistent_lstm.cu",)
#: Sources without float16 kernels (their gradients are scattered with float/double atomics).
NO_HALF = ("embedding.cu", "skipgram_corpus.cu")
#: The host build of the kernels and their math (tests; see its header).
HOST_HARNESS = "host_harness.cu"
#: The suffix of a kernel's name per dtype (``SB_FOR_TYPES`` in kernel_common.cuh).
SUFFIX = {"float32": "f32", "float64": "f64", "float16": "f16"}


def suffixes(source: str, half: bool = True) -> tuple:
    """The dtype suffixes of ``source``'s kernels (``f16`` needs :data:`DEFINES`)."""
    dtypes = ("float32", "float64") + (("float16",) if half and source not in NO_HALF else ())
    return tuple(SUFFIX[dtype] for dtype in dtypes)


def kernel_names(source: str, suffixes=("f32", "f64")) -> list[str]:
    """The ``extern "C"`` names ``source`` exports."""
    return [f"{stem}_{suffix}" for stem in KERNELS[source] for suffix in suffixes]


def find_nvcc() -> str | None:
    """``nvcc`` from ``$SEQBENCH_NVCC``, the PATH, ``$CUDA_PATH/bin`` or ``/usr/local/cuda/bin``."""
    candidates = [os.environ.get("SEQBENCH_NVCC"), shutil.which("nvcc")]
    roots = (os.environ.get("CUDA_PATH"), "/usr/local/cuda")
    candidates += [str(Path(root) / "bin" / "nvcc") for root in roots if root]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def nvcc_version() -> str:
    """What ``nvcc --version`` prints."""
    return subprocess.run([find_nvcc(), "--version"], capture_output=True, text=True).stdout


def choose_compiler() -> str:
    """``"nvcc"`` or ``"nvrtc"``: ``$SEQBENCH_CUPY_COMPILER``, else nvcc where it is found, else NVRTC."""
    choice = os.environ.get("SEQBENCH_CUPY_COMPILER", "auto")
    if choice not in ("auto", "nvcc", "nvrtc"):
        raise BackendUnavailable(f"SEQBENCH_CUPY_COMPILER must be auto, nvcc or nvrtc, got {choice!r}")
    if choice == "auto":
        return "nvcc" if find_nvcc() else "nvrtc"
    if choice == "nvcc" and not find_nvcc():
        raise BackendUnavailable("SEQBENCH_CUPY_COMPILER=nvcc but nvcc is not on the PATH")
    return choice


def nvcc_command(nvcc: str, source: str | Path, arch: int | str, output: str | Path, defines: tuple = ()) -> list[str]:
    """The nvcc command line compiling kernel ``source`` to a cubin for ``sm_<arch>`` at ``output``.

    The backend compiles with it for its device; the tests compile every source
    with exactly this command for sm_80 and sm_90.
    """
    return [nvcc, *CXX_FLAGS, f"-arch=sm_{arch}", "-cubin", f"-I{KERNELS_DIR}", *defines, "-o", str(output),
            str(KERNELS_DIR / source)]


def host_build_command(output: str | Path, compiler: str | None = None, source: str = HOST_HARNESS,
                       defines: tuple = ()) -> list[str]:
    """The command building :data:`HOST_HARNESS` (or one kernel ``source``, with ``SEQBENCH_HOST_BUILD`` defined)
    into a shared library (g++/c++ if found, else nvcc); ``defines``: more ``-D`` flags."""
    compiler = compiler or shutil.which("g++") or shutil.which("c++") or find_nvcc()
    if compiler is None:
        raise FileNotFoundError("no g++, c++ or nvcc to build the host harness")
    defines = (*(() if source == HOST_HARNESS else ("-DSEQBENCH_HOST_BUILD=1",)), *defines)
    path = str(KERNELS_DIR / source)
    if Path(compiler).name.startswith("nvcc"):
        return [compiler, *CXX_FLAGS, "-O1", "-shared", "-Xcompiler", "-fPIC", f"-I{KERNELS_DIR}", *defines, "-o",
                str(output), path]
    return [compiler, *CXX_FLAGS, "-O1", "-shared", "-fPIC", f"-I{KERNELS_DIR}", *defines, "-x", "c++", "-o",
            str(output), path]


def _sources_digest(*extra: str) -> str:
    h = hashlib.sha256()
    for name in (*HEADERS, *KERNELS):
        h.update((KERNELS_DIR / name).read_bytes())
    for item in extra:
        h.update(item.encode())
    return h.hexdigest()[:16]


def nvcc_cubin(source: str, arch: str, defines: tuple) -> Path:
    """``source`` compiled by nvcc for ``sm_<arch>``, from the cache (``$SEQBENCH_CACHE/kernels``, by default
    ``~/.cache/seqbench/kernels``) when the sources, flags and nvcc are those it was built with."""
    nvcc = find_nvcc()
    cache = Path(os.environ.get("SEQBENCH_CACHE", Path.home() / ".cache" / "seqbench")) / "kernels"
    cache.mkdir(parents=True, exist_ok=True)
    digest = _sources_digest(nvcc_version(), *CXX_FLAGS, *defines)
    cubin = cache / f"{Path(source).stem}-sm{arch}-{digest}.cubin"
    if not cubin.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            out = Path(tmp) / cubin.name
            done = subprocess.run(nvcc_command(nvcc, source, arch, out, defines=defines), capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise RuntimeError(f"nvcc failed on {source} for sm_{arch}:\n{done.stderr[-4000:]}")
            os.replace(out, cubin)  # atomic: concurrent processes never load half a file
    return cubin
