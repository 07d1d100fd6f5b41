"""Train: ``python train.py [experiment=demo] [model=tiny] [trainer.max_epochs=6] ...``.

See conf/train.yaml for every option; the work happens in ser.training.train.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ser.config import CONFIG_DIR, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    from ser.training import train

    value, _ = train(cfg)
    return value


if __name__ == "__main__":
    main()
