"""The int8 ONNX model (``model.int8.onnx``): which layers run in int8, and how.

* **MatMuls** (the Linear layers: ~all of the transformer's FLOPs): ONNX Runtime's *dynamic*
  quantization, weights QInt8, activations quantized per call. Nothing to calibrate.
* **Convolutions** of the feature encoder and the positional embedding: *static* quantization
  (``QLinearConv``: activations QUInt8 with ranges measured on calibration clips, weights QInt8
  per output channel). At the XLSR-large size the convolutions were 27 % of the int8 model's
  time in fp32; static int8 made the whole model 1.35x faster (``bench/BENCHMARKS.md``, issue
  17). Dynamic int8 convolutions (``ConvInteger``) were *slower* than fp32 (0.62x): quantizing
  the large conv activations on every call costs more than it saves.
* Only for **layer-norm feature encoders** (``feat_extract_norm="layer"``: XLSR, the large
  models, the default architecture, the tiny one). A group-norm encoder (wav2vec2-base) keeps its
  convolutions fp32: there static int8 moved a random base-size model's logits by 34 % of their
  range and changed a parity label (0.065 of 0.19), against 8 % at the large layer-norm size.
* The **first convolution**, which reads the raw waveform (one input channel), stays fp32: 8-bit
  audio would throw away ~48 dB of the signal's range, and with it quantized the logits moved
  six times as far from fp32 as with it kept; it is ~1 % of the time.
* Weights keep all **8 bits**, not ``reduce_range``'s 7, although x86 CPUs without VNNI (AVX2
  and plain AVX-512: Zen 1-3, Haswell to Skylake) add each pair of u8 x s8 products into int16
  *with saturation*. Measured by ``bench/int8_without_vnni.py`` (the same wheels under qemu-user
  as a Zen 3, whose kernels do saturate): the demo's trained model agreed with fp32 on 1,430 of
  1,440 RAVDESS clips without VNNI against 1,432 with it, and the XLSR-large architecture's
  logits moved about as far with saturation as without; 7-bit weights cost 0.2 points of
  agreement on every CPU (``bench/BENCHMARKS.md``).

The calibration clips decide the static ranges, so they must be real audio like the model's:
training's export (:mod:`ser.inference.auto_export`) calibrates on validation clips, ``ser export
--int8`` on the recordings given with ``--calibrate``; without any, the convolutions stay fp32.
(Ranges measured on seeded speech-like clips instead cost the demo's trained model 2.1 points of
top-label agreement with fp32 on 1,440 RAVDESS clips: 97.3 % against 99.4 % with 16 of its
training corpus's clips.) ``onnx_export.json`` says which. Whether int8 may be used is judged
afterwards by label agreement with fp32 (the export's parity check, and training's check on
validation clips).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_CLIPS = 16  # at most; one at a time (batch 1)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization advises a pre-processing pass on the root logger, always."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def fp32_convs(model_file: Path) -> dict[str, str]:
    """Conv nodes that stay fp32, with why: the one reading the raw waveform (one input
    channel), and any whose weight or bias is computed in the graph rather than stored (static
    quantization needs them as constants)."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    kept: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = shapes.get(node.input[1])
        if any(name and name not in shapes for name in node.input[1:]):
            kept[node.name] = "weight or bias computed in the graph"
        elif weight is not None and len(weight) >= 2 and weight[1] == 1 and group == 1:
            kept[node.name] = "reads the raw waveform"
    return kept


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over prepared model inputs."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_int8(source: Path, target: Path,
                  calibration: Sequence[dict[str, np.ndarray]] | None,
                  why_fp32_convs: str = "") -> dict[str, Any]:
    """Write the int8 model of the fp32 ``source`` to ``target`` (see the module docstring);
    ``calibration``: model inputs (``input_values`` and, if the model takes one,
    ``attention_mask``), one clip each, or None to keep every convolution fp32 (for the reason
    ``why_fp32_convs``, recorded). Returns what was quantized how."""
    from onnxruntime.quantization import (QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    options = {"DefaultTensorType": 1}  # float, where shape inference leaves a type open
    record: dict[str, Any] = {"matmul": "dynamic (weights QInt8, activations per call)"}
    with _quiet_root_logger(), tempfile.TemporaryDirectory(dir=target.parent,
                                                           prefix=".int8-") as tmp:
        matmul_source = source
        if calibration:
            kept_fp32 = fp32_convs(source)
            matmul_source = Path(tmp) / "convs.onnx"
            quantize_static(str(source), str(matmul_source), _Feeds(calibration),
                            quant_format=QuantFormat.QOperator, op_types_to_quantize=["Conv"],
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=True, nodes_to_exclude=list(kept_fp32),
                            extra_options=options)
            record["conv"] = (f"static QLinearConv (QUInt8 activations, QInt8 weights per "
                              f"channel), calibrated on {len(calibration)} clip(s)")
            record["fp32"] = kept_fp32
        else:
            record["conv"] = f"fp32: {why_fp32_convs}" if why_fp32_convs else "fp32"
        quantize_dynamic(str(matmul_source), str(target), op_types_to_quantize=["MatMul"],
                         weight_type=QuantType.QInt8, extra_options=options)
    return record


__all__ = ["CALIBRATION_CLIPS", "fp32_convs", "quantize_int8"]
