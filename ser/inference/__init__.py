"""Inference: predictions for files and arrays from any trained model path.

    from ser.inference import EmotionRecognizer

    recognizer = EmotionRecognizer.from_pretrained("outputs/run/model")   # or a .ckpt / .pth
    recognizer = EmotionRecognizer.from_pretrained("export_dir", runtime="onnx")  # ser export
    recognizer.predict("clip.wav")            # Prediction(label, confidence, probabilities, ...)
    for result in recognizer.predict_many(paths, batch_size=8, num_workers=1):
        print(result.source, result.prediction or result.error)

The original project's ``load_model`` and ``predict_emotion`` are kept (see
:mod:`ser.inference.legacy`).
"""

from __future__ import annotations

from ser.inference.legacy import load_model, predict_emotion
from ser.inference.loading import ModelLoadError, load_for_inference
from ser.inference.recognizer import EmotionRecognizer
from ser.inference.results import Prediction, Result, WindowPrediction
from ser.inference.windows import WindowPlan

__all__ = [
    "EmotionRecognizer",
    "ModelLoadError",
    "Prediction",
    "Result",
    "WindowPlan",
    "WindowPrediction",
    "load_for_inference",
    "load_model",
    "predict_emotion",
]
