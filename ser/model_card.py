"""The exported model folder's README.md: a Hugging Face model card that explains the model to a
reader who never saw the run (what it was trained on, how it was split, how well it does, how
confident it should be, what it must not be used for, and how to make it again).

Written by training after the export (:func:`write_model_card`); every evaluation of the model
appends its scores (:func:`append_evaluation`). YAML front matter follows the hub's model-card
metadata (base_model, datasets, metrics, language, license, pipeline_tag, tags), so it renders
as a normal model card when uploaded.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from omegaconf import OmegaConf

from ser.data.splits import read_split_file
from ser.labels import ENGLISH, LABELS

log = logging.getLogger(__name__)

# What each known backbone was itself trained on (from its model card).
BACKBONE_DATA = {
    "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition": (
        "jonatasgrosman/wav2vec2-large-xlsr-53-english (XLSR-53: 56k hours of unlabelled "
        "speech in 53 languages, then English ASR on Common Voice), then fine-tuned **on "
        "RAVDESS** (8 emotions: angry, calm, disgust, fearful, happy, neutral, sad, surprised). "
        "Its RAVDESS scores are therefore in-domain, and the Kaggle corpus below contains "
        "RAVDESS clips too."),
    "facebook/wav2vec2-large-xlsr-53": "56k hours of unlabelled speech in 53 languages "
                                       "(MLS, Common Voice, BABEL); no emotion labels.",
    "facebook/wav2vec2-xls-r-300m": "436k hours of unlabelled speech in 128 languages "
                                    "(VoxPopuli, MLS, Common Voice, VoxLingua107, BABEL).",
    "facebook/wav2vec2-base": "960 hours of LibriSpeech (English read speech), unlabelled.",
    "facebook/hubert-large-ll60k": "60k hours of Libri-Light (English audiobooks), unlabelled.",
    "microsoft/wavlm-base-plus": "94k hours (Libri-Light, GigaSpeech, VoxPopuli), unlabelled.",
    "tiny": "nothing: a tiny randomly initialised Wav2Vec2 for tests and the offline demo.",
}
CORPUS_OF_SOURCE = {"1": "CREMA-D (relabelled)", "2": "RAVDESS (relabelled)"}
EVAL_MARK = "<!-- evaluations appended by evaluate.py below -->"


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return out + ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]


def split_tables(split_csv: Path) -> list[str]:
    """Clips per split, corpora, speakers and class balance from a run's split.csv (the issue 12
    columns file,split,label,speaker,gender,corpus where present; the corpus is read from the
    Kaggle file name's source prefix otherwise)."""
    if not split_csv.is_file():
        return [f"(no split.csv at `{split_csv}`: the split is unknown)"]
    t = read_split_file(split_csv)
    if "corpus" not in t.columns:
        t["corpus"] = t["file"].str.split("_").str[0].map(CORPUS_OF_SOURCE).fillna("unknown")
    splits = [s for s in ("train", "val", "test") if (t["split"] == s).any()]
    rows = []
    for s in splits:
        part = t[t["split"] == s]
        corpora = ", ".join(f"{k} {v}" for k, v in part["corpus"].value_counts().items())
        speakers = part["speaker"].nunique() if "speaker" in t.columns else "–"
        rows.append([s, len(part), speakers, corpora])
    out = _table(["split", "clips", "speakers", "corpora (clips)"], rows) + [""]
    if "label" in t.columns and t["label"].isin(LABELS).any():
        counts = [[f"{k} ({ENGLISH[k]})", *[int(((t["split"] == s) & (t["label"] == k)).sum())
                                             for s in splits]] for k in LABELS]
        out += ["Class balance (clips):", ""] + _table(["class", *splits], counts) + [""]
    if "speaker" in t.columns:
        shared = set(t.loc[t["split"] == "train", "speaker"]) & set(
            t.loc[t["split"] != "train", "speaker"])
        out += [f"Speakers shared between train and held-out splits: {len(shared)}"
                + (" (speaker-disjoint)" if not shared else ""), ""]
    return out


def _front_matter(cfg: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    backbone = str(cfg.get("model", {}).get("backbone", "unknown"))
    meta: dict[str, Any] = {
        "language": ["en"],
        "license": "other",
        "library_name": "transformers",
        "pipeline_tag": "audio-classification",
        "tags": ["audio-classification", "speech-emotion-recognition", "wav2vec2",
                 "ser-toolkit", "temperature-scaled"],
        "datasets": ["crema-d", "ravdess"],
        "metrics": ["accuracy", "recall", "f1", "ece"],
    }
    if "/" in backbone and not Path(backbone).exists():
        meta["base_model"] = backbone  # a hub id; a local folder is named in the body only
    return "---\n" + OmegaConf.to_yaml(OmegaConf.create(meta)) + "---\n"


def _scores(metrics: Mapping[str, Any]) -> list[str]:
    cal = metrics.get("calibration") or {}
    rows = []
    for name, block in metrics.items():
        if isinstance(block, dict) and block.get("n") and "ua" in block:
            c = cal.get(name) or {}
            rows.append([name, block["n"], block.get("ua"), block.get("accuracy"),
                         block.get("macro_f1"), c.get("ece_before"), c.get("ece_after")])
    if not rows:
        return ["No labelled evaluation data was scored at the end of training.", ""]
    out = _table(["data", "n", "UA", "WA", "macro-F1", "ECE raw", "ECE calibrated"], rows)
    t = cal.get("temperature")
    note = (f"Probabilities are temperature-scaled: T = {t:.3f}, fitted on the validation split "
            "and **baked into the classifier layer** of `model.safetensors` (its weights and bias "
            "divided by T; `config.json` records `calibration_temperature` and `calibration_temperature_baked_in`), so "
            "`transformers.pipeline` returns calibrated probabilities too. Raw probabilities: "
            "`softmax(T * logits)`, or `ser predict --raw-probabilities`." if t else
            "Probabilities are not calibrated (no labelled validation data at the end of "
            "training).")
    return out + ["", "UA: unweighted accuracy (mean recall over classes); WA: accuracy; ECE: "
                  "expected calibration error, 15 bins.", "", note, ""]


def _reproduce(cfg: Mapping[str, Any], run_dir: Path) -> list[str]:
    env_path = run_dir / "environment.json"
    commit = json.loads(env_path.read_text()).get("git_commit") if env_path.is_file() else None
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
    except Exception:  # noqa: BLE001 - not under @hydra.main (tests call train() directly)
        overrides = None
    command = ("python train.py " + " ".join(overrides)) if overrides is not None else (
        "python train.py (called in-process; see config.yaml for every value)")
    return ["```bash", command.strip(), "```", "",
            f"- commit: `{commit or 'unknown (not a git checkout)'}`",
            f"- resolved config: `{run_dir / 'config.yaml'}` (copy it beside the command, or "
            f"pass `data.split_from={run_dir / 'split.csv'}` to reuse the same split)",
            f"- seed: {cfg.get('seed')}", ""]


def render_card(cfg: Mapping[str, Any], metrics: Mapping[str, Any], run_dir: Path) -> str:
    data = cfg.get("data", {}) or {}
    backbone = str(cfg.get("model", {}).get("backbone", "unknown"))
    split = data.get("split", "stratified")
    protocol = (f"{split} split of the labelled Kaggle files, validation fraction "
                f"{data.get('val_fraction')}, seed {data.get('seed')}"
                + (" (whole speakers go to one side)" if split in ("group", "speaker") else "")
                + (f"; reused from `{data.get('split_from')}`" if data.get("split_from") else ""))
    lines = [_front_matter(cfg, metrics),
             f"# Speech emotion recognition: {backbone} fine-tuned for six emotions", "",
             "Predicts one of six emotions from a speech clip: "
             + ", ".join(f"{k} ({ENGLISH[k]})" for k in LABELS)
             + ". Trained with the SER toolkit (`train.py`).", "",
             "## Training data", "",
             f"The \"Indonesian\" Kaggle speech-emotion corpus at `{data.get('root')}`: English "
             "acted speech relabelled in Indonesian, CREMA-D (91 speakers, source 1) and RAVDESS "
             "(24 speakers, source 2).", ""]
    lines += split_tables(run_dir / "split.csv")
    lines += [f"Split protocol: {protocol}. The split is in `split.csv` of the run.", "",
              "## Base model", "", f"`{backbone}`: "
              + BACKBONE_DATA.get(backbone, "its own training data is not recorded here; see "
                                  "its model card."), "",
              "## Scores at the end of training", ""]
    lines += _scores(metrics)
    lines += ["## Leakage audit", "",
              "None at training time. `evaluate.py` audits each evaluation set against the train "
              "rows of this run's split.csv and appends the result below.", "",
              "## Intended use and limits", "",
              "- Research and teaching on acted emotional speech; a demo backend (`ser serve`).",
              "- Not for decisions about people (hiring, health, policing, surveillance): acted "
              "emotions of a few hundred speakers do not transfer to spontaneous speech, other "
              "languages, accents, ages or recording conditions.",
              "- The labels are Indonesian names of English acted emotions; calm and surprised "
              "have no class.",
              "- RAVDESS scores of a model trained on this corpus include clips it trained on "
              "unless the leakage audit's clean score is used.", "",
              "## How to reproduce", ""]
    lines += _reproduce(cfg, run_dir)
    lines += ["## Evaluations", "", EVAL_MARK, ""]
    return "\n".join(lines)


def write_model_card(model_dir: Path, cfg: Any, metrics: Mapping[str, Any],
                     run_dir: Path) -> Path:
    """Write ``model_dir/README.md`` from the resolved config and the run's metrics."""
    from omegaconf import DictConfig

    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    path = Path(model_dir) / "README.md"
    path.write_text(render_card(plain, metrics, Path(run_dir)), encoding="utf-8")
    log.info("model card: %s", path)
    return path


def model_dir_of(model_path: str | os.PathLike) -> Path | None:
    """The exported folder a model path belongs to: itself, or RUN/model of RUN/checkpoints/."""
    p = Path(model_path).expanduser()
    if p.is_dir():
        return p
    if p.suffix == ".ckpt" and p.parent.name == "checkpoints":
        return p.parent.parent / "model" if (p.parent.parent / "model").is_dir() else None
    return None


def append_evaluation(model_path: str | os.PathLike, metrics: Mapping[str, Any], dataset: str,
                      report: Path) -> Path | None:
    """Append one evaluation's scores (and leakage audit) to the model's card; None when the
    model has no exported folder with a card (a hub id, a bare state dict)."""
    folder = model_dir_of(model_path)
    card = folder / "README.md" if folder is not None else None
    if card is None or not card.is_file():
        return None
    cal = metrics.get("calibration") or {}
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["", f"### {dataset} ({when})", ""]
    if metrics.get("n"):
        lines += _table(["n", "UA", "WA", "macro-F1", "ECE raw", "ECE calibrated"],
                        [[metrics["n"], metrics.get("ua"), metrics.get("accuracy"),
                          metrics.get("macro_f1"), cal.get("ece_before"), cal.get("ece_after")]])
    else:
        lines.append(f"{metrics.get('n_files', 0)} files predicted (no true labels).")
    lk = metrics.get("leakage")
    if lk:
        lines += ["", f"Leakage audit against {lk['train_root']}: **{lk['summary']}**; clean "
                  f"part n={lk['clean_n']}, WA={_fmt(lk['clean_accuracy'])}, "
                  f"UA={_fmt(lk['clean_ua'])}, macro-F1={_fmt(lk['clean_macro_f1'])}."]
        if lk.get("held_out_overlap"):
            lines.append(f"{lk['held_out_summary']}.")
    lines += ["", f"Report: `{report}` (command: `{' '.join(sys.argv)}`)", ""]
    with card.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return card
