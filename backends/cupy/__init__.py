"""The cupy backends (``cupy``, ``cupy-graph``, ``cupy-fused``): raw CUDA kernels (``kernels/``) driven through CuPy."""
