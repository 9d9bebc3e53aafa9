"""``python -m hdfm_bench.cli``: the ``hdfm-bench`` command."""
import sys

from . import main

sys.exit(main())
