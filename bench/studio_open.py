"""How fast the studio opens a big folder of clips, and how smoothly it scrolls.

Makes N synthetic clips with curated sidecars (tests/studio_data.py), serves them with the real
server (uvicorn) and opens them in headless Chromium (the system's chromium + chromedriver).
Prints:

  - GET /api/clips: server time for the whole list (N sidecars read), and its size
  - page: navigation start -> list shown (every card in place), -> first clip drawn (waveform,
    spectrogram, temperature), both from the page's own performance clock
  - scroll: the list scrolled top to bottom in 40 steps (cards build and give back their waveforms
    on the way); frame intervals while it happens (median, 95th percentile, worst) and how many
    cards were drawn
  - waveform: first (computed) and second (cached) request for one clip

    python bench/studio_open.py                     # 300 clips of 5 s
    python bench/studio_open.py -n 500 --seconds 45 --screenshots /tmp/shots

The audio length hardly matters to opening (peaks are computed only for visible cards), but
`--seconds 45` makes the folder the issue's size. Give the machine's load average with figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic data the tests use

from studio_data import make_clips, make_run  # noqa: E402

TOKEN = "bench"


def serve(paths):
    import uvicorn

    from inspire.studio.server import bind, create_app

    app = create_app(paths, token=TOKEN, cache_folder=None)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--mute-audio"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def wait(d, script, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = d.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(script)
        time.sleep(0.01)


SCROLL = """
const done = arguments[arguments.length - 1];
const list = document.getElementById('clip-list');
const frames = [];
let last = performance.now();
let running = true;
function frame(t) { frames.push(t - last); last = t; if (running) requestAnimationFrame(frame); }
requestAnimationFrame(frame);
const steps = 40;
let i = 0;
function next() {
  list.scrollTop = (list.scrollHeight - list.clientHeight) * (i / steps);
  if (++i <= steps) setTimeout(next, 50);
  else setTimeout(() => { running = false; done(frames); }, 300);
}
next();
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="clips")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each clip")
    ap.add_argument("--screenshots", metavar="DIR", help="also save a screenshot of each view here")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    try:
        t0 = time.perf_counter()
        run = make_run(tmp / "run", track_seconds=20.0)
        make_clips(run / "clips" / "job", args.n, seconds=args.seconds, run=run, track_seconds=20.0)
        print(f"made {args.n} clips of {args.seconds:g} s in {time.perf_counter() - t0:.1f} s")
        server, base = serve([run])
        import httpx

        times = []
        for _ in range(5):
            t = time.perf_counter()
            r = httpx.get(f"{base}/api/clips", timeout=60)
            times.append(time.perf_counter() - t)
        entries = r.json()["clips"]
        print(f"GET /api/clips: {len(entries)} clips, {len(r.content) / 1e6:.2f} MB, "
              f"median {1000 * statistics.median(times):.0f} ms of 5")
        url = entries[0]["waveform_url"]
        t = time.perf_counter()
        w = httpx.get(base + url, timeout=60)
        first = time.perf_counter() - t
        t = time.perf_counter()
        httpx.get(base + url, timeout=60)
        second = time.perf_counter() - t
        print(f"waveform of one clip: {len(w.content) / 1e3:.0f} kB, first {1000 * first:.0f} ms, "
              f"then {1000 * second:.0f} ms (cached)")

        d = browser()
        try:
            d.set_script_timeout(120)
            for attempt in ("cold", "warm"):
                d.get(f"{base}/?token={TOKEN}")
                shown = float(wait(d, "return document.body.dataset.clipsShownAt"))
                drawn = float(wait(d, "const c = document.querySelector('.clip.current');"
                                      "return c && c.dataset.drawnAt"))
                fetch_build = float(d.execute_script("return document.body.dataset.clipsLoadMs"))
                print(f"page ({attempt} server cache): list of {args.n} shown {shown:.0f} ms after navigation "
                      f"(fetch + build {fetch_build:.0f} ms); first clip drawn at {drawn:.0f} ms")
            if args.screenshots:
                out = Path(args.screenshots)
                out.mkdir(parents=True, exist_ok=True)
                d.save_screenshot(str(out / "clips.png"))
            frames = d.execute_async_script(SCROLL)
            frames = sorted(frames[1:])
            drawn_cards = d.execute_script("return document.querySelectorAll('.clip[data-drawn-at]').length")
            hydrated = d.execute_script("return document.querySelectorAll('.clip .wave').length")
            p95 = frames[int(0.95 * (len(frames) - 1))]
            print(f"scroll top to bottom in 40 steps over 2 s: {len(frames)} frames, interval median "
                  f"{statistics.median(frames):.1f} ms, p95 {p95:.1f} ms, worst {frames[-1]:.0f} ms; "
                  f"{drawn_cards} cards drawn on the way, {hydrated} holding a waveform at the end")
            if args.screenshots:
                d.get(f"{base}/#runs")
                wait(d, "return document.body.dataset.view === 'runs'")
                time.sleep(1.0)  # let the preview waveforms draw for the picture
                d.save_screenshot(str(Path(args.screenshots) / "runs.png"))
                print(f"screenshots in {args.screenshots}")
        finally:
            d.quit()
            server.should_exit = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
