"""The ``numba`` backend: the embedding trainers compiled to native code, one item at a time, hogwild threads."""
