"""Sampling a trained run: ``settings`` (the sampling protocol object), ``guidance`` (CFG with
JiT's interval), ``generate``, ``jax`` (the JAX twin's sampler) and ``output`` (sample files).

Import from the submodules; this package imports nothing, so ``settings`` stays light for the CLI.
"""
