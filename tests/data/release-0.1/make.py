"""How tests/data/release-0.1/ was written: `PYTHONPATH=src python tests/data/release-0.1/make.py tests/data/release-0.1`
at inspire 0.1.0 (commit 0a2510c). Kept as a record; rerunning it with later code would write a later format."""
import shutil, sys, tempfile
from pathlib import Path
import numpy as np, soundfile as sf
from inspire.audio.dataset import PrepareSettings, prepare
from inspire.samplernn.train import train

out = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for i, (f, secs) in enumerate([(220.0, 3.0), (330.0, 2.5), (440.0, 2.0)]):
        t = np.arange(int(secs * 16000)) / 16000
        x = 0.5 * np.sin(2 * np.pi * f * t) + 0.05 * np.sin(2 * np.pi * 3 * f * t)
        (tmp / "album").mkdir(exist_ok=True)
        sf.write(str(tmp / "album" / f"track{i}.wav"), x.astype(np.float32), 16000)
    run = tmp / "run"
    prepare([tmp / "album"], run, PrepareSettings(levels=16), progress=False)
    train(run, preset="tiny", model_overrides={"frame_sizes": "4,2", "dim": "8"},
          train_overrides={"batch_size": "2", "seq_len": "16", "chunk_seconds": "0.25", "val_seconds": "0.5",
                           "val_every": "2", "checkpoint_every": "100", "preview_seconds": "0"},
          max_steps=3, progress=False, log_every=1, previews=False)
    shutil.copyfile(run / "checkpoints/last.pt", out / "step-00000003.pt")
    shutil.copyfile(run / "config.json", out / "config.json")
