"""The analysis notebooks: stored without outputs, and each runs top to bottom on demo outputs.

Each notebook is executed with nbclient (kernel ``python3``) in a temporary copy, its inputs given
by the environment variables of its parameters cell. 01 reads the tiny corpora; 02 and 03 read
the session's demo multirun and evaluation (``demo_outputs`` in conftest.py), so they are slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import soundfile as sf
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_data.ipynb", "02_evaluation.ipynb", "03_sweeps.ipynb")
ENV_VARS = {"01_data.ipynb": "SER_CORPUS", "02_evaluation.ipynb": "SER_EVAL_DIR",
            "03_sweeps.ipynb": "SER_SWEEP_DIR"}
CELL_TIMEOUT = 120


def execute(name: str, tmp_path: Path, **env: str) -> nbformat.NotebookNode:
    """Run a copy of the notebook in ``tmp_path`` (its working folder); raises on a cell error."""
    copy = tmp_path / name
    shutil.copy(NOTEBOOKS / name, copy)
    book = nbformat.read(copy, as_version=4)
    kernel_env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1",
                      WANDB_MODE="disabled", **env)
    for var in ENV_VARS.values():
        if var not in env:
            kernel_env.pop(var, None)
    client = NotebookClient(book, kernel_name="python3", timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=kernel_env)
    return book


def outputs(book: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(kind, text) of every output in order: ``stream``, ``text`` (text/plain) or ``png``."""
    out = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                out.append(("stream", output.text))
            elif "data" in output:
                data = output["data"]
                if "image/png" in data:
                    out.append(("png", ""))
                else:
                    out.append(("text", data.get("text/plain", "")))
    return out


def all_text(book: nbformat.NotebookNode) -> str:
    return "\n".join(text for _, text in outputs(book))


def table_after(book: nbformat.NotebookNode, heading: str) -> str:
    """The text of the first displayed table after the printed ``heading``."""
    items = outputs(book)
    start = next(i for i, (kind, text) in enumerate(items) if kind == "stream" and heading in text)
    return next(text for kind, text in items[start + 1:] if kind == "text")


# -- stored form -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_has_no_outputs_and_reads_its_input_from_the_environment(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(book)
    assert book.metadata.kernelspec.name == "python3"
    code = [c for c in book.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [], f"{name}: a cell has stored outputs; clear them"
        assert cell.execution_count is None, f"{name}: a cell has an execution count"
    assert book.cells[0].cell_type == "markdown"
    assert f'os.environ.get("{ENV_VARS[name]}"' in code[0].source  # the parameters cell


@pytest.mark.parametrize("name, command", [
    ("01_data.ipynb", "ser synth data/demo"),
    ("02_evaluation.ipynb", "python evaluate.py dataset=ravdess"),
    ("03_sweeps.ipynb", "python train.py -m experiment=demo"),
])
def test_a_missing_input_names_the_path_and_the_command_that_makes_it(name, command, tmp_path):
    missing = tmp_path / "not-there"
    with pytest.raises(CellExecutionError) as info:
        execute(name, tmp_path, **{ENV_VARS[name]: str(missing)})
    message = str(info.value)
    assert "FileNotFoundError" in message
    assert str(missing) in message and command in message


# -- 01: a corpus ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["indonesian", "ravdess"])
def test_data_notebook_describes_a_corpus_in_either_layout(layout, tiny_corpora, tmp_path):
    from ser.data.kaggle import load_kaggle
    from ser.data.ravdess import load_ravdess

    root = tiny_corpora[layout]
    index = load_kaggle(root) if layout == "indonesian" else load_ravdess(root, "all").frame

    book = execute("01_data.ipynb", tmp_path, SER_CORPUS=str(root))

    text = all_text(book)
    assert f"{len(index)} of {len(index)} files have a readable audio header" in text
    classes = table_after(book, "Files per class")
    counts = index["label"].value_counts()
    for label, n in counts.items():
        assert re.search(rf"^{label}\s+\S+\s+{n}\s", classes, re.M), (label, classes)
    rates = table_after(book, "Files per sample rate:")
    for rate, n in pd.Series([sf.info(p).samplerate for p in index["path"]]).value_counts().items():
        assert re.search(rf"^{rate} Hz\s+{n}$", rates, re.M), (rate, rates)
    if layout == "indonesian":
        assert "no intensity in train.csv" in text
    else:
        intensity = table_after(book, "RAVDESS intensity per emotion")
        assert "normal" in intensity and "strong" in intensity
        assert "Files per RAVDESS emotion" in text
    assert "Duration statistics" in text and "Result: usable" in text
    assert sum(kind == "png" for kind, _ in outputs(book)) >= 3  # classes, intensity, durations


# -- 02 and 03: demo outputs -----------------------------------------------------------------


@pytest.mark.slow
def test_evaluation_notebook_breaks_the_scores_down(demo_outputs, tmp_path):
    eval_dir = demo_outputs["eval_dir"]
    metrics = json.loads((eval_dir / "metrics.json").read_text())

    book = execute("02_evaluation.ipynb", tmp_path, SER_EVAL_DIR=str(eval_dir))

    per_actor = table_after(book, "Scores per actor")
    assert re.search(r"n\s+accuracy\s+ua", per_actor)
    assert len(metrics["per_actor"]) == 2
    for actor, block in metrics["per_actor"].items():
        assert re.search(rf"^{actor}\s+{block['n']}\s+{block['accuracy']:.3f}", per_actor, re.M)
    for heading in ("Scores per gender", "Scores per intensity",
                    "Scores per emotion and intensity"):
        assert heading in all_text(book)
    where = table_after(book, "Where the RAVDESS emotions without a class went")
    for emotion, counts in metrics["unmapped"].items():
        row = f"{emotion}\\s+" + r"\s+".join(str(counts[label]) for label in counts)
        assert re.search(row, where), (emotion, counts)
    # accuracy bars x4, confusion, overview
    assert sum(kind == "png" for kind, _ in outputs(book)) >= 6
    assert not any((tmp_path / name).exists() for name in ("figures", "metrics.json"))


@pytest.mark.slow
def test_sweeps_notebook_plots_the_metric_against_the_learning_rate(demo_outputs, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(demo_outputs["sweep_dir"], sweep)  # the notebook rewrites summary.csv
    run = tmp_path / "run"
    run.mkdir()

    book = execute("03_sweeps.ipynb", run, SER_SWEEP_DIR=str(sweep))

    summary = pd.read_csv(sweep / "summary.csv")
    best = summary[summary["val_ua_best"].notna()].iloc[0]
    assert best["overrides"].startswith("model.optimizer.lr=")
    text = all_text(book)
    assert f"best: job {best['job']} ({best['overrides']})" in text
    assert f"best job: {best['job']}  overrides: {best['overrides']}" in text
    assert "swept: model.optimizer.lr" in text
    assert sum(kind == "png" for kind, _ in outputs(book)) == 1
