"""report.md: what was evaluated, the scores as tables, the figures, and the caveats."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.labels import ENGLISH, LABELS, RAVDESS_UNMAPPED

IN_DOMAIN_WARNING = (
    "> **Warning: RAVDESS is in-domain for this model, not cross-lingual.** Its backbone "
    "`{backbone}` was fine-tuned on RAVDESS (listed in `caveats.trained_on_ravdess`, or its "
    "head had RAVDESS's eight emotion labels), so these "
    "scores measure recall of data it has seen, not transfer to a new language or corpus. "
    "Use another backbone (e.g. `model=xlsr_300m`) for a clean cross-lingual figure.")
KAGGLE_CONTAINS_RAVDESS = (
    "The Indonesian Kaggle training data contains RAVDESS clips (source 2, ids 7442+, follows "
    "RAVDESS speech with calm and surprised removed; about 214 of the 264 clips of actors 01, 02, "
    "08, 11, 15, 22), so a RAVDESS score of a model trained on it is partly a score on its "
    "training data. The leakage audit (on by default for a model of a training run: the train "
    "rows of its split.csv; `audit.train_root=DIR` otherwise) finds the evaluated clips "
    "that the training data holds and reports the score on the clean part.")


@dataclass
class ReportInput:
    dataset: str
    model_path: str
    model_kind: str
    backbone: str
    backbone_source: str
    data_root: str
    metrics: Mapping[str, Any]
    figures: Sequence[Path]
    out_dir: Path
    in_domain: bool = False
    actors: Sequence[int] = ()
    notes: Sequence[str] = ()
    noise: Sequence[Mapping[str, Any]] = ()
    audit_root: str | None = None
    extra: list[str] = field(default_factory=list)


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _group_table(name: str, block: Mapping[str, Mapping[str, Any]]) -> str:
    return table([name, "n", "accuracy (WA)", "UA"],
                 [[k, v["n"], v["accuracy"], v["ua"]] for k, v in block.items()])


def render(r: ReportInput) -> str:
    m = r.metrics
    out: list[str] = [f"# Evaluation on {r.dataset}", ""]
    if r.in_domain:
        out += [IN_DOMAIN_WARNING.format(backbone=r.backbone), ""]
    out += ["## What was evaluated", "",
            f"- model: `{r.model_path}` ({r.model_kind})",
            f"- backbone: `{r.backbone}` ({r.backbone_source})",
            f"- data: `{r.data_root}` ({r.dataset})"]
    if r.actors:
        out.append(f"- actors: {', '.join(f'{a:02d}' for a in r.actors)}")
    if m.get("split"):
        out.append(f"- split: {m['split']} " + {
            "test": "(the run's held-out test split)",
            "val": "(the run's validation split, which selected the checkpoint: optimistic)",
            "all": "(every labelled file: includes training files, optimistic)"}.get(m["split"], ""))
    reasons = ", ".join(f"{k}: {v}" for k, v in (m.get("failed_reasons") or {}).items())
    out.append(f"- rows: {m.get('n_rows', m['n_files'])} (every input row), scored: {m['n']}, "
               f"failed: {m['n_failed']}" + (f" ({reasons})" if reasons else ""))
    out += [f"- {note}" for note in r.notes]
    out.append("")
    if "leakage" in m:
        out += _leakage_section(m)
    elif r.dataset == "ravdess":
        out += ["> **Not audited for leakage.** The Kaggle training data contains RAVDESS clips; "
                "rerun with `audit.train_root=<the training data>` for the score on the clean "
                "part.", ""]
    if m["n"]:
        out += ["## Scores", "",
                table(["n", "accuracy (WA)", "UA", "macro-F1"],
                      [[m["n"], m["accuracy"], m["ua"], m["macro_f1"]]]), "",
                "### Per class", "",
                table(["class", "English", "precision", "recall", "F1", "support"],
                      [[k, ENGLISH[k], v["precision"], v["recall"], v["f1"], v["support"]]
                       for k, v in m["per_class"].items()]), "",
                "### Confusion (rows: true, columns: predicted; counts)", "",
                table(["true \\ pred", *LABELS],
                      [[label, *row] for label, row in zip(LABELS, m["confusion"]["matrix"])]),
                ""]
    if "calibration" in m:
        c = m["calibration"]
        out += ["### Calibration", "",
                f"Probabilities are divided by the temperature T = {c['temperature']:.3f} fitted "
                "on the training run's validation split (T = 1: none known). Raw = the model's "
                f"softmax before that; {c['bins']} confidence bins; n = {c['n']}.", "",
                table(["", "ECE", "NLL"], [["raw", c["ece_before"], c["nll_before"]],
                                           ["calibrated", c["ece_after"], c["nll_after"]]]), ""]
    if "unmapped" in m:
        out += ["### Where the emotions without a class went", "",
                table(["emotion", *LABELS, "n"],
                      [[e, *[m["unmapped"][e][k] for k in LABELS], sum(m["unmapped"][e].values())]
                       for e in RAVDESS_UNMAPPED]), ""]
    for key, block in m.items():
        if key.startswith("per_") and key != "per_class" and block:
            out += [f"### By {key[4:]}", "", _group_table(key[4:], block), ""]
    if "predicted" in m:
        out += ["### Predicted classes (no true labels)", "",
                table(["class", "files", "mean confidence"],
                      [[k, v["n"], v["mean_confidence"]] for k, v in m["predicted"].items()]), ""]
    if r.noise:
        out += ["### Robustness to added white noise", "",
                table(["SNR (dB)", "n", "accuracy (WA)", "UA", "macro-F1"],
                      [["clean" if n["snr_db"] is None else f"{n['snr_db']:g}", n["n"], n["accuracy"],
                        n["ua"], n["macro_f1"]] for n in r.noise]), ""]
    out += r.extra
    if r.figures:
        out += ["## Figures", ""]
        for path in r.figures:
            rel = Path(path).relative_to(r.out_dir).as_posix()
            out += [f"![{Path(path).stem}]({rel})", ""]
    if m["failed"]:
        out += [f"## Failed files ({len(m['failed'])})", "",
                "These files have a row with an empty `pred` and the reason in `error` in "
                "predictions.csv, and are left out of every score.", ""]
        out += [f"- `{f['path']}`: {f['error']}" for f in m["failed"]] + [""]
    out += ["## Caveats", ""]
    if r.in_domain:
        out.append(f"- The backbone `{r.backbone}` was trained on RAVDESS (see the warning above).")
    out.append(f"- {KAGGLE_CONTAINS_RAVDESS}")
    out.append("- UA is the mean recall over the classes present in the truth (an absent "
               "class has no recall and is not averaged in); WA is plain accuracy; failed rows "
               "and emotions without a class are left out of both (see `ser.metrics`).")
    return "\n".join(out) + "\n"


def _leakage_section(m: Mapping[str, Any]) -> list[str]:
    """At the top of the report: the overlap found and the clean scores beside the full ones."""
    lk = m["leakage"]
    lines = ["## Leakage audit", "",
             f"Audited against `{lk['train_root']}` ({lk['train_layout']} layout, "
             f"{lk['train_n']} files): **{lk['summary']}** (fingerprint score >= "
             f"{lk['threshold']}; pairs in `{lk['matches_csv']}`, `leaked` column in "
             "predictions.csv).", "",
             table(["", "n", "accuracy (WA)", "UA", "macro-F1"],
                   [["all scored clips", m["n"], m["accuracy"], m["ua"], m["macro_f1"]],
                    ["clean (not in the training data)", lk["clean_n"], lk["clean_accuracy"],
                     lk["clean_ua"], lk["clean_macro_f1"]]]), ""]
    if lk["overlap"]:
        lines += ["The full scores include clips the model was trained on; the clean row is the "
                  "honest figure.", "",
                  table(["evaluated clip", "training file it matched"],
                        [[f"`{e}`", f"`{t}`"] for e, t in lk.get("matched", {}).items()]), ""]
    if lk.get("held_out_overlap"):
        parts = ", ".join(f"{k} {v}" for k, v in lk.get("held_out_parts", {}).items())
        lines += [f"**{lk['held_out_summary']}** ({parts}): the corpora overlap, but the model "
                  "did not train on these files; they are counted as clean (column "
                  "`held_out_match` of predictions.csv).", ""]
    if lk["unfingerprinted"]:
        lines += [f"{len(lk['unfingerprinted'])} files could not be fingerprinted and are "
                  "neither counted as leaked nor as clean-proven:", ""]
        lines += [f"- `{p}`: {e}" for p, e in lk["unfingerprinted"].items()] + [""]
    return lines


def write_report(r: ReportInput, path: Path) -> Path:
    path.write_text(render(r), encoding="utf-8")
    return path
