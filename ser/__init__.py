"""SER: speech emotion recognition with Wav2Vec2-family backbones."""

from ser.labels import ID2LABEL, LABEL2ID, LABELS

__version__ = "0.1.0"
__all__ = ["LABELS", "LABEL2ID", "ID2LABEL", "__version__"]
