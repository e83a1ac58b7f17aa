"""report.html: the curated clips ranked, as a static page that opens from disk.

Each clip gets an audio player (relative path), its spectrogram (a PNG in report_files/),
its temperature curve and its lineage bar (inline SVG and HTML, coloured by source track, the
source time in each passage's hover title), its score, verdict and reasons.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from inspire.files import atomic_path, write_text
from inspire.timefmt import clock

TRACK_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                 "#9a6324", "#469990", "#808000", "#000075", "#bfef45"]  # fmt: skip


def write_spectrogram(path: str | os.PathLike, bands_db: np.ndarray | None, *, width: int = 480) -> None:
    """A small spectrogram picture (log band energies, low frequencies at the bottom),
    written atomically as PNG. Uses matplotlib's image writer only (no figure)."""
    if bands_db is None or bands_db.size == 0:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = bands_db.T[::-1]  # (bands, frames), high bands on top
    if img.shape[1] > width:  # average frames down to ~width columns
        k = img.shape[1] // width
        img = img[:, : k * (img.shape[1] // k)].reshape(img.shape[0], -1, k).mean(axis=2)
    img = np.repeat(img, 2, axis=0)
    top = float(np.max(img))
    with atomic_path(path) as tmp:
        plt.imsave(tmp, img, vmin=top - 80.0, vmax=top, cmap="magma", origin="upper", format="png")


def write_report(clips_dir: str | os.PathLike, curation: dict, *, temperatures: dict | None = None) -> Path:
    """Write clips_dir/report.html from a curation dict; returns its path."""
    clips_dir = Path(clips_dir)
    temperatures = temperatures or {}
    clips = curation["clips"]
    tracks: list[str] = []
    for c in clips:
        for m in (c["lineage"] or {}).get("matches", []):
            if m["track"] not in tracks:
                tracks.append(m["track"])
    colour = {t: TRACK_COLOURS[i % len(TRACK_COLOURS)] for i, t in enumerate(tracks)}
    kept = sum(c["verdict"] == "keep" for c in clips)
    rows = "\n".join(_clip_html(clips_dir, c, temperatures.get(c["id"]), colour) for c in clips)
    legend = " ".join(
        f'<span class="key"><i style="background:{colour[t]}"></i>{html.escape(t)}</span>' for t in tracks
    )
    page = _PAGE.format(
        title=html.escape(f"inspire: curation of {clips_dir.name}"),
        summary=html.escape(f"{len(clips)} clips, {kept} kept, {len(clips) - kept} discarded"),
        legend=f"<p>Source tracks: {legend}</p>" if tracks else "",
        rows=rows,
    )
    path = clips_dir / "report.html"
    write_text(path, page)
    return path


def _clip_html(clips_dir: Path, c: dict, temperature: dict | None, colour: dict) -> str:
    e = html.escape
    f = c["features"] or {}
    picture = f"report_files/{c['file'].replace('/', '__')}.png"
    has_picture = (clips_dir / picture).exists()
    duration = f.get("duration_s") or 0.0
    facts = []
    for key, label, fmt in (
        ("loudness_lufs", "loudness", "{:.1f} LUFS"),
        ("silence_fraction", "silence", "{:.0%}"),
        ("spectral_flatness", "flatness", "{:.2f}"),
        ("variety_db", "variety", "{:.1f} dB"),
        ("dynamic_range_db", "dyn. range", "{:.1f} dB"),
        ("clipped_fraction", "clipped", "{:.2%}"),
    ):
        if f.get(key) is not None:
            facts.append(f"<span title='{e(key)}'>{label} {fmt.format(f[key])}</span>")
    if f.get("loop_period_s"):
        facts.append(f"<span>loop {f['loop_period_s']:.2f} s</span>")
    lineage = c["lineage"]
    lineage_html = ""
    if lineage is not None:
        lineage_html = (
            f'<div class="lab">lineage {lineage["fraction"]:.0%} near-copy</div>'
            + _lineage_bar(lineage["matches"], duration, colour)
        )
    reasons = "".join(f"<li>{e(r)}</li>" for r in c["reasons"]) or "<li class='ok'>no faults found</li>"
    spec_html = (f'<img class="spec" src="{e(picture)}" alt="spectrogram of {e(c["id"])}">' if has_picture
                 else '<div class="spec none">no picture</div>')
    return f"""<div class="clip {e(c['verdict'])}">
  <div class="head"><b>#{c['rank']}</b> <span class="verdict">{e(c['verdict'])}</span>
    <span class="name">{e(c['id'])}</span> <span class="score" title="score (0-1)">{c['score']:.3f}</span></div>
  <div class="body">
    <div class="media">
      {spec_html}
      {lineage_html}
      <audio controls preload="none" src="{e(c['file'])}"></audio>
    </div>
    <div class="side">
      <ul class="reasons">{reasons}</ul>
      <div class="facts">{' · '.join(facts)}</div>
      {_temperature_svg(temperature, duration) if temperature else ''}
    </div>
  </div>
</div>"""


def _lineage_bar(matches: list[dict], duration: float, colour: dict) -> str:
    if duration <= 0:
        return ""
    parts = []
    for m in matches:
        left = 100.0 * m["clip_start_s"] / duration
        width = max(0.5, 100.0 * (m["clip_end_s"] - m["clip_start_s"]) / duration)
        src_end = m["source_start_s"] + m["clip_end_s"] - m["clip_start_s"]
        source, clip = (f"{clock(a, decimals=1)}-{clock(b, decimals=1)}" for a, b in
                        ((m["source_start_s"], src_end), (m["clip_start_s"], m["clip_end_s"])))
        title = f"{m['track']} {source} (clip {clip}, similarity {m['similarity']:.2f})"
        parts.append(
            f'<span style="left:{left:.2f}%;width:{width:.2f}%;background:{colour.get(m["track"], "#888")}" '
            f'title="{html.escape(title)}"></span>'
        )
    return f'<div class="bar" title="no near-copy">{"".join(parts)}</div>'


def _temperature_svg(temp: dict, duration: float, *, w: int = 240, h: int = 60) -> str:
    times = [float(t) for t in temp["times_s"]]
    values = [float(v) for v in temp["values"]]
    span = max(duration, times[-1] if times else 0.0, 1e-9)
    top = max(max(values), 1e-9) * 1.1
    pts = " ".join(f"{w * t / span:.1f},{h - h * v / top:.1f}" for t, v in zip(times, values, strict=True))
    spec = html.escape(str(temp.get("spec", "")))
    return (
        f'<div class="lab">temperature {spec} ({min(values):.2f}-{max(values):.2f})</div>'
        f'<svg class="temp" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><title>temperature {spec}</title>'
        f'<polyline fill="none" stroke="#d62728" stroke-width="2" points="{pts}"/></svg>'
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }}
h1 {{ font-size: 1.4em; margin: 0 0 .2em; }}
.key {{ margin-right: 1em; white-space: nowrap; }}
.key i {{ display: inline-block; width: 1em; height: 1em; margin-right: .3em; vertical-align: -2px; }}
.clip {{ background: #fff; border: 1px solid #ddd; border-left: 6px solid #2ca02c; margin: .6em 0;
  padding: .5em .8em; }}
.clip.discard {{ border-left-color: #bbb; opacity: .8; }}
.head .verdict {{ text-transform: uppercase; font-size: .8em; padding: 0 .4em; background: #2ca02c; color: #fff;
  border-radius: 3px; }}
.discard .head .verdict {{ background: #999; }}
.name {{ font-family: monospace; }} .score {{ float: right; font-weight: bold; }}
.body {{ display: flex; gap: 1.2em; margin-top: .4em; }}
.media {{ width: 480px; flex: none; }}
.spec {{ width: 480px; height: 80px; display: block; image-rendering: pixelated; background: #000; }}
.spec.none {{ color: #fff; text-align: center; line-height: 80px; }}
.bar {{ position: relative; height: 12px; background: #eee; margin: 2px 0 4px; }}
.bar span {{ position: absolute; top: 0; height: 12px; }}
audio {{ width: 480px; height: 32px; }}
.reasons {{ margin: 0; padding-left: 1.2em; }} .ok {{ color: #2ca02c; }}
.facts {{ color: #555; font-size: .9em; margin: .3em 0; }}
.lab {{ font-size: .8em; color: #666; }}
.temp {{ background: #fff8f0; border: 1px solid #eee; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}. Ranked best first; hover a lineage bar for the source track and time.</p>
{legend}
{rows}
</body></html>
"""
