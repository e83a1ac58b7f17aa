"""Typed, frozen configs: the single home of defaults. No torch here (help must start fast).

`ModelConfig` describes the SampleRNN architecture, `TrainConfig` the optimisation. Presets are
named `ModelConfig`/`TrainConfig` pairs; any field can be overridden from the command line
(`--dim 256 --frame-sizes 8,4`). The resolved pair is saved inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from typing import Any

from inspire.errors import ConfigError

NO_LABEL = "none"  # the steering word for "no label" (row 0 of every label table)
LABEL_BY = ("none", "track", "folder")  # or the path of a CSV file of sections (file,start,end,label)


@dataclass(frozen=True)
class ModelConfig:
    """SampleRNN (Mehri et al. 2017).

    `frame_sizes[0]` is the frame of the lowest frame-level tier in samples and the number of
    past samples the sample-level MLP sees; each further entry is how many frames of the tier
    below one frame of the next tier up spans. (16,) is a 2-tier model; (16, 4) a 3-tier one whose
    top tier steps every 64 samples.
    """

    frame_sizes: tuple[int, ...] = (16, 4)
    dim: int = 1024  # RNN and MLP width
    rnn: str = "gru"  # "gru" or "lstm"
    rnn_layers: int = 1  # stacked RNN layers per frame-level tier
    levels: int = 256  # quantization classes (softmax size); must match the prepared data
    weight_norm: bool = True  # on every linear layer (folded away for generation)
    # Names of the labels the model is conditioned on (set from the data by `inspire train
    # --label-by`; empty: an unconditional model, as every model before labels existed). Each
    # frame-level tier learns one vector per label plus one for "no label" (row 0).
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_sizes", tuple(int(f) for f in self.frame_sizes))
        if not 1 <= len(self.frame_sizes) <= 4:
            raise ConfigError(f"frame_sizes must have 1 to 4 entries (2 to 5 tiers), got {self.frame_sizes}")
        if any(f < 1 for f in self.frame_sizes) or self.frame_sizes[0] < 2:
            raise ConfigError(f"frame_sizes must be positive with the first at least 2, got {self.frame_sizes}")
        if self.dim < 8:
            raise ConfigError(f"dim must be at least 8, got {self.dim}")
        if self.rnn not in ("gru", "lstm"):
            raise ConfigError(f"rnn must be 'gru' or 'lstm', got {self.rnn!r}")
        if not 1 <= self.rnn_layers <= 8:
            raise ConfigError(f"rnn_layers must be between 1 and 8, got {self.rnn_layers}")
        if not 2 <= self.levels <= 65536:
            raise ConfigError(f"levels must be between 2 and 65536, got {self.levels}")
        object.__setattr__(self, "labels", tuple(str(v) for v in self.labels))
        for name in self.labels:
            if not name or name != name.strip():
                raise ConfigError(f"label names must be non-empty without surrounding spaces, got {name!r}")
            if name.lower() == NO_LABEL:
                raise ConfigError(f"the label name {name!r} is reserved for 'no label'")
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"label names must be unique, got {', '.join(self.labels)}")

    @property
    def label_rows(self) -> int:
        """Rows of each tier's label table: "no label" (row 0) and one per label; 0 without labels."""
        return len(self.labels) + 1 if self.labels else 0

    @property
    def tiers(self) -> int:
        """Number of tiers including the sample-level MLP."""
        return len(self.frame_sizes) + 1

    @property
    def tier_frames(self) -> tuple[int, ...]:
        """Frame size in samples of each frame-level tier, bottom first: (16, 4) -> (16, 64)."""
        out, n = [], 1
        for f in self.frame_sizes:
            n *= f
            out.append(n)
        return tuple(out)

    @property
    def lookback(self) -> int:
        """Samples of context before the first predicted sample (the top tier's frame)."""
        return self.tier_frames[-1]


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32  # chunks trained side by side (global, across all processes)
    seq_len: int = 1024  # truncated-BPTT window in samples
    chunk_seconds: float = 8.0  # recurrent state carries across the windows of a chunk
    lr: float = 1e-3  # Adam learning rate
    lr_decay: str = "none"  # "none" or "cosine" (to 10 % over max_steps)
    grad_clip: float = 1.0  # max gradient norm
    val_every: int = 200  # steps between validations
    checkpoint_every: int = 500  # steps between checkpoints (also saved at the end)
    keep_checkpoints: int = 3  # step checkpoints kept besides last.pt and best.pt
    val_seconds: float = 60.0  # at most this much validation audio per evaluation
    preview_seconds: float = 3.0  # length of each preview clip
    preview_temperatures: tuple[float, ...] = (0.8, 0.95, 1.1)  # one preview per temperature
    autocast: str = "off"  # "off" or "bf16" (mixed precision; measure before use)
    seed: int = 0
    label_by: str = "none"  # what each chunk is labelled with: none, track, folder, or a CSV file of sections
    unlabelled_share: float = 0.2  # share of labelled chunks trained with "no label" (keeps unsteered generation)

    def __post_init__(self) -> None:
        object.__setattr__(self, "preview_temperatures", tuple(float(t) for t in self.preview_temperatures))
        checks = [
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.seq_len >= 1, f"seq_len must be at least 1, got {self.seq_len}"),
            (self.chunk_seconds > 0, f"chunk_seconds must be positive, got {self.chunk_seconds}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (self.lr_decay in ("none", "cosine"), f"lr_decay must be 'none' or 'cosine', got {self.lr_decay!r}"),
            (self.grad_clip > 0, f"grad_clip must be positive, got {self.grad_clip}"),
            (self.val_every >= 1, f"val_every must be at least 1, got {self.val_every}"),
            (self.checkpoint_every >= 1, f"checkpoint_every must be at least 1, got {self.checkpoint_every}"),
            (self.keep_checkpoints >= 0, f"keep_checkpoints must be >= 0, got {self.keep_checkpoints}"),
            (self.val_seconds > 0, f"val_seconds must be positive, got {self.val_seconds}"),
            (self.preview_seconds >= 0, f"preview_seconds must be >= 0, got {self.preview_seconds}"),
            (all(t > 0 for t in self.preview_temperatures), f"preview temperatures must be > 0, got {self.preview_temperatures}"),
            (self.autocast in ("off", "bf16"), f"autocast must be 'off' or 'bf16', got {self.autocast!r}"),
            (self.label_by in LABEL_BY or self.label_by.lower().endswith(".csv"),
             f"label_by must be none, track, folder or a .csv file of sections, got {self.label_by!r}"),
            (0.0 <= self.unlabelled_share < 1.0, f"unlabelled_share must be in [0, 1), got {self.unlabelled_share}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)


def check_compatible(model: ModelConfig, train: TrainConfig) -> None:
    """Constraints across the two configs."""
    if train.seq_len % model.lookback:
        raise ConfigError(
            f"seq_len {train.seq_len} must be a multiple of the top tier's frame ({model.lookback} samples "
            f"for frame_sizes {','.join(map(str, model.frame_sizes))})"
        )


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "tiny",
            "2-tier, dim 128: learns the demo album audibly in minutes on a laptop CPU",
            ModelConfig(frame_sizes=(8,), dim=128, rnn_layers=1),
            TrainConfig(batch_size=16, seq_len=256, chunk_seconds=2.0, lr=3e-3, val_every=50, checkpoint_every=100,
                        val_seconds=20.0, preview_seconds=2.0),
        ),
        Preset(
            "small",
            "3-tier (16/4), dim 512: a laptop-sized model for a real album",
            ModelConfig(frame_sizes=(16, 4), dim=512),
            # Measured on the dev corpus (3 min, 2-core CPU): batch 16 x 512-sample windows at lr 2e-3
            # reach 5.97 bits where the paper's 32 x 1024 at 1e-3 reach 6.08: more updates per second.
            TrainConfig(batch_size=16, seq_len=512, lr=2e-3),
        ),
        Preset(
            "standard",
            "the paper's 3-tier model (16/4), dim 1024, GRU: for a GPU",
            ModelConfig(frame_sizes=(16, 4), dim=1024),
            TrainConfig(batch_size=128, seq_len=1024),
        ),
        Preset(
            "music",
            "the paper's best music model: 2-tier, dim 1024, 3 GRU layers: for a GPU",
            ModelConfig(frame_sizes=(16,), dim=1024, rnn_layers=3),
            TrainConfig(batch_size=128, seq_len=1024),
        ),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def field_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]


def parse_field(cls, name: str, text: str) -> Any:
    """Parse a command-line string into the type of `cls.name` ("16,4" -> (16, 4))."""
    f = {f.name: f for f in fields(cls)}.get(name)
    if f is None:
        raise ConfigError(f"unknown field {name!r} for {cls.__name__}; fields: {', '.join(field_names(cls))}")
    typ = str(f.type)
    try:
        if typ.startswith("tuple"):
            if "str" in typ:
                return tuple(v.strip() for v in str(text).split(",") if v.strip())
            inner = float if "float" in typ else int
            return tuple(inner(v) for v in str(text).replace(" ", "").split(",") if v)
        if typ == "bool":
            low = str(text).lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return low in ("1", "true", "yes", "on")
        return {"int": int, "float": float, "str": str}[typ](text)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{name}: cannot read {text!r} as {typ}") from exc


def with_overrides(cfg, overrides: dict[str, Any]):
    """A copy of a frozen config with some fields replaced (values parsed if they are strings)."""
    parsed = {k: parse_field(type(cfg), k, v) if isinstance(v, str) else v for k, v in overrides.items()}
    try:
        return replace(cfg, **parsed)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def from_dict(cls, d: dict):
    unknown = set(d) - set(field_names(cls))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
