"""Figures: importing or drawing with ser never switches matplotlib's backend (a notebook keeps
its inline one), and the figures are still written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: the backend is chosen once per process.
SCRIPT = r"""
import importlib
import pkgutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")  # headless, and not the Agg that ser draws on

import ser

# a __main__ module runs its program when imported (python -m ser.cli): not a module to load
names = sorted(m.name for m in pkgutil.walk_packages(ser.__path__, "ser.")
               if not m.name.endswith(".__main__"))
for name in names:
    importlib.import_module(name)
assert matplotlib.get_backend() == "svg", f"after importing ser: {matplotlib.get_backend()}"

from ser.figures import confusion_figure
from ser.figures.evaluation import confusion
from ser.labels import LABELS

matrix = [[5 if i == j else 1 for j in range(6)] for i in range(6)]
written = confusion({"confusion": {"matrix": matrix}}, Path(sys.argv[1]), "confusion")
returned = confusion_figure(matrix, LABELS)
assert matplotlib.get_backend() == "svg", f"after drawing: {matplotlib.get_backend()}"

import matplotlib.pyplot as plt

assert plt.get_fignums() == [], "a ser figure was left open in pyplot"
print(len(names), written)
"""


def test_importing_every_ser_module_keeps_the_callers_backend_and_figures_are_written(
        tmp_path: Path) -> None:
    target = tmp_path / "confusion.png"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(target)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    imported = int(done.stdout.split()[0])
    assert imported > 80  # every module of the package, not a handful
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
