"""Every CUDA kernel source compiles with nvcc for sm_80 and sm_90 (no GPU needed).

Each ``backends/cupy/kernels/*.cu`` the cupy backend loads is compiled with the
backend's own command line (:func:`seqbench.backends.cupy.toolchain.nvcc_command`)
to a cubin per architecture, all in parallel once per session; each cubin must
export exactly the ``extern "C"`` kernels the backend looks up. Skipped, with
the reason, only where nvcc is absent.
"""

from __future__ import annotations

import os
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from seqbench.backends.cupy import toolchain

ARCHS = (80, 90)
SOURCES = tuple(toolchain.KERNELS)


def function_symbols(cubin: bytes) -> set[str]:
    """Names of the FUNC symbols in an ELF64 file (a cubin), read from its symbol table."""
    assert cubin[:4] == b"\x7fELF" and cubin[4] == 2, "not an ELF64 file"
    shoff, = struct.unpack_from("<Q", cubin, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", cubin, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", cubin, shoff + k * shentsize) for k in range(shnum)]
    names = set()
    for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        strtab_offset = sections[link][4]
        for k in range(size // entsize):
            st_name, st_info = struct.unpack_from("<IB", cubin, offset + k * entsize)
            if st_info & 0xF == 2:  # STT_FUNC
                end = cubin.index(b"\0", strtab_offset + st_name)
                names.add(cubin[strtab_offset + st_name:end].decode())
    return names


@pytest.fixture(scope="session")
def cubins(tmp_path_factory):
    """``{(source, arch): (returncode, stderr, cubin bytes, seconds)}``, compiled in parallel."""
    nvcc = toolchain.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc is not installed (not on the PATH, $CUDA_PATH/bin or /usr/local/cuda/bin): "
                    "the kernels cannot be compiled here")
    out = tmp_path_factory.mktemp("cubins")

    def compile_one(job):
        source, arch = job
        target = out / f"{source}.sm_{arch}.cubin"
        start = time.perf_counter()
        done = subprocess.run(toolchain.nvcc_command(nvcc, source, arch, target, defines=toolchain.DEFINES),
                              capture_output=True, text=True)
        data = target.read_bytes() if done.returncode == 0 else b""
        return job, (done.returncode, done.stderr, data, time.perf_counter() - start)

    # the persistent kernels take longest: first, so the others fill the remaining workers
    jobs = sorted(((source, arch) for source in SOURCES for arch in ARCHS),
                  key=lambda job: job[0] not in toolchain.COOPERATIVE)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        results = dict(pool.map(compile_one, jobs))
    print(f"compiled {len(jobs)} cubins in {time.perf_counter() - start:.1f}s")
    return results


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES)
def test_kernel_compiles(cubins, source, arch):
    returncode, stderr, cubin, _ = cubins[(source, arch)]
    assert returncode == 0, f"nvcc failed on {source} for sm_{arch}:\n{stderr}"
    assert "warning" not in stderr.lower(), f"nvcc warned on {source} for sm_{arch}:\n{stderr}"
    exported = function_symbols(cubin)
    wanted = set(toolchain.kernel_names(source, toolchain.suffixes(source)))
    assert wanted <= exported, f"{source} sm_{arch} lacks kernels {sorted(wanted - exported)}"


def test_every_source_is_compiled():
    """Every .cu beside the backend is either loaded by it (and compiled above) or the host harness."""
    on_disk = {p.name for p in toolchain.KERNELS_DIR.glob("*.cu")}
    assert on_disk == set(SOURCES) | {toolchain.HOST_HARNESS}
