"""The `train` subcommand's flags, built from the config dataclasses (no torch import here).

Every ModelConfig and TrainConfig field is a flag (`--dim`, `--frame-sizes 16,4`, `--lr`...);
a flag left out keeps the preset's value.
"""

from __future__ import annotations

from dataclasses import fields

from inspire.cli.flags import as_text, flag
from inspire.config import PRESETS, ModelConfig, TrainConfig, help_of

# Fields set from the prepared data, not by hand.
_FROM_DATA = {"levels", "labels"}


def add(sub, formatter) -> None:
    presets = "\n".join(f"  {p.name:<9} {p.description}" for p in PRESETS.values())
    p = sub.add_parser(
        "train",
        formatter_class=formatter,
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
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop when the run reaches this many steps (default: no limit)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this many minutes of this session (default: no limit)")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--restart", action="store_true",
                   help="start over; existing checkpoints are moved aside, not deleted")
    p.add_argument("--log-every", type=int, default=10, help="steps between lines in metrics.jsonl")
    p.add_argument("--no-previews", action="store_true", help="do not render preview clips at checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: measured at the start and again while training: fewer on a busy CPU)")
    model_group = p.add_argument_group("model (default: from the preset)")
    train_group = p.add_argument_group("training (default: from the preset)")
    for group, cls in ((model_group, ModelConfig), (train_group, TrainConfig)):
        for f in fields(cls):
            if f.name in _FROM_DATA:
                continue
            doc = help_of(cls, f.name) + _preset_values(cls, f.name)
            group.add_argument(flag(f.name), dest=f"cfg_{f.name}", metavar=f.name.upper(), default=None, help=doc)
    p.set_defaults(func=run)


def _preset_values(cls, name: str) -> str:
    """' (tiny: 128, small: 512, ...)' or ' (all presets: 0.001)': what a flag left out means."""
    part = "model" if cls is ModelConfig else "train"
    values = {p.name: as_text(getattr(getattr(p, part), name)) for p in PRESETS.values()}
    if len(set(values.values())) == 1:
        return f" (all presets: {next(iter(values.values()))})"
    return " (" + ", ".join(f"{k}: {v}" for k, v in values.items()) + ")"


def overrides(args) -> tuple[dict, dict]:
    """The model and training fields the user set explicitly, as strings."""
    def pick(cls):
        return {f.name: getattr(args, f"cfg_{f.name}") for f in fields(cls)
                if f.name not in _FROM_DATA and getattr(args, f"cfg_{f.name}", None) is not None}

    return pick(ModelConfig), pick(TrainConfig)


def run(args) -> int:
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
        threads=args.threads,
    )
