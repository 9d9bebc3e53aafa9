import os

# submitit configures logging when first imported (logging.config.dictConfig), which shuts down every
# existing handler — pytest's log-capture handlers included when that import happens inside a
# test. Tests keep submitit's logger unconfigured (its warnings still reach stderr).
os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")

# Under pytest-xdist each worker (and every process it starts: CLI runs, sweep jobs, DDP ranks) gets
# its share of the cores, never all of them: two workers that each take every core oversubscribe them
# (OpenMP threads busy-wait), which made the suite ~2x slower (docs: core.threads).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    from hdfm_bench.core.threads import THREADS_ENV, available_cores, share

    _share = str(share(available_cores(), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault(THREADS_ENV, _share)
    os.environ.setdefault("OMP_NUM_THREADS", _share)
    import torch  # (the package import above already loaded torch: set its pool explicitly)

    torch.set_num_threads(int(os.environ[THREADS_ENV]))

import pytest

from tests.helpers import SHAPES

#: The slowest test modules, longest first (scripts/test.sh prints the slowest tests): they run first,
#: so that the two xdist workers end the run on short tests instead of one of them waiting alone for
#: a 40-80 s test (worksteal hands each worker a contiguous half and steals from the queues' tails).
SLOW_FIRST = ("tests/slurm/test_slurm_sweep.py", "tests/evaluation/test_inception.py",
              "tests/experiments/test_suite.py", "tests/training/test_precision.py",
              "tests/sweeps/test_owned_jobs.py", "tests/evaluation/test_fidelity.py", "tests/experiments/test_toy.py",
              "tests/experiments/test_reproduce.py", "tests/sweeps/test_sweeps.py")


def pytest_collection_modifyitems(items: list) -> None:
    """Slow modules first, each kept whole and in its own order (module fixtures are set up once)."""
    rank = {module: i for i, module in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(params=SHAPES, ids=["image", "signal"])
def shape(request):
    return request.param
