"""A ModelCheckpoint whose best checkpoints hold the weights only and whose ``last.ckpt`` holds
everything needed to resume.

Why: the best checkpoint is for testing and export; AdamW's two moments make a full checkpoint
three times the weights (3.75 GB instead of 1.26 GB for the XLSR-large architecture), and a run
kept two. Resuming needs the optimizer state, which ``last.ckpt`` keeps. (With the backbone frozen
both hold the trainable parameters only: :meth:`ser.model.EmotionClassifier.on_save_checkpoint`.)
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class BestWeightsCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` with ``save_weights_only`` for the top-k files and not for last.ckpt."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("save_weights_only", True)
        super().__init__(*args, **kwargs)
        self._best_weights_only = self.save_weights_only

    def _is_last(self, filepath: str) -> bool:
        return Path(filepath).name.startswith(self.CHECKPOINT_NAME_LAST)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        self.save_weights_only = self._best_weights_only and not self._is_last(filepath)
        try:
            super()._save_checkpoint(trainer, filepath)
        finally:
            self.save_weights_only = self._best_weights_only
