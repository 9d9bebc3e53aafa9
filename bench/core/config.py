"""One fully resolved run configuration: task × path × target × loss × backbone × budget.

Loaded from TOML, overridden from the command line, frozen, hashed: the hash of everything that
changes the trained weights is the run id, so the same command finds (and resumes) the same run.
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from . import plugins
from .hashing import RUN_ID_DIGITS, short_hash
from .overrides import OverrideError, apply_override, non_finite
from .values import CoercionError, coerce

BACKENDS = ("torch", "jax")
DEVICES = ("auto", "cpu", "cuda")

DOCS = {
    "task": "data task",
    "task_params": "task parameters, e.g. root=/data/cifar10",
    "path": "corruption path",
    "path_params": "path parameters, e.g. a=0.5",
    "target": "what the network predicts ('' = the path's default)",
    "loss": "loss space ('' = the path's default for the target)",
    "norm": "loss norm: l2 | l1 ('' = the path's default)",
    "backbone": "network",
    "backend": "training framework: torch | jax (equinox twins of vit and mlp; optax AdamW under jit)",
    "backbone_params": "backbone parameters, e.g. size=tiny, patch=4",
    "conditional": "class-conditional training (label dropout, CFG at sampling)",
    "label_dropout": "probability of replacing the label by the null class",
    "steps": "optimizer steps (budget)",
    "batch_size": "images per step (budget)",
    "lr": "AdamW learning rate after warm-up",
    "warmup": "linear warm-up steps",
    "weight_decay": "AdamW weight decay",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2 (JiT: 0.95)",
    "grad_clip": "gradient-norm clip (0 = off)",
    "ema_decays": "EMA decays kept (sample with any)",
    "seed": "seed of init, data order, noise and times",
    "checkpoint_every": "checkpoint period in steps (also at the end)",
    "keep_every": "also keep a copy of the checkpoint every this many steps (RUN/checkpoints/; 0 = none)",
    "device": "auto | cpu | cuda",
    "bf16": "bf16 autocast on a GPU",
    "bf16_on_cpu": "bf16 autocast on a CPU as well (part of the run id when true)",
    "compile": "torch.compile the backbone (inductor; the numbers do not change beyond float noise)",
    "workers": "DataLoader worker processes for streamed tasks (image folders, zips)",
    "log_every": "read the loss back from the device (and check it) every this many steps",
    "tb": "TensorBoard event files in RUN/tb/ (loss, lr, grad norm, speed, a sample grid per checkpoint)",
    "out_dir": "folder holding run directories",
}


class RunConfigError(ValueError):
    """A bad config file, key or value; one line naming the problem."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    # what is compared
    task: str = "mnist"
    task_params: dict = dataclasses.field(default_factory=dict)
    path: str = "noise_fm"
    path_params: dict = dataclasses.field(default_factory=dict)
    target: str = ""          # "" = the path's published default (e.g. x for noise_fm, eps for BDM)
    loss: str = ""            # "" = the path's default loss space for that target
    norm: str = ""            # "" = the path's default norm (l2; l1 for cold_blur)
    backbone: str = "vit"
    backbone_params: dict = dataclasses.field(default_factory=dict)
    backend: str = "torch"    # torch | jax (training.jax_trainer, backbones.jax): same paths, objective and samplers
    conditional: bool = True  # class-conditional with label dropout (CFG at sampling)
    label_dropout: float = 0.1
    plugins: tuple = ()       # modules or .py files loaded first (core.plugins); their code hash is in the run id
    # the budget (identical across compared runs)
    steps: int = 800
    batch_size: int = 128
    lr: float = 2e-3
    warmup: int = 50
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    ema_decays: tuple = (0.99, 0.999)
    seed: int = 0
    # running (not part of the run id)
    checkpoint_every: int = 200
    keep_every: int = 0       # 0: keep only the latest checkpoint
    device: str = "auto"      # auto | cpu | cuda
    bf16: bool = True         # bf16 autocast, used only on a GPU
    out_dir: str = "runs"
    bf16_on_cpu: bool = False
    compile: bool = False
    workers: int = 2
    log_every: int = 10
    tb: bool = True           # TensorBoard event files (training.tblog); never changes a number

    RUN_ID_EXCLUDES: typing.ClassVar[tuple] = ("checkpoint_every", "keep_every", "device", "out_dir", "compile",
                                               "workers", "log_every", "tb")
    #: fields added later: part of the run id only when not at their default, so earlier ids stay valid
    RUN_ID_LATER: typing.ClassVar[dict] = {"backend": "torch", "bf16_on_cpu": False, "plugins": []}

    def __post_init__(self) -> None:
        # a file plugin is named absolutely (a job may run elsewhere); loaded before any name is looked up
        try:
            object.__setattr__(self, "plugins", tuple(plugins.absolute(p) for p in self.plugins))
            plugins.load_all(self.plugins)
        except plugins.PluginError as err:
            raise RunConfigError(str(err)) from None
        for f in dataclasses.fields(self):
            bad = non_finite(getattr(self, f.name), f.name)
            if bad:
                raise RunConfigError(f"{bad} must be a finite number, got {getattr(self, f.name)!r}")
        checks = [
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.warmup >= 0, f"warmup must be >= 0, got {self.warmup}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (0 <= self.beta1 < 1, f"beta1 must lie in [0, 1), got {self.beta1}"),
            (0 <= self.beta2 < 1, f"beta2 must lie in [0, 1), got {self.beta2}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.label_dropout < 1, f"label_dropout must lie in [0, 1), got {self.label_dropout}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}"),
            (self.checkpoint_every >= 1, f"checkpoint_every must be >= 1, got {self.checkpoint_every}"),
            (self.keep_every >= 0, f"keep_every must be >= 0 (0 = keep no copies), got {self.keep_every}"),
            (self.keep_every == 0 or self.keep_every % self.checkpoint_every == 0,
             f"keep_every ({self.keep_every}) must be a multiple of checkpoint_every ({self.checkpoint_every})"),
            (self.workers >= 0, f"workers must be >= 0, got {self.workers}"),
            (self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got '{self.device}'"),
            (self.backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'"),
            (len(self.ema_decays) >= 1 and all(0 < d < 1 for d in self.ema_decays),
             f"ema_decays must be numbers in (0, 1), got {list(self.ema_decays)}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise RunConfigError(msg)

    # ---- identity -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ema_decays"] = list(self.ema_decays)
        d["plugins"] = list(self.plugins)
        return d

    def run_id(self) -> str:
        d = {k: v for k, v in self.to_dict().items() if k not in self.RUN_ID_EXCLUDES}
        for key, default in self.RUN_ID_LATER.items():
            if d[key] == default:
                del d[key]
        if self.plugins:  # the plugins' code, not where their files lie
            d["plugins"] = plugins.identity(self.plugins)
        digest = short_hash(d, RUN_ID_DIGITS)
        return f"{self.task}-{self.path}-{self.target or 'default'}-{digest}"

    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_id()

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        known = {f.name: f for f in cls.fields()}
        kwargs = {}
        for key, value in data.items():
            if key not in known:
                raise RunConfigError(f"{source}: unknown key '{key}'; known: {', '.join(known)}")
            kwargs[key] = _coerce(known[key], value, source)
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
        """Read a TOML file (optional), then apply ``key=value`` overrides (``a.b=v`` for params)."""
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if p.is_dir():
                raise RunConfigError(f"config {p} is a folder, not a TOML file")
            if not p.is_file():
                raise RunConfigError(f"config file not found: {p}")
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                raise RunConfigError(f"{p}: not a UTF-8 text file") from None
            except tomllib.TOMLDecodeError as err:
                raise RunConfigError(f"{p}: invalid TOML: {err}") from None
        try:
            for item in overrides or []:
                apply_override(data, item, "--set")
        except OverrideError as err:
            raise RunConfigError(str(err)) from None
        return cls.from_mapping(data, str(path) if path else "override")


def _coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    """A config value as its field's type (core.values.coerce)."""
    kind = f.type if not isinstance(f.type, str) else {"str": str, "int": int, "float": float, "bool": bool,
                                                        "dict": dict, "tuple": tuple}[f.type]
    try:
        return coerce(value, kind)
    except CoercionError:
        raise RunConfigError(f"{source}: '{f.name}' expects {kind.__name__}, got {value!r}") from None
