"""The extractors as torch-fidelity feature extractors (registered in torch-fidelity on import).

Every extractor defined here also accepts *precomputed features*: a 2-D floating batch (B, D) is
returned unchanged. That is how cached reference features are fed through torch-fidelity.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch_fidelity
from PIL import Image
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from hdfm_bench.tasks import u8_to_unit

from .domain_cnn import network
from .errors import MetricError
from .extractors import get_extractor_info


def _passthrough(x: torch.Tensor) -> bool:
    """True for a batch of precomputed features (B, D) rather than images."""
    return x.dim() == 2 and x.is_floating_point()


class _SingleFeature(torch_fidelity.FeatureExtractorBase):
    FEATURE = "feat"

    @classmethod
    def get_provided_features_list(cls):
        return (cls.FEATURE,)

    @classmethod
    def get_default_feature_layer_for_metric(cls, metric):
        return cls.FEATURE

    @staticmethod
    def can_be_compiled():
        return False


class DomainFeatureExtractor(_SingleFeature):
    """A domain classifier as a torch-fidelity extractor: uint8 (B,1,H,W) → float64 (B,128).

    ``feature_extractor_weights_path`` (a calculate_metrics kwarg) is the state_dict file.
    """

    EXTRACTOR = "domain-mnist"

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise MetricError(f"extractor '{name}' needs feature_extractor_weights_path")
        self.net = network(get_extractor_info(self.EXTRACTOR))
        state = torch.load(feature_extractor_weights_path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)

    def forward(self, x):
        if _passthrough(x):
            return (x.to(torch.float64),)
        if x.dtype != torch.uint8:
            raise MetricError(f"extractor expects uint8 images, got {x.dtype}")
        return (self.net.features(u8_to_unit(x)).to(torch.float64),)


class DomainMNIST(DomainFeatureExtractor):
    EXTRACTOR = "domain-mnist"


class DomainDigits(DomainFeatureExtractor):
    EXTRACTOR = "domain-digits"


class DomainDeadLeaves(DomainFeatureExtractor):
    EXTRACTOR = "domain-deadleaves"


class InceptionOfflineExtractor(_SingleFeature):
    """TorchScript InceptionV3 wrapper: uint8 (B,C,H,W) → TF1 bilinear resize to 299 → grey
    repeated to 3 channels → (x − 128)/128 → the module → float64 (B, 2048)."""

    FEATURE = "2048"
    SIZE = 299

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise MetricError(f"extractor '{name}' needs feature_extractor_weights_path (TorchScript file)")
        with warnings.catch_warnings():  # torch 2.14 marks torch.jit.load as deprecated
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(feature_extractor_weights_path), map_location="cpu")
        self.net.eval()

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) → float32 (B, 3, 299, 299) in [0, 255]: the original FID code's TF1 bilinear."""
        x = x.to(torch.float32)
        if x.shape[-2:] != (self.SIZE, self.SIZE):
            x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(self.SIZE, self.SIZE), align_corners=False)
        return x

    def forward(self, x):
        if _passthrough(x):
            return (x.to(torch.float64),)
        if x.dtype != torch.uint8:
            raise MetricError(f"extractor expects uint8 images, got {x.dtype}")
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = (self.resize(x) - 128) / 128
        return (self.net(x).reshape(x.shape[0], -1).to(torch.float64),)


class InceptionOfflineClean(InceptionOfflineExtractor):
    """The same network with clean-fid's resize (``inception-offline-clean``, extractors.py)."""

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """PIL's bicubic resize of each channel as a 32-bit float image (mode 'F': no rounding to uint8
        before the network; PIL's filter widens with the scale, i.e. antialiases when shrinking), values
        clipped to [0, 255] — clean-fid's ``mode="clean"`` (Parmar et al., CVPR 2022, §4)."""
        size = (self.SIZE, self.SIZE)
        planes = x.to(torch.float32).cpu().numpy().reshape(-1, *x.shape[-2:])
        out = np.stack([np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BICUBIC)) for p in planes])
        return torch.from_numpy(out.clip(0, 255)).reshape(*x.shape[:2], *size).to(x.device)


class InceptionCompatExtractor(FeatureExtractorInceptionV3):
    """torch-fidelity's inception-v3-compat plus grey → RGB repetition and feature passthrough."""

    def forward(self, x):
        if _passthrough(x):
            return (x,)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return super().forward(x)


for _name, _cls in (("hdfm-domain-mnist", DomainMNIST), ("hdfm-domain-digits", DomainDigits),
                    ("hdfm-domain-deadleaves", DomainDeadLeaves),
                    ("hdfm-inception-offline", InceptionOfflineExtractor),
                    ("hdfm-inception-offline-clean", InceptionOfflineClean),
                    ("hdfm-inception", InceptionCompatExtractor)):
    if _name not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(_name, _cls)
