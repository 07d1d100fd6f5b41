"""Run by tests/test_faults.py in a process that cannot bypass file permissions (root without
CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, or an ordinary user): ``ser predict``, the evaluation
and a training run, each on data with an unreadable file, in one interpreter (imports once).

    python tests/unreadable_driver.py SPEC.json   # writes SPEC["result"] (JSON)
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    result: dict = {}
    try:
        Path(spec["probe"]).read_bytes()
        result["can_read_unreadable"] = True  # the sandbox did not work: the test skips
    except PermissionError:
        result["can_read_unreadable"] = False
    if not result["can_read_unreadable"]:
        from ser.cli import main as cli

        result["predict_code"] = cli(["predict", "--model", spec["model"], spec["predict_dir"],
                                      "--out", spec["predict_csv"], "--workers", "0"])
        from helpers import compose_config
        from ser.evaluation.run import evaluate

        try:
            cfg = compose_config("evaluate", Path(spec["eval_out"]), [
                "dataset=ravdess", f"model_path={spec['model']}",
                f"dataset.root={spec['ravdess']}", "dataset.actors=all", "progress=false",
                "print_rows=0"])
            evaluation = evaluate(cfg)
            result["eval_predictions"] = str(evaluation.out_dir / "predictions.csv")
            result["eval_report"] = str(evaluation.report)
        except BaseException:  # noqa: BLE001 - the parent asserts on what happened
            result["eval_error"] = traceback.format_exc()
        from ser.training import train

        try:
            cfg = compose_config("train", Path(spec["train_out"]), [
                f"data.root={spec['kaggle']}", "data.num_workers=0", "model=tiny",
                "model.backbone=tiny", "trainer.accelerator=cpu",
                "logger=none", "trainer.max_epochs=1", "data.batch_size=4",
                "data.val_fraction=0.25", "data.test_fraction=0.25"])
            _, metrics = train(cfg)
            result["train_model"] = metrics.get("model")
        except BaseException:  # noqa: BLE001
            result["train_error"] = traceback.format_exc()
    Path(spec["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
