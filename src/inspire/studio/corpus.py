"""A run's prepared tracks, seen from the page: to prime `generate` from a chosen moment of the corpus.

The prepared data (RUN/data/, inspire.audio.dataset) is what the model heard: mu-law classes
at the run's rate, not audio files. The generate view draws a track from its peaks (computed from
the dequantized classes, cached like any waveform), lets the musician place the prime's stretch
on it and hear that stretch; the job then runs `inspire generate --prime corpus:TRACK
--prime-start S --prime-seconds N`, which primes every clip with exactly those samples.

    GET /api/runs/{key}/tracks                     [{"id", "name", "seconds", "split", "waveform_url",
                                                     "excerpt_url"}], "sample_rate"
    GET /api/runs/{key}/tracks/{id}/waveform       peaks + spectrogram (as /api/waveform)
    GET /api/runs/{key}/tracks/{id}/excerpt.wav    ?start=S&seconds=N (at most MAX_EXCERPT_S), 16-bit WAV
"""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inspire.audio.dataset import PreparedData, load_prepared
from inspire.errors import InspireError
from inspire.studio import peaks, wire
from inspire.studio.server import ApiError

MAX_EXCERPT_S = 30.0


def _prepared(request: Request) -> tuple[str, PreparedData]:
    key = request.path_params["key"]
    run = request.app.state.studio.run(key)
    try:
        return key, load_prepared(run)
    except InspireError as exc:
        raise ApiError(404, str(exc)) from None


def _track(request: Request):
    key, data = _prepared(request)
    wanted = request.path_params["id"]
    track = next((t for t in data.tracks if t.id == wanted), None)
    if track is None:
        raise ApiError(404, f"run {key} has no prepared track {wanted!r}")
    return data, track


def tracks(request: Request) -> dict:
    key, data = _prepared(request)
    sr = int(data.settings.sample_rate)
    out = []
    for t in data.tracks:
        base = f"/api/runs/{key}/tracks/{quote(t.id, safe='')}"
        out.append({"id": t.id, "name": t.name, "seconds": round(t.samples / sr, 6), "split": t.split,
                    "waveform_url": f"{base}/waveform", "excerpt_url": f"{base}/excerpt.wav"})
    return {"tracks": out, "sample_rate": sr}


def waveform(request: Request) -> dict:
    data, track = _track(request)
    sr = int(data.settings.sample_rate)

    def make(path: Path) -> dict:
        return peaks.of_samples(data.audio(track), sr)

    try:
        return request.app.state.studio.cache.get(data.data_dir / track.file, make=make)
    except (InspireError, OSError) as exc:
        raise ApiError(404, str(exc)) from None


def excerpt(request: Request) -> bytes:
    data, track = _track(request)
    sr = int(data.settings.sample_rate)
    try:
        start = float(request.query_params.get("start", "0"))
        seconds = float(request.query_params.get("seconds", "4"))
    except ValueError:
        raise ApiError(400, "start and seconds: expected numbers of seconds") from None
    if not (math.isfinite(start) and start >= 0 and math.isfinite(seconds) and 0 < seconds <= MAX_EXCERPT_S):
        raise ApiError(400, f"need start >= 0 and 0 < seconds <= {MAX_EXCERPT_S:g}, got {start:g} and {seconds:g}")
    i0 = min(track.samples, round(start * sr))
    try:
        return wire.track_wav(data, track, i0, min(track.samples, i0 + round(seconds * sr)))
    except InspireError as exc:
        raise ApiError(404, str(exc)) from None


async def api_tracks(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(tracks, request))


async def api_waveform(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(waveform, request), headers={"Cache-Control": "no-cache"})


async def api_excerpt(request: Request) -> Response:
    data = await run_in_threadpool(excerpt, request)
    return Response(data, media_type="audio/wav", headers={"Cache-Control": "no-cache"})


ROUTES = [
    Route("/api/runs/{key}/tracks", api_tracks),
    Route("/api/runs/{key}/tracks/{id}/waveform", api_waveform),
    Route("/api/runs/{key}/tracks/{id}/excerpt.wav", api_excerpt),
]
