"""Evaluate: ``python evaluate.py dataset=ravdess|indonesian|kaggle_test model_path=PATH ...``.

See conf/evaluate.yaml for every option; the work happens in ser.evaluation.run.evaluate.
Exit status 1 when dataset=kaggle_test has test files that could not be predicted, 2 when the
model cannot be loaded.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ser.config import CONFIG_DIR, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from ser.evaluation.run import evaluate
    from ser.inference.loading import ModelLoadError

    try:
        code = evaluate(cfg).exit_code
    except ModelLoadError as exc:  # one line naming the file and the reason, as ser predict
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        sys.exit(2)
    if code:
        sys.exit(code)  # hydra.main drops return values


if __name__ == "__main__":
    main()
