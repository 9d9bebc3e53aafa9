"""JAX (equinox) twins of the torch backbones: the same architecture, parameter names and init.

``twin(torch_model)`` copies a torch ``vit`` or ``mlp`` into its equinox twin;
``state_dict(twin)`` gives the weights back under the torch parameter names, so a JAX run's
checkpoint loads into the torch model unchanged.
"""
from __future__ import annotations

from .mlp import ToyMLP, from_torch, init_mlp


def twin(model):
    """The equinox twin of a torch backbone (weights copied): vit → ``vit.ViT``, mlp → ``ToyMLP``."""
    from . import mlp, vit

    name = model.config["name"]
    if name == "mlp":
        if model.y_embed is not None:
            raise vit.JaxBackboneError("backend jax: the mlp twin is unconditional; set conditional=false "
                                       "or use a task without classes")
        return mlp.from_torch(model)
    return vit.from_torch(model)  # refuses unet and unsupported vit options with one line


def state_dict(jmodel) -> dict:
    """The twin's weights as a torch state_dict (torch parameter names)."""
    from . import mlp, vit

    return (mlp.to_state_dict if isinstance(jmodel, mlp.ToyMLP) else vit.to_state_dict)(jmodel)


__all__ = ["ToyMLP", "from_torch", "init_mlp", "twin", "state_dict"]
