"""Performance benchmarks (not tests): a harness (``harness``), one module per section of
results/perf.md and the runner (``runner``) behind ``hdfm-bench perf``."""
