"""`inspire studio`: a local web app to audition, triage and mark clips and training previews.

    folders.py   which folders were opened, what they hold (runs, clips folders), safe file lookup
    peaks.py     waveform peaks and a small spectrogram per audio file, computed here and cached
    runs.py      the runs view: training curve, previews per checkpoint, the chosen checkpoint
    jobs.py      background jobs: `inspire generate` / `inspire compose` run as subprocesses, their
                 records (RUN/studio/jobs/), the generate and render forms checked with the CLI's checks
    corpus.py    a run's prepared tracks (waveform, excerpts): priming generate from a chosen moment
    pieces.py    the arranger's data: piece.toml files listed, opened, checked and saved; the keepers bin
    live.py      the live view: inspire play's engine over a WebSocket, takes recorded as clips
    openapi.py   the HTTP API's OpenAPI document (served at /api/openapi.json)
    server.py    the ASGI app (Starlette) and `serve()` (uvicorn); handlers call library functions
    static/      the page: index.html, ES modules, CSS, vendor/wavesurfer (BSD-3, pinned)

No torch at import time: the studio starts fast and runs beside a training job (a generate job
loads torch in its own process; live.py loads the engine, and with it torch, when a performance
starts).
"""
