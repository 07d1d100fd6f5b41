"""``precision="auto"``: bf16 autocast or fp32, decided by a measurement on this machine.

Whether bf16 pays depends on the processor, not on the device type: on one 2-core Xeon with
AVX-512 BF16 (no AMX) bf16 matmuls ran at half the fp32 rate, on a Zen 4 at about twice it, and
a CPU without native bf16 emulates it. So the first load on a machine times a probe shaped like
the model's largest products (a Linear of 1024 -> 4096 on 128 frames, a quarter of what one
encoder layer of a large model does on ~5 s of audio), fp32 against bf16 autocast, alternating
round by round (at most :data:`PROBE_SECONDS` in all, so a busy or slow machine does not stall
the load), and picks bf16 only if it is at least :data:`BF16_MARGIN` times as fast. The answer is cached per processor
(name, CPU family and model, precision flags; torch version and thread count) in ``$SER_CACHE/precision.json`` (default
``~/.cache/ser``), so later loads cost nothing; delete the file to measure again.
``SER_PRECISION=fp32`` (or ``bf16``) makes ``auto`` take that precision without measuring.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from ser.cache import cache_dir

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
BF16_MARGIN = 1.15  # bf16 must beat fp32 by this factor: rounding costs accuracy, so not for 5 %
PROBE_SECONDS = 1.0  # the whole probe stops after this, with at least 3 rounds done
_PROBE_ROUNDS = 9
ENV_OVERRIDE = "SER_PRECISION"


def cache_file() -> Path:
    return cache_dir() / "precision.json"


def processor_name(device: torch.device) -> str:
    """The processor model: the GPU's name, or the CPU's ``model name`` in /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# CPU features that change which precision is fastest (native bf16 and int8 dot products).
_PRECISION_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni", "avx512f")


def _cpuinfo() -> str:
    return Path("/proc/cpuinfo").read_text()


def processor_identity(device: torch.device) -> str:
    """The processor's name plus what tells apart chips sold under one name.

    Virtual machines often report a bare "AMD EPYC": a Zen 3 (no native bf16) and a Zen 4 (bf16
    about twice fp32) then share a name, and a cached choice from one would be applied to the
    other. The CPU family, model and the precision-relevant flags are part of the identity.
    """
    name = processor_name(device)
    if device.type != "cpu":
        return name
    fields: dict[str, str] = {}
    try:
        for line in _cpuinfo().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("cpu family", "model", "flags") and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break  # the first processor is enough
    except OSError:
        return name
    flags = set(fields.get("flags", "").split())
    present = ",".join(f for f in _PRECISION_FLAGS if f in flags) or "none"
    return (f"{name} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')}; "
            f"{present})")


def _probe_key(device: torch.device) -> str:
    threads = torch.get_num_threads() if device.type == "cpu" else 0
    return (f"{device.type}|{processor_identity(device)}|torch {torch.__version__}"
            f"|threads {threads}")


def probe(device: torch.device) -> dict[str, float]:
    """Median seconds of the probe in fp32 and in bf16 autocast (rounds alternate, so a busy
    neighbour slows both alike)."""
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(1024, 4096).to(device).eval()
    frames = torch.randn(1, 128, 1024, generator=generator).to(device)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}

    def once(bf16: bool) -> float:
        context = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
        with torch.inference_mode(), context:
            start = time.perf_counter()
            layer(frames)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - start

    once(False), once(True)  # first-call allocations and kernel selection
    deadline = time.perf_counter() + PROBE_SECONDS
    for done in range(_PROBE_ROUNDS):
        if done >= 3 and time.perf_counter() > deadline:
            break
        times["fp32"].append(once(False))
        times["bf16"].append(once(True))
    return {name: statistics.median(values) for name, values in times.items()}


def measured_precision(device: torch.device) -> str:
    """``bf16`` or ``fp32`` for this processor: cached, else measured now (about a second)."""
    key = _probe_key(device)
    path = cache_file()
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    entry = cached.get(key)
    if isinstance(entry, dict) and entry.get("choice") in ("fp32", "bf16"):
        return str(entry["choice"])
    seconds = probe(device)
    ratio = seconds["fp32"] / seconds["bf16"]
    choice = "bf16" if ratio >= BF16_MARGIN else "fp32"
    log.info("precision probe on %s: bf16 autocast %.2fx the speed of fp32; using %s",
             processor_name(device), ratio, choice)
    cached[key] = {"choice": choice, "fp32_s": seconds["fp32"], "bf16_s": seconds["bf16"],
                   "bf16_speedup": ratio, "margin": BF16_MARGIN,
                   "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=2) + "\n")
        tmp.replace(path)
    except OSError as exc:  # a read-only home: measure again next time, say so once
        log.warning("cannot cache the precision probe in %s (%s)", path, exc)
    return choice


def auto_override() -> str | None:
    """``SER_PRECISION=fp32|bf16``: what ``auto`` means on this machine without measuring (for
    runs that must be bit-comparable across machines, and for the tests)."""
    value = os.environ.get(ENV_OVERRIDE, "").strip().lower()
    if not value:
        return None
    if value not in ("fp32", "bf16"):
        raise ValueError(f"{ENV_OVERRIDE}={value!r}: expected fp32 or bf16 (or unset, to measure)")
    return value


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (``auto`` measured, see the module docstring)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        precision = auto_override() or precision
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return None
    if device.type not in ("cpu", "cuda"):
        return None
    return torch.bfloat16 if measured_precision(device) == "bf16" else None
