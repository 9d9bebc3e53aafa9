"""An example hdfm-bench plugin (issue 27): a corruption path none of the built-ins is — variance
exploding (VE) noise, z_t = x + σ(t) ε — and a sampler of its own, registered through the public
``register_path`` / ``register_sampler`` from outside the package. Installing this package is all it
takes: hdfm-bench finds it through the ``hdfm_bench.plugins`` entry point."""
from .path import VarianceExploding
from .sampler import VEDDIM

__all__ = ["VarianceExploding", "VEDDIM"]
