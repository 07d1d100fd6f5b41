"""``ser export``: the command's messages and exit codes around :func:`ser.inference.export.
export_onnx`."""

from __future__ import annotations

import sys

import numpy as np

from ser.inference.auto_export import decode_clips
from ser.inference.export import DEFAULT_EXPORTER, ExportError, export_onnx
from ser.inference.files import expand_inputs
from ser.inference.loading import ModelLoadError
from ser.inference.onnx_int8 import CALIBRATION_CLIPS


def calibration_clips(source: str) -> list[np.ndarray]:
    """Up to :data:`CALIBRATION_CLIPS` decoded clips of the audio files under ``source`` (a
    folder, file or glob), spread evenly over the sorted list (a corpus sorted by name is often
    sorted by speaker or emotion: its first files would cover one); unreadable files are passed
    over, trying at most four times as many files."""
    files = expand_inputs([source]).files
    n = min(len(files), CALIBRATION_CLIPS)
    spread = [files[i * len(files) // n] for i in range(n)]
    chosen = set(spread)
    decoded = []
    for file in (spread + [f for f in files if f not in chosen])[:4 * CALIBRATION_CLIPS]:
        clip = decode_clips([file])[0]
        if clip is not None:
            decoded.append(clip[0])
        if len(decoded) == CALIBRATION_CLIPS:
            break
    return decoded


def run_export(model: str, onnx_out: str, *, int8: bool = False, backbone: str | None = None,
               trust_checkpoint: bool = False, exporter: str = DEFAULT_EXPORTER,
               calibrate: str | None = None) -> int:
    """Everything ``ser export`` does; 0 done, 1 parity failed or cannot export, 2 no model or
    no calibration audio."""
    calibration, source = None, ""
    if calibrate is not None:
        if not int8:
            print("error: --calibrate sets the ranges of the int8 model: give --int8 too",
                  file=sys.stderr)
            return 2
        calibration = calibration_clips(calibrate)
        if not calibration:
            print(f"error: --calibrate {calibrate}: no readable audio file there",
                  file=sys.stderr)
            return 2
        source = f"{len(calibration)} clip(s) of {calibrate}"
    try:
        result = export_onnx(model, onnx_out, int8=int8, backbone=backbone,
                             trust_checkpoint=trust_checkpoint, exporter=exporter,
                             calibration=calibration, calibration_source=source)
    except (ModelLoadError, FileNotFoundError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, check in result.parity.items():
        print(f"parity {name}: max |logit difference| vs PyTorch fp32 "
              f"{check['max_logit_diff']:.2e} (largest |logit| {check['max_abs_logit']:.2f}), "
              f"top labels agree {check['labels_agree']}, clips of "
              f"{', '.join(f'{s:g}' for s in check['clip_seconds'])} s one at a time"
              + (" and as one padded batch" if check["checks"] > len(check["clip_seconds"])
                 else ""))
    if result.int8 is not None:
        print(f"int8: MatMuls {result.int8['matmul']}; convolutions {result.int8['conv']}")
    for precision, file in result.files.items():
        print(f"onnx {precision}: {file}")
    print(f"model folder: {result.folder} (ser predict --model {result.folder} uses ONNX Runtime)")
    return 0


__all__ = ["calibration_clips", "run_export"]
