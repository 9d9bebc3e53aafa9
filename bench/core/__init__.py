"""Configuration and run directories: the lowest layer of the runner (no torch, no data).

``config`` (the frozen, hashed RunConfig), ``rundir`` (file names and the run record), ``io``
(atomic, durable writes), ``hashing`` (one canonical JSON and digest rule), ``overrides`` (the
one ``key=value`` parser).
"""
