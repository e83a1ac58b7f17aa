"""Spectrograms of clips side by side, one row per clip, in one PNG: for looking at a study's
clips where they were made (a machine without speakers, or one whose files do not come back
whole). Each row is titled with its folder, file and the sidecar's temperature curve.

    python bench/spectrogram_grid.py OUT.png FOLDER[:N] [FOLDER[:N] ...]   # first N clips (default 3)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inspire import clips  # noqa: E402
from inspire.audio.io import read_audio  # noqa: E402
from inspire.audio.spectral import stft  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, rows = Path(argv[0]), []
    for arg in argv[1:]:
        folder, _, n = arg.partition(":")
        records = sorted(clips.scan(Path(folder)), key=lambda r: r.id)[: int(n or 3)]
        rows += [(Path(folder), r) for r in records]
    fig, axes = plt.subplots(len(rows), 1, figsize=(14, 1.6 * len(rows)), squeeze=False)
    for ax, (folder, record) in zip(axes[:, 0], rows, strict=True):
        x, info = read_audio(folder / record.file)
        power = np.abs(stft(x, n_fft=1024, hop=256)) ** 2  # (frames, bins)
        db = 10 * np.log10(power.T + 1e-10)
        seconds = len(x) / info.sample_rate
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
                  extent=(0, seconds, 0, info.sample_rate / 2000))
        ax.set_ylabel("kHz", fontsize=7)
        ax.tick_params(labelsize=7)
        truncation = (("min-p", record.min_p), ("top-p", record.top_p))
        controls = [f"T {record.temperature.get('spec')}"] + [
            f"{name} {curve.get('spec')}" for name, curve in truncation if curve]
        ax.set_title(f"{folder.name}/{record.file}  {', '.join(controls)}", fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(f"wrote {out} ({len(rows)} clips)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
