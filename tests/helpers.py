"""Test-only pieces that Hydra must import by name (``_target_: helpers.X``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ser.config import CONFIG_DIR, register_resolvers


class InterruptAfterEpochs(L.Callback):
    """Stops fitting after ``epochs`` epochs, as a crash or a pre-empted job would."""

    def __init__(self, epochs: int = 1) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class KillAfterEpochs(L.Callback):
    """SIGKILLs its own process as epoch ``epochs`` (0-based) starts, i.e. once ``epochs``
    epochs and their checkpoints are done (as ``kill -9`` or an out-of-memory kill would)."""

    def __init__(self, epochs: int = 1) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch >= self.epochs:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


def compose_config(name: str, out_dir: Path, overrides: list[str]) -> DictConfig:
    """The real config, composed as the entry point would, with every output under ``out_dir``."""
    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(out_dir)
        cfg.paths.output_dir = str(out_dir / "run")
        del cfg["hydra"]  # hydra.main does not pass it to the task either
    return cfg
