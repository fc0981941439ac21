"""The jax backends (``jax``, ``jax-highest``) and the JAX functions they jit."""
