"""The studio's web app: a thin Starlette app over the same library functions the CLI calls.

`create_app(paths, token=...)` builds the ASGI app (tests drive it in-process with Starlette's
TestClient); `serve(...)` binds a socket, prints the URL with its token as the first line on
stdout, opens the browser and runs uvicorn until Ctrl-C.

Routes (documented as OpenAPI at /api/openapi.json, readable at /api/docs):

    GET  /                                 the page
    GET  /static/...                       its ES modules, CSS, vendored wavesurfer.js
    GET  /files/{root}/{path}              a file inside an opened folder (HTTP Range: seeking works)
    GET  /api/folders                      what was opened: roots, clips folders, runs
    GET  /api/clips                        every clip with its record, audio and waveform URLs
    GET  /api/clips/{id}                   one clip
    PUT  /api/clips/{id}/marks             a person's verdict, star and keeper regions
    GET  /api/clips/{id}/lineage/{n}.wav   the source passage the clip's n-th lineage match echoes
    GET  /api/waveform/{root}/{path}       peaks + spectrogram of an audio file (cached)
    GET  /api/runs                         runs: checkpoints with previews, the chosen checkpoint, labels
    GET  /api/runs/{key}/metrics           the training curve (incremental with ?since=)
    PUT  /api/runs/{key}/checkpoint        choose the checkpoint to generate from
    GET  /api/runs/{key}/tracks            the run's prepared tracks (to prime generate from a moment)
    GET  /api/runs/{key}/tracks/{id}/waveform      peaks + spectrogram of a prepared track
    GET  /api/runs/{key}/tracks/{id}/excerpt.wav   a stretch of it (?start=S&seconds=N)
    POST /api/schedule                     check a temperature, min-p or top-p curve with generate's own parser
    POST /api/steer                        check a steering curve against a run's labels; its weights to draw
    POST /api/generate                     start `inspire generate` as a job (studio/jobs.py)
    POST /api/render                       write RUN/pieces/NAME.toml, start `inspire compose` on it
    GET  /api/jobs                         every job, newest first (state, progress, ETA, clips)
    GET  /api/jobs/{id}                    one job
    POST /api/jobs/{id}/cancel             stop a job (SIGTERM: finished clips are kept)
    POST /api/jobs/{id}/resume             run a failed, cancelled or interrupted job's command again
    GET  /api/pieces                       arrangements in the opened folders (studio/pieces.py)
    GET  /api/pieces/{root}/{path}         one arrangement as JSON, its parts' clips and lineage
    PUT  /api/pieces/{root}/{path}         save one (JSON or TOML); 409 unless ?overwrite=1
    POST /api/pieces/toml                  the TOML a JSON arrangement becomes (checked, not written)
    GET  /api/keepers                      the arranger's bin: keeper passages and kept clips
    GET  /api/live                         what the live panel can play (runs, checkpoints, tracks)
    WS   /api/live/ws                      the real-time engine playing in the page (studio/live.py)

Security (see `_Guard`): loopback by default; a per-session token in the printed URL, kept by
the page in an HttpOnly cookie and a meta tag; every state-changing request needs the token in
an `Authorization: Bearer` header (or ?token=) -- never the cookie alone, so other sites cannot
forge one -- and off loopback every request needs it. On loopback the Host header must name the
loopback (no DNS rebinding). A WebSocket needs the token (?token= or Bearer) always, and a
browser's Origin must be the page's own. Files are served only from inside the opened folders.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import os
import re
import secrets
import socket
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, quote

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from inspire import clips
from inspire.audio.dataset import load_prepared
from inspire.errors import InspireError, UserInputError
from inspire.studio import live, openapi, pieces, runs, wire
from inspire.studio.folders import ClipsFolder, Roots
from inspire.studio.peaks import Cache, default_cache_folder

STATIC = Path(__file__).parent / "static"
DEFAULT_PORT = 8737
MAX_BODY = 64 * 1024  # bytes: a marks object with hundreds of regions is a few kB
MAX_REGIONS = 500
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_CLIP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
PARTIAL = ".partial.wav"  # generate streams a clip to .<id>.partial.wav, then renames it
FRESH_S = 30.0  # audio younger than this without a sidecar may be a clip whose sidecar is coming


class ApiError(Exception):
    """A request the studio refuses: answered as {"error": message, **extra} with `status`
    (extra: e.g. "field", the form field the message is about)."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Studio:
    """Everything the handlers share: the opened folders, the token, the waveform cache."""

    roots: Roots
    token: str
    cache: Cache
    _prepared: dict = field(default_factory=dict)  # (run, manifest mtime) -> PreparedData (lineage excerpts)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- clips -----------------------------------------------------------------------------

    def folders(self, key: str | None) -> list[ClipsFolder]:
        if key is None:
            return list(self.roots.clips_folders)
        folder = self.roots.folder(key)
        if folder is None:
            raise ApiError(404, f"no clips folder {key!r} (GET /api/folders lists them)")
        return [folder]

    def list_clips(self, key: str | None) -> list[dict]:
        self.roots.refresh()
        out = []
        for folder in self.folders(key):
            finished = set()
            for record in clips.scan(folder.path):
                finished.add(record.file)
                out.append(self.entry(folder, record))
            out.extend(self._others(folder, finished))
        out.sort(key=_rank_key)
        return out

    def _others(self, folder: ClipsFolder, finished: set[str]) -> list[dict]:
        """The folder's audio that `clips.scan` does not list: clips being generated (a partial
        file, or audio whose sidecar is not written yet), audio whose sidecar cannot be read,
        and audio with no sidecar at all (not made by inspire: shown, and markable)."""
        out = []
        try:
            names = set(os.listdir(folder.path))
        except OSError:
            return out
        listed = set()
        for name in sorted(names):
            if name.startswith("."):
                if not name.endswith(PARTIAL):
                    continue
                cid, status = name[1 : -len(PARTIAL)], "generating"
            else:
                cid, ext = os.path.splitext(name)
                if ext.lower() not in AUDIO_SUFFIXES or name in finished:
                    continue
                status = self._state(folder.path / name, names)
            if cid in listed or not _CLIP_ID.match(cid):
                continue
            listed.add(cid)
            if status == "ready":
                out.append(self.entry(folder, clips.bare(folder.path / name)))
                continue
            entry = {"id": cid, "folder": folder.key, "status": status, "record": None,
                     "audio_url": None, "waveform_url": None, "lineage_urls": []}
            if status == "unreadable":
                entry["error"] = f"{cid}.json is not a readable clip sidecar"
            out.append(entry)
        return out

    @staticmethod
    def _state(audio: Path, names: set[str]) -> str:
        """For audio that has no readable sidecar: "unreadable" (a sidecar is there but broken),
        "generating" (a partial file beside it, or audio written in the last FRESH_S seconds:
        generate writes the sidecar just after the audio), else "ready" (audio from elsewhere)."""
        stem = audio.stem
        if f"{stem}.json" in names:
            return "unreadable"
        if f".{stem}{PARTIAL}" in names:
            return "generating"
        try:
            fresh = time.time() - audio.stat().st_mtime < FRESH_S
        except OSError:
            return "generating"
        return "generating" if fresh else "ready"

    def entry(self, folder: ClipsFolder, record) -> dict:
        rec = clips.to_dict(record)
        audio = folder.path / record.file
        url = self.roots.url_of(audio)
        matches = ((record.curation or {}).get("lineage") or {}).get("matches") or []
        return {
            "id": record.id,
            "folder": folder.key,
            "status": "ready",
            "record": rec,
            "audio_url": url,
            "waveform_url": None if url is None else "/api/waveform/" + url[len("/files/"):],
            "lineage_urls": [f"/api/clips/{quote(record.id)}/lineage/{n}.wav?folder={folder.key}"
                             for n in range(len(matches))],
        }

    def find(self, clip_id: str, key: str | None) -> tuple[ClipsFolder, Path]:
        """The folder of a clip id and the path to give `clips.read`/`clips.update`: its sidecar,
        or its audio when it has none (yet). 404 when gone, 409 when it is still being generated
        or several folders hold it."""
        if not _CLIP_ID.match(clip_id):
            raise ApiError(404, f"no clip {clip_id!r}")
        self.roots.refresh()
        hits, busy = [], False
        for f in self.folders(key):
            side = f.path / f"{clip_id}.json"
            if side.is_file():
                hits.append((f, side))
                continue
            names = set(_listdir(f.path))
            audio = [f.path / n for n in sorted(names)
                     if Path(n).stem == clip_id and Path(n).suffix.lower() in AUDIO_SUFFIXES]
            if audio and self._state(audio[0], names) == "ready":
                hits.append((f, audio[0]))
            elif audio or f".{clip_id}{PARTIAL}" in names:
                busy = True
        if not hits:
            if busy:
                raise ApiError(409, f"clip {clip_id} is still being generated; try again when it is finished")
            raise ApiError(404, f"no clip {clip_id} (deleted, or not in the opened folders)")
        if len(hits) > 1:
            keys = ", ".join(f.key for f, _ in hits)
            raise ApiError(409, f"clip {clip_id} is in several folders ({keys}): add ?folder=KEY")
        return hits[0]

    def read_clip(self, clip_id: str, key: str | None) -> dict:
        folder, path = self.find(clip_id, key)
        try:
            record = clips.read(path) if path.suffix == ".json" else clips.bare(path)
        except clips.NoSidecarError:
            raise ApiError(404, f"no clip {clip_id} (deleted)") from None
        except InspireError as exc:
            raise ApiError(422, str(exc)) from None
        return self.entry(folder, record)

    def set_marks(self, clip_id: str, key: str | None, body) -> dict:
        """Store a person's marks in the clip's sidecar (made from the audio when it has none),
        under the clip record's lock."""
        folder, path = self.find(clip_id, key)

        def apply(record):
            marks = parse_marks(body, seconds=record.duration_s)
            return replace(record, marks=clips.Marks(**marks, extra=record.marks.extra))

        try:
            record = clips.update(path, apply, create=path.suffix != ".json")
        except clips.NoSidecarError:
            raise ApiError(404, f"no clip {clip_id} (deleted)") from None
        except InspireError as exc:
            raise ApiError(400, str(exc)) from None
        return self.entry(folder, record)

    def lineage_audio(self, clip_id: str, key: str | None, n: int) -> bytes:
        """The source passage of lineage match `n` as WAV bytes, cut from the run's prepared data
        (what the model heard), as long as the clip's matching stretch."""
        folder, side = self.find(clip_id, key)
        try:
            record = clips.read(side)
        except InspireError as exc:
            raise ApiError(404, str(exc)) from None
        matches = ((record.curation or {}).get("lineage") or {}).get("matches") or []
        if not 0 <= n < len(matches):
            raise ApiError(404, f"clip {clip_id} has no lineage match {n} ({len(matches)} matches)")
        match = matches[n]
        run = self.roots.run_of(folder)
        if run is None:
            raise ApiError(404, f"{folder.path}: no run folder around these clips; open the run too "
                                "(inspire studio CLIPS_DIR RUN_DIR) to hear lineage sources")
        prep = self._prepared_data(run)
        track = next((t for t in prep.tracks if t.name == match.get("track")), None)
        if track is None:
            raise ApiError(404, f"{run}: no prepared track named {match.get('track')!r}")
        sr = int(prep.settings.sample_rate)
        try:
            length = max(0.0, float(match["clip_end_s"]) - float(match["clip_start_s"]))
            start = max(0, int(round(float(match["source_start_s"]) * sr)))
        except (KeyError, TypeError, ValueError):
            raise ApiError(422, f"clip {clip_id}: lineage match {n} is malformed ({match!r})") from None
        end = min(track.samples, start + int(round(length * sr)))
        try:
            return wire.track_wav(prep, track, start, end)
        except InspireError as exc:
            raise ApiError(404, str(exc)) from None

    def _prepared_data(self, run: Path):
        """The run's prepared data, read again when its manifest changes (more tracks prepared)."""
        try:
            key = (run, (run / "data" / "manifest.json").stat().st_mtime_ns)
        except OSError:
            key = (run, None)
        with self._lock:
            prep = self._prepared.get(key)
        if prep is None:
            try:
                prep = load_prepared(run)
            except InspireError as exc:
                raise ApiError(404, str(exc)) from None
            with self._lock:
                self._prepared = {key: prep}
        return prep

    # ---- runs ------------------------------------------------------------------------------

    def run(self, key: str) -> Path:
        root = self.roots.by_key.get(key)
        if root is None or not root.is_run:
            raise ApiError(404, f"no run {key!r} (GET /api/runs lists them)")
        return root.path

    def run_json(self, key: str) -> dict:
        path = self.run(key)
        info = runs.summary(path)
        for ck in info["checkpoints"]:
            for p in ck["previews"]:
                url = self.roots.url_of(path / p["path"])
                p["audio_url"] = url
                p["waveform_url"] = None if url is None else "/api/waveform/" + url[len("/files/"):]
        return {"key": key, "path": str(path), "metrics_url": f"/api/runs/{key}/metrics", **info}


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _rank_key(entry: dict) -> tuple:
    record = entry.get("record") or {}
    cur = record.get("curation") or {}
    rank = cur.get("rank")
    return (rank is None, rank if isinstance(rank, (int, float)) else 0, record.get("index") or 0, entry["id"])


def parse_marks(body, *, seconds: float | None) -> dict:
    """Check a marks object {"verdict": "keep"|"discard"|null, "star": bool, "regions": [[s, e], ...]}
    and return it normalised (regions sorted, rounded to ms). All three keys are required (PUT
    replaces the marks); UserInputError says what is wrong."""
    if not isinstance(body, dict):
        raise UserInputError('marks: expected an object {"verdict": ..., "star": ..., "regions": [...]}')
    unknown = set(body) - {"verdict", "star", "regions"}
    missing = {"verdict", "star", "regions"} - set(body)
    if unknown:
        raise UserInputError(f"marks: unknown key(s) {', '.join(sorted(unknown))} (expected verdict, star, regions)")
    if missing:
        raise UserInputError(f"marks: missing key(s) {', '.join(sorted(missing))} (PUT sends the whole marks object)")
    verdict, star, regions = body["verdict"], body["star"], body["regions"]
    if verdict not in ("keep", "discard", None):
        raise UserInputError(f'marks.verdict: expected "keep", "discard" or null, got {verdict!r}')
    if not isinstance(star, bool):
        raise UserInputError(f"marks.star: expected true or false, got {star!r}")
    if not isinstance(regions, list) or len(regions) > MAX_REGIONS:
        raise UserInputError(f"marks.regions: expected a list of at most {MAX_REGIONS} [start_s, end_s] pairs")
    limit = None if seconds is None else float(seconds) + 0.05
    out = []
    for i, r in enumerate(regions):
        ok = (isinstance(r, list) and len(r) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                           and math.isfinite(v) for v in r))
        if not ok:
            raise UserInputError(f"marks.regions[{i}]: expected [start_s, end_s] (two numbers), got {r!r}")
        start, end = float(r[0]), float(r[1])
        if not 0.0 <= start < end or (limit is not None and end > limit):
            bound = "" if limit is None else f" <= {seconds:g}"
            raise UserInputError(f"marks.regions[{i}]: need 0 <= start < end{bound} seconds, got [{start:g}, {end:g}]")
        out.append((round(start, 3), round(min(end, limit if limit is not None else end), 3)))
    return {"verdict": verdict, "star": star, "regions": sorted(out)}


# ---- HTTP --------------------------------------------------------------------------------


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers={"Cache-Control": "no-store"})


async def _json_body(request: Request):
    """The request's JSON body, at most MAX_BODY bytes (413 beyond), 400 when it is not JSON."""
    try:
        raw = await wire.read_body(request, MAX_BODY)
    except wire.BodyTooLarge as exc:
        raise ApiError(413, str(exc)) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"request body is not valid JSON ({exc})") from None


def _studio(request: Request) -> Studio:
    return request.app.state.studio


async def page(request: Request) -> Response:
    studio = _studio(request)
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    token = studio.token if request.scope.get("inspire.authenticated") else ""
    html = html.replace('content="__INSPIRE_TOKEN__"', f'content="{token}"')
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def files(request: Request) -> Response:
    studio = _studio(request)
    path = studio.roots.resolve(request.path_params["root"], request.path_params["path"])
    if path is None:
        return _error(404, "not found")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


async def api_folders(request: Request) -> Response:
    studio = _studio(request)
    await run_in_threadpool(studio.roots.refresh)
    return JSONResponse({
        "roots": [{"key": r.key, "path": str(r.path), "name": r.path.name, "run": r.is_run}
                  for r in studio.roots.roots],
        "folders": [{"key": f.key, "root": f.root.key, "path": str(f.path), "name": f.name,
                     "run": None if studio.roots.run_of(f) is None else str(studio.roots.run_of(f))}
                    for f in studio.roots.clips_folders],
        "runs": [{"key": r.key, "path": str(r.path), "name": r.path.name} for r in studio.roots.runs],
        "writable": bool(request.scope.get("inspire.authenticated")),
    })


async def api_clips(request: Request) -> Response:
    studio = _studio(request)
    key = request.query_params.get("folder")
    clips = await run_in_threadpool(studio.list_clips, key)
    return JSONResponse({"clips": clips})


async def api_clip(request: Request) -> Response:
    studio = _studio(request)
    entry = await run_in_threadpool(studio.read_clip, request.path_params["id"], request.query_params.get("folder"))
    return JSONResponse(entry)


async def api_marks(request: Request) -> Response:
    studio = _studio(request)
    body = await _json_body(request)
    entry = await run_in_threadpool(studio.set_marks, request.path_params["id"],
                                    request.query_params.get("folder"), body)
    return JSONResponse(entry)


async def api_lineage_audio(request: Request) -> Response:
    studio = _studio(request)
    data = await run_in_threadpool(studio.lineage_audio, request.path_params["id"],
                                   request.query_params.get("folder"), int(request.path_params["n"]))
    return Response(data, media_type="audio/wav", headers={"Cache-Control": "no-cache"})


async def api_waveform(request: Request) -> Response:
    studio = _studio(request)
    path = studio.roots.resolve(request.path_params["root"], request.path_params["path"])
    if path is None or path.suffix.lower() not in AUDIO_SUFFIXES:
        return _error(404, "not found")
    try:
        result = await run_in_threadpool(studio.cache.get, path)
    except FileNotFoundError:
        return _error(404, "not found")
    except InspireError as exc:
        return _error(422, str(exc))
    return JSONResponse(result, headers={"Cache-Control": "no-cache"})


async def api_runs(request: Request) -> Response:
    studio = _studio(request)
    result = await run_in_threadpool(lambda: [studio.run_json(r.key) for r in studio.roots.runs])
    return JSONResponse({"runs": result})


async def api_run_metrics(request: Request) -> Response:
    studio = _studio(request)
    path = studio.run(request.path_params["key"])
    since = request.query_params.get("since", "0")
    if not since.isdigit():
        raise ApiError(400, f"since: expected a line number (0 or more), got {since!r}")
    return JSONResponse(await run_in_threadpool(runs.metrics, path, since=int(since)))


async def api_run_checkpoint(request: Request) -> Response:
    studio = _studio(request)
    key = request.path_params["key"]
    path = studio.run(key)
    body = await _json_body(request)
    if not isinstance(body, dict) or set(body) != {"checkpoint"}:
        raise ApiError(400, 'expected {"checkpoint": "step-00000500"} (or null to clear)')
    try:
        await run_in_threadpool(runs.choose, path, body["checkpoint"])
    except InspireError as exc:
        raise ApiError(400, str(exc)) from None
    return JSONResponse(await run_in_threadpool(studio.run_json, key))


async def api_openapi(request: Request) -> Response:
    return JSONResponse(openapi.SPEC)


async def api_docs(request: Request) -> Response:
    return HTMLResponse(openapi.html())


async def _api_error(request: Request, exc: ApiError) -> Response:
    return _error(exc.status, exc.message, **exc.extra)


async def _not_found(request: Request, exc) -> Response:
    status = getattr(exc, "status_code", 404)
    return _error(status, getattr(exc, "detail", None) or "not found")


class _Guard:
    """ASGI middleware: Host check on loopback, the session token, security headers.

    A request is *authenticated* when it carries the token as `Authorization: Bearer`, as
    ?token=, or (for reading only) as the session cookie the page got with its first load.
    State-changing methods need the header or the query token, never only the cookie (a cookie
    rides along with requests other sites make). Off loopback every request must be
    authenticated. A valid ?token= sets the cookie, so the page's audio and images load too.

    A WebSocket (the live panel) changes state, and browsers let any site open one: its
    handshake needs the header or the query token, and when a browser sends an Origin it must be
    the page's own (scheme-less host:port equal to Host). Refused handshakes are closed before
    they are accepted (the client sees HTTP 403), with the reason as the close reason.
    """

    def __init__(self, app, *, token: str, loopback: bool):
        self.app = app
        self.token = token.encode()
        self.loopback = loopback

    def _ok(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(value.encode(), self.token)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host_ok = not self.loopback or is_loopback(_hostname(headers.get("host", "")))
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        if scope["type"] == "websocket":
            refusal = None
            if not host_ok:
                refusal = "the studio answers only to localhost (Host header refused)"
            elif not (self._ok(bearer) or self._ok(query)):
                refusal = "this WebSocket needs the session token (?token=TOKEN or Authorization: Bearer TOKEN)"
            elif "origin" in headers and _origin_host(headers["origin"]) != headers.get("host", "").strip().lower():
                refusal = f"Origin {headers['origin']} refused: only the studio's own page may connect"
            if refusal is not None:
                await receive()  # websocket.connect
                return await send({"type": "websocket.close", "code": 1008, "reason": refusal[:120]})
            scope["inspire.authenticated"] = True
            return await self.app(scope, receive, send)
        if not host_ok:
            return await _error(403, "the studio answers only to localhost (Host header refused)")(scope, receive, send)
        cookie_name = _cookie_name(scope)
        cookie = _cookies(headers.get("cookie", "")).get(cookie_name)
        strong = self._ok(bearer) or self._ok(query)
        safe = scope["method"] in _SAFE_METHODS
        authenticated = strong or (safe and self._ok(cookie))
        if not authenticated and (not safe or not self.loopback):
            message = ("this request needs the session token: open the URL `inspire studio` printed (it ends with "
                       "?token=...), or send Authorization: Bearer TOKEN")
            return await _error(401, message)(scope, receive, send)
        scope["inspire.authenticated"] = authenticated

        set_cookie = self._ok(query) and not self._ok(cookie)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", _CSP),
                ]
                if set_cookie:
                    extra.append((b"set-cookie", f"{cookie_name}={self.token.decode()}; Path=/; HttpOnly; "
                                                 "SameSite=Strict".encode()))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        ).encode()


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _origin_host(origin: str) -> str | None:
    """"http://127.0.0.1:8737" -> "127.0.0.1:8737" (the form of a Host header); None for
    anything else ("null" from a sandboxed frame or a file: page)."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        return None
    return rest


def _cookie_name(scope) -> str:
    server = scope.get("server") or ("", 0)
    return f"inspire-studio-{server[1] or 0}"


def _cookies(header: str) -> dict:
    out = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


def create_app(paths: list[str | os.PathLike], *, token: str | None = None, loopback: bool = True,
               cache_folder: str | os.PathLike | None | bool = True) -> Starlette:
    """The studio app over `paths` (run folders or clips folders; [] means the current folder).

    token: the session token (a new random one when None; `app.state.studio.token` has it).
    loopback: whether the server listens on loopback only (False: every request needs the token).
    cache_folder: where waveform peaks are cached on disk (True: ~/.cache/inspire/studio,
    None/False: memory only). Raises UserInputError for a path that is not a folder."""
    roots = Roots(list(paths))
    if cache_folder is True:
        cache_folder = default_cache_folder()
    studio = Studio(roots=roots, token=token or secrets.token_urlsafe(24), cache=Cache(cache_folder or None))
    routes = [
        Route("/", page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/files/{root}/{path:path}", files),
        Route("/api/openapi.json", api_openapi),
        Route("/api/docs", api_docs),
        Route("/api/folders", api_folders),
        Route("/api/clips", api_clips),
        Route("/api/clips/{id}", api_clip),
        Route("/api/clips/{id}/marks", api_marks, methods=["PUT"]),
        Route("/api/clips/{id}/lineage/{n:int}.wav", api_lineage_audio),
        Route("/api/waveform/{root}/{path:path}", api_waveform),
        Route("/api/runs", api_runs),
        Route("/api/runs/{key}/metrics", api_run_metrics),
        Route("/api/runs/{key}/checkpoint", api_run_checkpoint, methods=["PUT"]),
        *pieces.ROUTES,
        *live.ROUTES,
    ]
    from inspire.studio import corpus, jobs  # they import this module's ApiError: not at the top

    routes += corpus.ROUTES + jobs.ROUTES
    app = Starlette(routes=routes, exception_handlers={ApiError: _api_error, HTTPException: _not_found})
    app.state.studio = studio
    app.state.jobs = jobs.Jobs(roots)
    app.add_middleware(_Guard, token=studio.token, loopback=loopback)
    return app


# ---- running it --------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1); a name that could resolve anywhere
    else (DNS rebinding) is not."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int, token: str) -> str:
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = socket.gethostname()
    elif ":" in host:
        shown = f"[{host}]"
    return f"http://{shown}:{port}/?token={token}"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); UserInputError when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        hint = " (another studio may be running there; --port 0 picks any free port)" if port else ""
        raise UserInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def serve(paths: list[str | os.PathLike], *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          open_browser: bool = True, log_level: str = "warning") -> int:
    """Run the studio until interrupted: the URL is the first line on stdout."""
    loopback = is_loopback(host)
    app = create_app(paths, loopback=loopback)
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    url = url_for(host, actual_port, app.state.studio.token)
    print(url, flush=True)
    studio = app.state.studio
    print(f"studio: {len(studio.roots.clips_folders)} clips folder(s), {len(studio.roots.runs)} run(s); "
          "Ctrl-C stops it", file=sys.stderr, flush=True)
    if not loopback:
        print("studio: listening beyond this machine; every request needs the token in the URL above",
              file=sys.stderr, flush=True)
    if open_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        app.state.jobs.shutdown()  # running jobs are stopped (finished clips kept) and resume from the page
    return 0
