"""How tests/data/release-0.1/ was written:
    PYTHONPATH=src python tests/data/release-0.1/make.py tests/data/release-0.1
at inspire 0.1.0 (commit 0a2510c). Kept as a record; rerunning it with later code would write a later format."""
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import sine, write  # noqa: E402
from inspire.audio.dataset import PrepareSettings, prepare
from inspire.samplernn.train import train

out = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for i, (f, secs) in enumerate([(220.0, 3.0), (330.0, 2.5), (440.0, 2.0)]):  # the `album` fixture of conftest
        x = sine(f, secs, 16000) + 0.1 * sine(3 * f, secs, 16000)
        write(tmp / "album" / f"track{i}.wav", x, 16000)
    run = tmp / "run"
    prepare([tmp / "album"], run, PrepareSettings(levels=16), progress=False)
    train(run, preset="tiny", model_overrides={"frame_sizes": "4,2", "dim": "8"},
          train_overrides={"batch_size": "2", "seq_len": "16", "chunk_seconds": "0.25", "val_seconds": "0.5",
                           "val_every": "2", "checkpoint_every": "100", "preview_seconds": "0"},
          max_steps=3, progress=False, log_every=1, previews=False)
    shutil.copyfile(run / "checkpoints/last.pt", out / "step-00000003.pt")
    shutil.copyfile(run / "config.json", out / "config.json")
