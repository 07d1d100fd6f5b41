"""One cache folder: ``$SER_CACHE`` (default ``~/.cache/ser``) holds every cache ser writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.audit.cache import FingerprintCache
from ser.backbones import tiny_backbone_dir
from ser.cache import cache_dir
from ser.history.store import default_store_url
from ser.inference.precision import cache_file


def test_every_cache_lives_under_ser_cache(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("SER_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cache"
    assert cache_dir() == root
    assert tiny_backbone_dir().parent == root
    assert FingerprintCache().root == root / "fingerprints"
    assert cache_file() == root / "precision.json"
    assert default_store_url() == f"sqlite:///{root.resolve() / 'history.db'}"


def test_cache_folder_defaults_to_the_home_cache(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.delenv("SER_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "ser"
    assert cache_file() == tmp_path / ".cache" / "ser" / "precision.json"
