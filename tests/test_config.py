"""The configs describe each thing once: what a user composes is what the one file says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ser.config import CONFIG_DIR, register_resolvers
from ser.data.datamodule import RavdessDataModule
from ser.data.extra_test import extra_test_datamodule
from ser.data.ravdess import DEFAULT_ACTORS

MODELS = sorted(p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml") if p.stem != "base")


def _compose(name: str, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_inherits_the_neutral_base_and_states_its_own_backbone_and_lrs(model) -> None:
    own = yaml.safe_load((Path(CONFIG_DIR) / "model" / f"{model}.yaml").read_text())
    assert own["defaults"][0] == "base", f"conf/model/{model}.yaml must inherit base, not a model"
    assert {"backbone", "head_lr"} <= set(own) and "lr" in own["optimizer"]
    cfg = _compose("train", [f"model={model}"]).model
    assert not OmegaConf.missing_keys(cfg), f"model={model} leaves {OmegaConf.missing_keys(cfg)}"


def test_a_checkpoints_learning_rate_stays_with_that_checkpoint() -> None:
    base = yaml.safe_load((Path(CONFIG_DIR) / "model" / "base.yaml").read_text())
    assert base["backbone"] == base["head_lr"] == base["optimizer"]["lr"] == "???"
    default = _compose("train", ["model.head_lr=1e-3", "model.optimizer.lr=1e-5"]).model
    other = _compose("train", ["model=xlsr_300m"]).model
    assert (default.head_lr, default.optimizer.lr) == (1e-3, 1e-5)
    assert (other.head_lr, other.optimizer.lr) == (3e-4, 3e-5)


def test_ravdess_is_described_once_for_evaluation_and_for_the_demos_extra_test() -> None:
    evaluated = OmegaConf.to_container(
        _compose("evaluate", ["dataset=ravdess", "model_path=x"]).dataset)
    extra = _compose("train", ["experiment=demo", "extra_test.ravdess.root=/corpus/ravdess"])
    extra = OmegaConf.to_container(extra.extra_test.ravdess)
    assert evaluated["actors"] == list(DEFAULT_ACTORS)
    assert {**extra, "root": None} == {**evaluated, "root": None}
    module = extra_test_datamodule("ravdess", OmegaConf.create(extra), batch_size=16, num_workers=0)
    assert isinstance(module, RavdessDataModule)
    assert (module.root, module.actors, module.batch_size) == (
        Path("/corpus/ravdess"), list(DEFAULT_ACTORS), 16)


def test_an_extra_test_set_that_cannot_be_one_is_refused_by_name() -> None:
    for dataset, message in (("kaggle_test", "extra_test.kaggle: dataset 'kaggle_test'"),
                             ("indonesian", "extra_test.kaggle: dataset 'indonesian'")):
        node = _compose("evaluate", [f"dataset={dataset}", "model_path=x"]).dataset
        with pytest.raises(ValueError, match=message):
            extra_test_datamodule("kaggle", node, batch_size=8, num_workers=0)
    noisy = _compose("evaluate", ["dataset=ravdess", "model_path=x",
                                  "dataset.noise_snr_db=[10]"]).dataset
    with pytest.raises(ValueError, match="extra_test.ravdess.noise_snr_db"):
        extra_test_datamodule("ravdess", noisy, batch_size=8, num_workers=0)


def test_only_the_demo_writes_synthetic_corpora() -> None:
    assert "synthetic_data" not in _compose("train", [])
    demo = _compose("train", ["experiment=demo"])
    assert OmegaConf.to_container(demo)["synthetic_data"] == "${paths.data_dir}/demo"


def test_the_sweep_summary_is_a_training_callback_only() -> None:
    assert "sweep_summary" in _compose("train", []).hydra.callbacks
    assert "sweep_summary" not in _compose("evaluate", ["model_path=x"]).hydra.callbacks
