"""The install itself: the CPU torch build and no CUDA packages (they are GBs we cannot use)."""

from __future__ import annotations

import os
from importlib import metadata

import pytest
import torch

# A GPU user installs a CUDA torch on purpose (README); CI and this project's machines must not.
cpu_install = pytest.mark.skipif(
    torch.version.cuda is not None and not os.environ.get("CI"),
    reason="CUDA build of torch installed on purpose (GPU install)",
)


@cpu_install
def test_no_nvidia_packages_installed():
    names = sorted(d.metadata["Name"] for d in metadata.distributions())
    assert not [n for n in names if n.lower().startswith("nvidia")], names


@cpu_install
def test_torch_is_the_cpu_build():
    assert torch.__version__.endswith("+cpu"), torch.__version__


def test_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts.get("ser") == "ser.cli:main"
