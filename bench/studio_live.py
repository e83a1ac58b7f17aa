"""The studio's live view against `inspire play`: the same engine, does it keep the same pace?

For each preset (random-init weights: speed does not depend on training), a run with a short
prepared track, then:

  play    `inspire play RUN --audio-device none --seconds S`'s own path: play.load (which measures
          the machine and picks fp32 or int8) and a session paced in real time by the command's
          own headless clock (cli/play.py `_pace`)
  ws      the real server (uvicorn, studio/live.py) and a Python WebSocket client that plays in
          real time (acknowledges what a clock says it played): the server's own cost
  page    the same server and the page in headless Chromium (its AudioWorklet at the model's
          rate, sound muted): the browser shares the machine's cores with the engine

and prints the engine's real-time factor while playing (audio seconds per wall second of the
engine's blocks, as the session times them; the server's figure is the one its stats messages
carry, which the page shows, read every quarter to half second) and the underruns (the page's
are its worklet's). The load average is printed before and after: other processes on these
cores lower every figure.

    .venv/bin/python bench/studio_live.py                       # tiny and small, 8 s each
    .venv/bin/python bench/studio_live.py --presets live --seconds 20 --screenshots /tmp/shots

Measured on the 2-core dev machine with other jobs on it (load average 4.1-5.7 over three runs),
engine x real time while playing (median of half-second readings), underruns in 8 s:
    tiny   play 5.0-7.5x (0-11)   ws 3.7-5.1x   page 4.5-5.4x (0-1)
    small  play 1.1-1.5x int8 (2-18)   ws 0.8-1.05x   page 0.9-1.2x int8 (1-5)
The studio's engine is inspire play's: with a client that costs nothing (ws) it runs within the
noise of the command's figures; the page's Chromium shares the two cores. small needs an idle
machine (bench_engine.py: 2.8x int8 on one free core); tiny and live play with room to spare.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # conftest's save_checkpoint
sys.path.insert(0, str(ROOT / "bench"))

from studio_open import serve, wait  # noqa: E402

SR = 16000
TOKEN = "bench"  # studio_open.serve's


def make(root: Path, preset: str) -> Path:
    import torch

    from conftest import save_checkpoint
    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.config import get_preset
    from inspire.samplernn.model import SampleRNN

    root.mkdir(parents=True)
    t = np.arange(4 * SR) / SR
    sf.write(str(root / "tone.wav"), 0.4 * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)), SR)
    run = root / "run"
    prepare([root / "tone.wav"], run, PrepareSettings(), progress=False)
    torch.manual_seed(0)
    save_checkpoint(run, SampleRNN(get_preset(preset).model), step=1, sample_rate=SR)
    return run


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def speed_of(block_seconds: list[float], block: int) -> float:
    return len(block_seconds) * block / SR / max(sum(block_seconds), 1e-9)


def bench_play(run: Path, seconds: float) -> dict:
    from inspire.cli.play import _pace, _Status
    from inspire.samplernn import controls, play

    notes: list[str] = []
    inst = play.load(run, allow_slow=True, log=notes.append)
    session = inst.session(seed=1, timeline=controls.Timeline("1.0", sample_rate=SR), n_samples=round(seconds * SR))
    session.start()
    _pace(session, threading.Event(), _Status(enabled=False), rate=SR)
    session.stop()
    b = session.block_seconds
    windows = [speed_of(b[i : i + 25], session.block) for i in range(0, len(b) - 24, 25)]  # half-second windows
    return {"engine": inst.engine.name, "measured": inst.measured, "speed": speed_of(b, session.block),
            "windows": windows, "underruns": session.underruns}


def bench_socket(run: Path, seconds: float) -> dict:
    """The server with a client that plays on a clock: what the WebSocket path costs the engine."""
    import json

    from websockets.sync.client import connect

    server, base = serve([run])
    try:
        with connect(base.replace("http://", "ws://") + f"/api/live/ws?token={TOKEN}") as ws:
            ws.send(json.dumps({"type": "start", "run": "r0", "allow_slow": True}))
            speeds, received, t0, engine = [], 0, None, "?"
            while t0 is None or time.monotonic() - t0 < seconds:
                m = ws.recv(timeout=300)
                if isinstance(m, bytes):
                    received += (len(m) - 16) // 4
                    t0 = t0 or time.monotonic()
                else:
                    body = json.loads(m)
                    if body["type"] == "error":
                        raise RuntimeError(body["error"])
                    engine = body.get("engine", engine)
                    if body["type"] == "stats" and body["speed"]:
                        speeds.append(body["speed"])
                if t0 is not None:
                    played = min(received, int((time.monotonic() - t0) * SR))
                    ws.send(json.dumps({"type": "ack", "played": played, "underruns": 0}))
            ws.send(json.dumps({"type": "stop"}))
        return {"engine": engine, "windows": speeds}
    finally:
        server.should_exit = True


def bench_studio(run: Path, seconds: float, shots: Path | None) -> dict:
    server, base = serve([run])
    d = browser()
    try:
        d.get(f"{base}/?token={TOKEN}#live")
        wait(d, "return document.body.dataset.view === 'live' && !document.getElementById('live-start').disabled")
        d.execute_script("document.getElementById('live-slow').checked = true")
        if shots:
            d.save_screenshot(str(shots / "live-idle.png"))
        d.find_element("id", "live-start").click()
        wait(d, "return document.getElementById('live-view').dataset.state === 'playing'", timeout=300)
        engine = d.find_element("id", "live-engine").text
        shown, t_end, recording = [], time.monotonic() + seconds, False
        while time.monotonic() < t_end:
            time.sleep(0.5)
            text = d.find_element("id", "live-speed").text
            if "real time" in text:
                shown.append(float(text.split("×")[0]))
            if shots and not recording and time.monotonic() > t_end - seconds / 2:
                recording = True
                d.find_element("id", "live-record").click()
                time.sleep(1.0)
                d.save_screenshot(str(shots / "live-recording.png"))
        played = float(d.execute_script("return document.getElementById('live-view').dataset.played"))
        underruns = int(d.execute_script("return document.getElementById('live-view').dataset.underruns"))
        d.find_element("id", "live-start").click()
        wait(d, "return document.getElementById('live-view').dataset.state === 'idle'", timeout=60)
        if shots:
            wait(d, "return document.querySelector('#live-takes li[data-id]')", timeout=60)
            d.save_screenshot(str(shots / "live-take.png"))
        return {"engine": engine, "windows": shown, "underruns": underruns, "played": played / SR}
    finally:
        d.quit()
        server.should_exit = True


def _figures(w: list[float]) -> str:
    return f"median {statistics.median(w):.2f}x, min {min(w):.2f}x of {len(w)} readings" if w else "no reading"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["tiny", "small"])
    ap.add_argument("--seconds", type=float, default=8.0, help="audio played each way")
    ap.add_argument("--screenshots", metavar="DIR", help="save the live view (idle, recording, a take) here")
    args = ap.parse_args()
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    tmp = Path(tempfile.mkdtemp(prefix="studio-live-bench-"))
    try:
        for preset in args.presets:
            run = make(tmp / preset, preset)
            p = bench_play(run, args.seconds)
            med = statistics.median(p["windows"]) if p["windows"] else float("nan")
            print(f"{preset:6s} play    {p['engine']}: measured at load {p['measured']:.2f}x; while playing "
                  f"{p['speed']:.2f}x overall, half-second windows median {med:.2f}x, min {min(p['windows']):.2f}x; "
                  f"underruns {p['underruns']}")
            w = bench_socket(run, args.seconds)
            print(f"{preset:6s} ws      {w['engine']}: while playing {_figures(w['windows'])}")
            s = bench_studio(run, args.seconds, shots if preset == args.presets[0] else None)
            print(f"{preset:6s} page    {s['engine']}; while playing {_figures(s['windows'])}; page played "
                  f"{s['played']:.1f} s, underruns {s['underruns']}")
            print(f"        load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if shots:
        print(f"screenshots in {shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
