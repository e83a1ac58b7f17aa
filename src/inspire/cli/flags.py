"""What the subcommands share: the help formatter, flags made from config fields, and SIGTERM
handled like Ctrl-C (`terminate_as_interrupt`).

A flag made by `add_field` takes its type, default and help from a dataclass field built with
`inspire.config.setting`, so a default has one home and the help shows it from there.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import typing

from inspire.config import help_of


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions' line breaks and shows every flag's default once.

    argparse's ArgumentDefaultsHelpFormatter appends "(default: None)" even after a help text
    that already says what happens by default; this one appends the parser's default only when
    the help does not mention one and there is a value worth showing (not None, False or empty).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "(default" in text or default is None or default is False or default is argparse.SUPPRESS or default == []:
            return text
        return text + " (default: %(default)s)"


def flag(name: str) -> str:
    """The flag of a field: frame_sizes -> --frame-sizes."""
    return "--" + name.replace("_", "-")


def as_text(value) -> str:
    """A field's value as it is typed on the command line (config.parse_field reads it back): (16, 4) -> 16,4."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_field(parser, cls, name: str, **kw) -> argparse.Action:
    """Add `--name` for the `setting` field `cls.name`: its type, default and help come from there
    (keyword arguments add to or replace them, e.g. choices or metavar)."""
    kw.setdefault("help", help_of(cls, name))
    kw.setdefault("default", cls.__dataclass_fields__[name].default)
    typ = typing.get_type_hints(cls)[name]
    if typ in (int, float, str):
        kw.setdefault("type", typ)
    return parser.add_argument(flag(name), **kw)


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM stops the command the way Ctrl-C does (KeyboardInterrupt): what it was writing is
    dropped (partial files removed, locks released), what it finished stays. Python's default
    for SIGTERM is to die on the spot, leaving partial files behind (the studio cancels its jobs
    with SIGTERM)."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the clean-up finish
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (a test calling main() from one): no signals here anyway
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)
