"""The seqbench asv suite: benchmarks generated from the op catalog (see ``common``)."""
