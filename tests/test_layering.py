"""The layering: which wing may import what, and torch only where it is promised.

Wings, left to right (imports flow one way): basics (errors, files, config, schedule, clips...),
audio, samplernn (the only wing that imports torch), curate and compose, then the front ends
(cli, studio). Nothing imports cli. Checked twice: statically, by reading every import statement
under src/ (function-level ones included), and at run time, in fresh processes, for the promise
that curation, composition, the studio and `inspire --help` never load torch.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import melody

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "inspire"

# The wings each wing may import (its own included). A module directly in inspire/ is a basic.
MAY_IMPORT = {
    "basics": {"basics"},
    "audio": {"basics", "audio"},
    "samplernn": {"basics", "audio", "samplernn"},
    "curate": {"basics", "audio", "curate"},
    "compose": {"basics", "audio", "curate", "compose"},
    "studio": {"basics", "audio", "samplernn", "curate", "compose", "studio"},
    "cli": {"basics", "audio", "samplernn", "curate", "compose", "studio", "cli"},
}
TORCH_WING = "samplernn"
# Imports against the flow, each with its reason; one that no longer happens must leave the list.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _wing(module: str) -> str:
    """inspire.audio.io -> audio; inspire.config -> basics; inspire.__main__ (the console entry) -> cli."""
    parts = module.split(".")
    if len(parts) > 1 and (PKG / parts[1]).is_dir():
        return parts[1]
    return "cli" if parts[1:2] == ["__main__"] else "basics"


def _sources() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every module an `import` in `path` names, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            found.append((node.lineno, base))
            # `from inspire import schedule`: the name may be a module of its own.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if base.startswith("inspire") and _is_module(f"{base}.{alias.name}")]
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PKG / rel).is_dir() or (PKG / rel).with_suffix(".py").is_file()


def test_every_wing_is_in_the_table():
    wings = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    assert wings - set(MAY_IMPORT) == set(), "a new wing: say in MAY_IMPORT what it may import"


def test_each_wing_imports_only_the_wings_on_its_left():
    wrong, seen, excused = [], set(), set()
    for path in _sources():
        mine = _wing(_module_name(path))
        for line, module in _imports(path):
            if module.split(".")[0] != "inspire" or module == "inspire":
                continue
            seen.add((mine, _wing(module)))
            if _wing(module) in MAY_IMPORT[mine]:
                continue
            if (str(path.relative_to(SRC)), module) in EXCEPTIONS:
                excused.add((str(path.relative_to(SRC)), module))
            else:
                wrong.append(f"{path.relative_to(SRC)}:{line}: {mine} imports {module} ({_wing(module)})")
    assert not wrong, "\n".join(wrong)
    assert excused == set(EXCEPTIONS), f"no longer needed, remove from EXCEPTIONS: {set(EXCEPTIONS) - excused}"
    # The reader sees top-level imports and those inside functions (cli's run functions).
    assert {("samplernn", "audio"), ("cli", "samplernn"), ("cli", "curate")} <= seen


def test_nothing_imports_the_command_line():
    users = [f"{path.relative_to(SRC)}:{line}" for path in _sources() for line, module in _imports(path)
             if _wing(module) == "cli" and module.startswith("inspire.cli") and _wing(_module_name(path)) != "cli"]
    assert not users, users


def test_only_samplernn_names_torch_in_an_import():
    users = [f"{path.relative_to(SRC)}:{line}: {module}" for path in _sources() for line, module in _imports(path)
             if module.split(".")[0] == "torch" and _wing(_module_name(path)) != TORCH_WING]
    assert not users, users


def _run(code: str, *args: str, cwd: Path | None = None) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_every_module_outside_samplernn_imports_without_torch():
    modules = [name for name in map(_module_name, _sources())
               if _wing(name) != TORCH_WING and not name.endswith("__main__")]
    assert {"inspire.schedule", "inspire.curate.curate", "inspire.compose.compose", "inspire.cli"} <= set(modules)
    _run(
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "    if 'torch' in sys.modules:\n"
        "        sys.exit(f'importing {name} imported torch')\n",
        *modules,
    )


def test_the_clip_record_loads_no_audio_libraries():
    """inspire.clips is read by every wing (the studio too): plain Python, no torch, numpy or soundfile."""
    _run("import sys\nfrom inspire import clips\nassert not {'torch', 'soundfile', 'numpy'} & set(sys.modules)\n")


def test_help_of_every_command_imports_no_torch():
    _run(
        "import contextlib, io, sys\n"
        "from inspire.cli import build_parser, main\n"
        "commands = next(a for a in build_parser()._actions if a.dest == 'command').choices\n"
        "assert {'prepare', 'train', 'generate', 'curate', 'lineage', 'compose', 'demo'} <= set(commands)\n"
        "for argv in [[], *([c] for c in commands)]:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):\n"
        "        main([*argv, '--help'])\n"
        "    assert 'usage: inspire' in out.getvalue(), argv\n"
        "    if 'torch' in sys.modules:\n"
        "        sys.exit(f'inspire {\" \".join(argv)} --help imported torch')\n"
    )


def test_curate_and_compose_run_without_torch(tmp_path):
    """The real work, not just the imports: curation (scores, report) and an --auto piece with noise
    reduction (noisereduce must not pull torch in either)."""
    clips = tmp_path / "clips"
    clips.mkdir()
    for k in range(4):
        x = melody(4.0, 10 + k) + 0.003 * np.random.default_rng(k).standard_normal(4 * 16000).astype(np.float32)
        sf.write(clips / f"clip-{k}.wav", x, 16000, subtype="PCM_16")
    _run(
        "import sys\n"
        "from inspire.cli import main\n"
        "assert main(['curate', sys.argv[1], '--quiet']) == 0\n"
        "assert 'torch' not in sys.modules, 'curate imported torch'\n"
        "assert main(['compose', '--auto', sys.argv[1], '--minutes', '0.1', '--noise-reduction', 'parts',\n"
        "             '--out', 'piece.wav']) == 0\n"
        "assert 'noisereduce' in sys.modules, 'noise reduction did not run'\n"
        "assert 'torch' not in sys.modules, 'compose imported torch'\n",
        str(clips), cwd=tmp_path,
    )
    assert (clips / "curation.json").is_file() and (tmp_path / "piece.wav").is_file()


@pytest.mark.parametrize("wing, module, allowed", [
    ("curate", "inspire.samplernn.generate", False),
    ("compose", "inspire.cli", False),
    ("cli", "inspire.samplernn.generate", True),
    ("basics", "inspire.audio.io", False),
])
def test_the_rules_themselves(wing, module, allowed):
    """The table says what the architecture says (so the checks above check something)."""
    assert (_wing(module) in MAY_IMPORT[wing]) is allowed
