"""`inspire studio`: open run folders and clips folders in a local web app to audition, triage
and mark clips by keyboard, and to audition each checkpoint's previews (no torch here)."""

from __future__ import annotations

DEFAULT_PORT = 8737  # inspire.studio.server.DEFAULT_PORT (not imported: --help stays light)


def add(sub, formatter) -> None:
    p = sub.add_parser(
        "studio",
        formatter_class=formatter,
        help="audition, triage and mark clips and checkpoint previews in your browser",
        description=(
            "Start a local web app on PATH (run folders and/or folders of clips; default: the current\n"
            "folder) and open it in the browser. The first line on stdout is its URL, with a session\n"
            "token: keep it private. Clips view: every clip ranked by curation, with waveform,\n"
            "spectrogram, temperature curve and lineage; keys for play, next, keep, discard, star\n"
            "(press ? on the page). Marks go into each clip's sidecar at once; `inspire curate` keeps\n"
            "them and `inspire compose --auto` honours them. Runs view: the training curve and every\n"
            "checkpoint's previews; mark the checkpoint to generate from (RUN/studio.json). Live view:\n"
            "inspire play in the page (knob, pads, MIDI learn); Record keeps takes in RUN/clips/takes.\n"
            "API: /api/docs on the running studio."
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="run folder(s) or clips folder(s) (default: the current folder)%(default).0s")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but loopback makes every request need the token")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (0: any free port)")
    p.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    p.set_defaults(func=run)


def run(args) -> int:
    from inspire.errors import UserInputError
    from inspire.studio.server import serve

    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port must be between 0 and 65535, got {args.port}")
    return serve(args.paths or ["."], host=args.host, port=args.port, open_browser=not args.no_browser)
