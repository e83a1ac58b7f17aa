"""What the studio opened: run folders and clips folders, and the only files it will serve.

`inspire studio PATH...` takes run folders (RUN/, made by prepare/train/generate) and clips
folders (any folder of clips with sidecars). Each opened PATH is a *root*; the page can reach
files inside the roots and nothing else. A run root contributes its training view and every
clips folder under RUN/clips/; a clips root contributes itself and its clips subfolders.

`Roots.resolve(key, relative)` is the one door to the disk: the path is resolved (symlinks
followed) and must still be inside the root it names; anything else is refused without saying
whether it exists (Starlette's `StaticFiles.lookup_path` does the same for static files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from inspire.errors import UserInputError

# Folders under a clips folder that hold no clips of their own to show (pieces/: composed pieces
# and their stems, which the arrange view lists).
_SKIP = {"report_files", "__pycache__", "pieces"}
_MAX_DEPTH = 3  # RUN/clips/JOB/discarded is as deep as the tools go
_RUNS_DEPTH = 2  # runs found inside an opened folder: DIR/run, DIR/runs/album


@dataclass(frozen=True)
class Root:
    key: str  # "r0", "r1"... in the order given
    path: Path  # resolved
    is_run: bool


@dataclass(frozen=True)
class ClipsFolder:
    key: str  # "c0", "c1"...
    root: Root
    path: Path  # resolved, inside root.path

    @property
    def relative(self) -> str:
        """The folder's path inside its root, "" for the root itself."""
        rel = self.path.relative_to(self.root.path).as_posix()
        return "" if rel == "." else rel

    @property
    def name(self) -> str:
        rel = self.relative
        return f"{self.root.path.name}/{rel}" if rel else self.root.path.name


def is_run(path: Path) -> bool:
    """A run folder: prepared data, checkpoints or a training log."""
    return ((path / "data" / "manifest.json").is_file() or (path / "checkpoints").is_dir()
            or (path / "metrics.jsonl").is_file())


def holds_clips(path: Path) -> bool:
    """Whether a folder has finished clips (a sidecar beside audio) or clips being generated."""
    try:
        with os.scandir(path) as it:
            names = {e.name for e in it if e.is_file()}
    except OSError:
        return False
    for name in names:
        if name.endswith(".partial.wav"):
            return True
        if name.endswith(".json") and name[:-5] + ".wav" in names:
            return True
    return False


class Roots:
    """The opened folders, the clips folders found in them, and safe lookup of files inside."""

    def __init__(self, paths: list[str | os.PathLike]):
        if not paths:
            paths = ["."]
        roots: list[Root] = []
        for raw in paths:
            p = Path(raw).expanduser()
            if not p.exists():
                raise UserInputError(f"{p}: no such folder")
            if not p.is_dir():
                raise UserInputError(f"{p}: not a folder (give a run folder or a folder of clips)")
            resolved = p.resolve()
            if any(r.path == resolved for r in roots):
                continue
            roots.append(Root(f"r{len(roots)}", resolved, is_run(resolved)))
        # A folder of runs (`inspire studio runs/`, the demo's folder) opens the runs inside it too:
        # each is a root of its own (its training view, generate and live), inside what was opened.
        for root in list(roots):
            if root.is_run:
                continue
            for sub in _subfolders(root.path, _RUNS_DEPTH):
                try:
                    sub = sub.resolve()
                except OSError:
                    continue
                if (_inside(sub, root.path) and is_run(sub) and not any(r.path == sub for r in roots)
                        and not any(r.is_run and _inside(sub, r.path) for r in roots)):
                    roots.append(Root(f"r{len(roots)}", sub, True))
        self.roots = roots
        self.by_key = {r.key: r for r in roots}
        self.clips_folders: list[ClipsFolder] = []
        self.refresh()

    def refresh(self) -> list[ClipsFolder]:
        """Look for clips folders again (new generate jobs appear while the studio runs).
        Folders already known keep their keys; an opened clips folder is listed even while
        empty (its clips may be on the way)."""
        known = {f.path for f in self.clips_folders}
        for root in self.roots:
            if root.is_run:
                top = root.path / "clips"
                candidates = [top, *_subfolders(top, _MAX_DEPTH - 1)] if top.is_dir() else []
            else:
                candidates = [root.path, *_subfolders(root.path, _MAX_DEPTH)]
            nested = [r.path for r in self.roots if r.is_run and r is not root and _inside(r.path, root.path)]
            for folder in candidates:
                try:
                    folder = folder.resolve()
                except OSError:
                    continue
                if folder in known or not _inside(folder, root.path):
                    continue
                if any(_inside(folder, run) for run in nested):
                    continue  # listed under that run's own root
                if (folder == root.path and not nested) or holds_clips(folder):  # a folder of runs is none
                    self.clips_folders.append(ClipsFolder(f"c{len(self.clips_folders)}", root, folder))
                    known.add(folder)
        return self.clips_folders

    def folder(self, key: str) -> ClipsFolder | None:
        return next((f for f in self.clips_folders if f.key == key), None)

    @property
    def runs(self) -> list[Root]:
        """The opened run folders (the runs view shows these)."""
        return [r for r in self.roots if r.is_run]

    def run_of(self, folder: ClipsFolder) -> Path | None:
        """The run a clips folder belongs to: its opened run root, or the nearest run folder above
        it (RUN/clips/JOB opened on its own). Lineage excerpts are read from this run's data."""
        if folder.root.is_run:
            return folder.root.path
        for parent in list(folder.path.parents)[:_MAX_DEPTH]:
            if is_run(parent):
                return parent
        return None

    def resolve(self, key: str, relative: str) -> Path | None:
        """The file `relative` inside root `key`, or None when it is outside (.., absolute paths,
        encoded traversal already decoded by the server, symlinks out), missing or not a file."""
        root = self.by_key.get(key)
        if root is None or not relative or "\x00" in relative:
            return None
        if relative.startswith(("/", "\\")) or os.path.isabs(relative) or "\\" in relative:
            return None
        try:
            full = (root.path / relative).resolve()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop on older Pythons
            return None
        if not _inside(full, root.path) or not full.is_file():
            return None
        return full

    def url_of(self, path: Path) -> str | None:
        """/files/<root key>/<relative path> for a file inside a root, None otherwise."""
        path = Path(path)
        for root in self.roots:
            if _inside(path, root.path):
                return f"/files/{root.key}/{quote(path.relative_to(root.path).as_posix())}"
        return None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _subfolders(folder: Path, depth: int) -> list[Path]:
    if depth <= 0:
        return []
    out: list[Path] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return out
    for e in entries:
        if e.name.startswith(".") or e.name in _SKIP:
            continue
        try:
            if e.is_dir():
                out.append(Path(e.path))
                out.extend(_subfolders(Path(e.path), depth - 1))
        except OSError:
            continue
    return out
