"""Sweeps: a TOML spec → runs keyed by their config hash → submitit jobs (local, Slurm, debug).

``spec`` (parse, expand, validate), ``job`` (what one job runs), ``state`` (what the runs are
doing), ``submit`` (plan, submit, wait, dry run) and ``submitit_adapter`` (every use of submitit).
Import from the submodules; this package imports nothing by itself.
"""
