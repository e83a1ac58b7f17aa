"""Typed, frozen configs: the single home of defaults. No torch here (help must start fast).

`ModelConfig` describes the SampleRNN architecture, `TrainConfig` the optimisation. Presets are
named `ModelConfig`/`TrainConfig` pairs; any field can be overridden from the command line
(`--dim 256 --frame-sizes 8,4`). The resolved pair is saved inside every checkpoint.
`GenerateDefaults` holds what `inspire generate` assumes when not told (here, not beside the
torch code, so its --help shows them without importing torch).

Each field made with `setting(default, help)` carries its command-line help, so the parsers in
inspire.cli show the default and its meaning from here instead of keeping copies.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

from inspire.errors import ConfigError

NO_LABEL = "none"  # the steering word for "no label" (row 0 of every label table)
LABEL_BY = ("none", "track", "folder")  # or the path of a CSV file of sections (file,start,end,label)


def setting(default: Any, help: str) -> Any:
    """A dataclass field whose default and command-line help live together (read by `help_of`)."""
    return field(default=default, metadata={"help": help})


def help_of(cls, name: str) -> str:
    """The help text a `setting` field of `cls` carries."""
    return _field(cls, name).metadata["help"]


def _field(cls, name: str) -> dataclasses.Field:
    f = {f.name: f for f in fields(cls)}.get(name)
    if f is None:
        raise ConfigError(f"unknown field {name!r} for {cls.__name__}; fields: {', '.join(field_names(cls))}")
    return f


@dataclass(frozen=True)
class ModelConfig:
    """SampleRNN (Mehri et al. 2017).

    `frame_sizes[0]` is the frame of the lowest frame-level tier in samples and the number of
    past samples the sample-level MLP sees; each further entry is how many frames of the tier
    below one frame of the next tier up spans. (16,) is a 2-tier model; (16, 4) a 3-tier one whose
    top tier steps every 64 samples.
    """

    frame_sizes: tuple[int, ...] = setting(
        (16, 4), "frame-level tiers, bottom first, comma-separated: 16 = 2-tier, 16,4 = 3-tier")
    dim: int = setting(1024, "RNN and MLP width")
    rnn: str = setting("gru", "gru or lstm")
    rnn_layers: int = setting(1, "stacked RNN layers per frame-level tier")
    levels: int = setting(256, "quantization classes (softmax size); must match the prepared data")
    weight_norm: bool = setting(True, "weight normalisation on linear layers, folded away for generation (true/false)")
    labels: tuple[str, ...] = setting(
        (), "names of the labels the model is conditioned on, from the data (inspire train --label-by); "
            "none: an unconditional model. Each frame tier learns one vector per label, row 0 = no label")

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
    batch_size: int = setting(32, "chunks per step, across all processes")
    seq_len: int = setting(1024, "truncated-BPTT window in samples (a multiple of the top tier's frame)")
    chunk_seconds: float = setting(8.0, "seconds of audio per chunk; state carries across its windows")
    lr: float = setting(1e-3, "Adam learning rate")
    lr_decay: str = setting("none", "none or cosine (to a tenth over --max-steps)")
    grad_clip: float = setting(1.0, "maximum gradient norm")
    val_every: int = setting(200, "steps between validations")
    checkpoint_every: int = setting(500, "steps between checkpoints (one is also saved at the end)")
    keep_checkpoints: int = setting(3, "step checkpoints kept besides last.pt and best.pt")
    val_seconds: float = setting(60.0, "at most this much validation audio per evaluation")
    preview_seconds: float = setting(3.0, "length of each preview clip in seconds (0: none)")
    preview_temperatures: tuple[float, ...] = setting(
        (0.8, 0.95, 1.1), "comma-separated temperatures, one preview clip each")
    autocast: str = setting("off", "off or bf16 mixed precision (measured slower on CPUs without AMX)")
    seed: int = setting(0, "random seed for initialisation and data order")
    label_by: str = setting(
        "track", "label each chunk by its track (its name as `inspire prepare` lists it), its folder (an album, a "
                 "session), or sections named in a CSV file (file,start,end,label; times in seconds or m:ss), so "
                 "`inspire generate --steer LABEL` can steer towards a label; none: no labels")
    unlabelled_share: float = setting(
        0.2, "share of chunks trained with 'no label' when training with labels, so the model also plays unsteered")

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
            (all(t > 0 for t in self.preview_temperatures),
             f"preview temperatures must be > 0, got {self.preview_temperatures}"),
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
            "live",
            "3-tier (16/4), dim 256: made for `inspire play`, one stream several times real time on a laptop core",
            ModelConfig(frame_sizes=(16, 4), dim=256),
            # A third of small's arithmetic per sample and a working set that stays in cache in fp32:
            # one stream at 2.7x real time in fp32, 5.3x in int8, on one core of the dev machine. Trained
            # like small, it learns faster per minute on a CPU (bench/bench_engine.py's notes).
            TrainConfig(batch_size=16, seq_len=512, lr=2e-3),
        ),
        Preset(
            "standard",
            "the paper's 3-tier model (16/4), dim 1024, GRU: for a GPU",
            ModelConfig(frame_sizes=(16, 4), dim=1024),
            TrainConfig(batch_size=128, seq_len=1024),
        ),
        Preset(
            "gpu",
            "the paper's 3-tier model (16/4), dim 1024, sized for one modern GPU: batch 256 x 1024 samples",
            ModelConfig(frame_sizes=(16, 4), dim=1024),
            # Measured on one H200 (bench/bench_gpu.py, tf32 matmuls): 5.4 M samples/s at batch 256 against
            # 4.8 M at standard's 128 (24 % of the tf32 GEMM peak); bf16 autocast adds ~20 % more
            # (--autocast bf16) but its effect on quality is not measured yet, so it stays opt-in.
            TrainConfig(batch_size=256, seq_len=1024),
        ),
        Preset(
            "music",
            "the paper's best music model: 2-tier, dim 1024, 3 GRU layers: for a GPU",
            ModelConfig(frame_sizes=(16,), dim=1024, rnn_layers=3),
            TrainConfig(batch_size=128, seq_len=1024),
        ),
    )
}


# Fields whose default changed since records were first written: a record without the field
# keeps the old behaviour (runs from before labels trained without them).
LEGACY: dict[str, dict[str, Any]] = {"TrainConfig": {"label_by": "none"}}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class GenerateDefaults:
    """What `inspire generate` (and `inspire.samplernn.generate.run_job`) assume when not told."""

    clips: int = setting(8, "number of clips")
    seconds: float = setting(30.0, "length of each clip in seconds")
    temperatures: tuple[str, ...] = setting(
        ("1.0",), "temperature schedule (repeat for a sweep); every value must be > 0")
    min_ps: tuple[str, ...] = setting(
        ("0",), "min-p truncation, constant or a curve like a temperature schedule (repeat for a sweep): drop "
                "classes less likely than min-p x the most likely one; 0 = off, values in [0, 1)")
    top_ps: tuple[str, ...] = setting(
        ("1",), "top-p truncation, constant or a curve (repeat for a sweep): keep the most likely classes "
                "holding top-p of the probability; 1 = off, values in (0, 1]")
    guard: bool = setting(False, "watch every clip for a collapse into noise and redraw where it falls "
                                 "(each redraw is recorded in the sidecar, so --again repeats it)")
    checkpoint: str = setting("best", "best, last, a step number or a path")
    seed: int = setting(0, "job seed: the same seed gives the same clips")
    prime_seconds: float = setting(4.0, "length of the prime in seconds")
    cpu_batch: int = setting(64, "streams generated at once on a CPU")  # GEMMs are efficient from here on
    gpu_batch: int = setting(512, "streams generated at once on a GPU")


GENERATE = GenerateDefaults()


def field_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_field(cls, name: str, text: str) -> Any:
    """Parse a command-line string into the type of `cls.name` ("16,4" -> (16, 4))."""
    _field(cls, name)
    typ = typing.get_type_hints(cls)[name]
    try:
        if typing.get_origin(typ) is tuple:  # tuple[int, ...] or tuple[float, ...]: comma-separated
            inner = typing.get_args(typ)[0]
            return tuple(inner(v) for v in str(text).replace(" ", "").split(",") if v)
        if typ is bool:
            low = str(text).lower()
            if low not in _TRUE + _FALSE:
                raise ValueError(text)
            return low in _TRUE
        if typ in (int, float, str):
            return typ(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot read {text!r} as {_type_name(typ)}") from exc
    raise ConfigError(f"{name}: a {_type_name(typ)} field cannot be set from text")


def _type_name(typ) -> str:
    if typing.get_origin(typ) is tuple:
        return f"comma-separated {typing.get_args(typ)[0].__name__}s"
    return getattr(typ, "__name__", str(typ))


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
    """A config from its record (config.json, a checkpoint). A field the record predates takes
    the value that behaved as the record's run did (`LEGACY`), else today's default."""
    unknown = set(d) - set(field_names(cls))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    d = {**LEGACY.get(cls.__name__, {}), **d}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
