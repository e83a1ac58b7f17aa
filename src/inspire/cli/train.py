"""The `train` subcommand's flags, built from the config dataclasses (no torch import here).

Every ModelConfig and TrainConfig field is a flag (`--dim`, `--frame-sizes 16,4`, `--lr`...);
a flag left out keeps the preset's value.
"""

from __future__ import annotations

from dataclasses import fields

from inspire.config import PRESETS, ModelConfig, TrainConfig

# Fields set from the prepared data, not by hand.
_FROM_DATA = {"levels", "labels"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_cli(sub, formatter_class) -> None:
    presets = "\n".join(f"  {p.name:<9} {p.description}" for p in PRESETS.values())
    p = sub.add_parser(
        "train",
        formatter_class=formatter_class,
        help="train SampleRNN on a prepared run (continues where it stopped)",
        description=(
            "Train SampleRNN on RUN_DIR's prepared data. Running it again continues from\n"
            "RUN_DIR/checkpoints/last.pt; --restart starts over (old checkpoints are kept aside).\n"
            "Ctrl-C or SIGTERM saves a checkpoint and exits. Under torchrun it trains with DDP:\n"
            "  torchrun --nproc-per-node=N -m inspire train RUN_DIR\n\n"
            f"Presets:\n{presets}\n\n"
            "Model and training fields left out keep the preset's (or the checkpoint's) values."
        ),
    )
    p.add_argument("run", metavar="RUN_DIR", help="run folder prepared with `inspire prepare`")
    p.add_argument(
        "--preset", default=None, choices=list(PRESETS),
        help="named model + training config (default: small for a new run, the checkpoint's when continuing)",
    )
    p.add_argument("--max-steps", type=int, default=None, help="stop when the run reaches this many steps (default: no limit)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes of this session (default: no limit)")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--restart", action="store_true", help="start over; existing checkpoints are moved aside, not deleted")
    p.add_argument("--log-every", type=int, default=10, help="steps between lines in metrics.jsonl")
    p.add_argument("--no-previews", action="store_true", help="do not render preview clips at checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    model_group = p.add_argument_group("model (default: from the preset)")
    train_group = p.add_argument_group("training (default: from the preset)")
    for group, cls in ((model_group, ModelConfig), (train_group, TrainConfig)):
        for f in fields(cls):
            if f.name in _FROM_DATA:
                continue
            doc = _FIELD_HELP.get(f.name, f.name.replace("_", " ")) + _preset_values(cls, f.name)
            group.add_argument(_flag(f.name), dest=f"cfg_{f.name}", metavar=f.name.upper(), default=None, help=doc)
    p.set_defaults(func=_run)


def _preset_values(cls, name: str) -> str:
    """' (tiny: 128, small: 512, ...)' or ' (all presets: 0.001)'; '%(default).0s' tells argparse
    the default is already shown (it would print 'default: None')."""
    part = "model" if cls is ModelConfig else "train"
    values = {p.name: getattr(getattr(p, part), name) for p in PRESETS.values()}
    show = lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
    if len(set(map(show, values.values()))) == 1:
        return f" (all presets: {show(next(iter(values.values())))})%(default).0s"
    return " (" + ", ".join(f"{k}: {show(v)}" for k, v in values.items()) + ")%(default).0s"


_FIELD_HELP = {
    "frame_sizes": "frame-level tiers, bottom first, comma-separated: 16 = 2-tier, 16,4 = 3-tier",
    "dim": "RNN and MLP width",
    "rnn": "gru or lstm",
    "rnn_layers": "stacked RNN layers per frame-level tier",
    "weight_norm": "weight normalisation on linear layers (true/false)",
    "batch_size": "chunks per step, across all processes",
    "seq_len": "truncated-BPTT window in samples (a multiple of the top tier's frame)",
    "chunk_seconds": "seconds of audio per chunk; state carries across its windows",
    "lr": "Adam learning rate",
    "lr_decay": "none or cosine",
    "grad_clip": "maximum gradient norm",
    "val_every": "steps between validations",
    "checkpoint_every": "steps between checkpoints",
    "keep_checkpoints": "step checkpoints kept besides last.pt and best.pt",
    "val_seconds": "at most this much validation audio per evaluation",
    "preview_seconds": "length of each preview clip in seconds (0: none)",
    "preview_temperatures": "comma-separated temperatures, one preview clip each",
    "autocast": "off or bf16 mixed precision (measured slower on CPUs without AMX)",
    "seed": "random seed for initialisation and data order",
}


def overrides(args) -> tuple[dict, dict]:
    """The model and training fields the user set explicitly, as strings."""
    def pick(cls):
        return {f.name: getattr(args, f"cfg_{f.name}") for f in fields(cls)
                if f.name not in _FROM_DATA and getattr(args, f"cfg_{f.name}", None) is not None}

    return pick(ModelConfig), pick(TrainConfig)


def _run(args) -> int:
    from inspire.samplernn.train import train

    model_over, train_over = overrides(args)
    return train(
        args.run,
        preset=args.preset,
        model_overrides=model_over,
        train_overrides=train_over,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        device=args.device,
        restart=args.restart,
        log_every=args.log_every,
        previews=not args.no_previews,
        progress=not args.quiet,
    )
