"""Registering the tests' third-party backends the way a third party does: through an entry point."""

from pathlib import Path

#: this folder: the plug-in modules of the tests are importable once it is on the path
PLUGINS = Path(__file__).parent


def entry_point_site(root: Path, module: str, backends) -> Path:
    """A folder with a distribution declaring ``backends`` (classes of ``tests/plugins/<module>.py``) in the
    ``seqbench.backends`` entry-point group, as a third party's package does: put it and :data:`PLUGINS` on
    ``sys.path`` (or ``PYTHONPATH``) and seqbench finds them."""
    info = root / f"seqbench_{module}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: seqbench-{module.replace('_', '-')}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqbench.backends]\n" + "".join(
        f"{cls.name} = {module}:{cls.__name__}\n" for cls in backends))
    return root
