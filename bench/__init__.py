"""hdfm-bench: corruption processes for image generative models, compared head to head.

One import root, by layer (each imports only the layers below it; the import-linter contract in
pyproject.toml checks it):

=========================  ===============================================================
``hdfm_bench.cli``         the ``hdfm-bench`` command
``.experiments``/``.perf`` the default suite, paper reproductions, gallery / benchmarks
``.sweeps``                TOML specs → hashed runs → submitit jobs (local, Slurm, debug)
``.evaluation``            metrics, the protocol, ``evaluate_run``, the store, tables, plots
``.sampling``              sampling settings, guidance, generation, sample files
``.training``              the shared rules, the torch and JAX loops, checkpoints
``.backbones``             torch networks and their JAX twins
``.tasks``                 data, offline-first, in [-1, 1]
``.core``/``.methods``     config, run dirs, atomic I/O, hashing / the math (paths, samplers)
=========================  ===============================================================

Convention everywhere: t ∈ [0, 1], t = 0 the source (noise / most corrupted), t = 1 the data.

Extending it: every table a user may add to has a public ``register_*`` function, used by the
built-ins themselves (``hdfm-bench list`` shows what is registered)::

    from hdfm_bench import register_path, register_sampler, register_backbone, register_task, \
        register_extractor, register_metric
"""
from importlib.metadata import PackageNotFoundError, version

from hdfm_bench.backbones.registry import register_backbone
from hdfm_bench.evaluation.metrics.extractors import register_extractor
from hdfm_bench.evaluation.metrics.features import register_metric
from hdfm_bench.methods import register_path, register_sampler
from hdfm_bench.tasks import register_task

try:
    __version__ = version("hdfm-bench")
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__", "register_backbone", "register_extractor", "register_metric", "register_path",
           "register_sampler", "register_task"]
