"""EmotionRecognizer on the tiny backbone: model paths, batching, broken files, formats, windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from ser.audio import AudioError
from ser.backbones import default_feature_extractor, tiny_config
from ser.data.batching import collate_clips
from ser.inference import (
    EmotionRecognizer,
    ModelLoadError,
    WindowPlan,
    load_model,
    predict_emotion,
)
from ser.labels import LABELS
from ser.model import EmotionClassifier

RATE = 16000




def speechlike(seconds: float, rate: int = RATE, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Noise shaped by a slow envelope plus a pitched tone: enough to move a random model."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0 = rng.uniform(90, 250)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 6))
    wave = envelope * (0.3 * np.sin(2 * np.pi * f0 * t) + rng.normal(0, rng.uniform(0.02, 0.3), n))
    wave = (0.5 * wave / max(1e-6, np.abs(wave).max())).astype(np.float32)
    if channels > 1:
        wave = np.stack([wave * (1 - 0.1 * c) for c in range(channels)], axis=1)
    return wave


def sharpen(model) -> None:
    """Centre and scale a random classification head on pooled features of reference clips, so
    that different clips get clearly different labels (a random tiny model is near-uniform)."""
    pooled: list[torch.Tensor] = []
    hook = model.classifier.register_forward_hook(lambda m, args, out: pooled.append(args[0]))
    with torch.no_grad():
        for seed in range(16):
            clip = torch.from_numpy(speechlike(1.0, seed=100 + seed))[None]
            model.eval()(input_values=(clip - clip.mean()) / (clip.std() + 1e-7))
        hook.remove()
        features = torch.cat(pooled)
        weight = model.classifier.weight
        weight.mul_(2.0 / float(((features - features.mean(0)) @ weight.t()).std()))
        model.classifier.bias.copy_(-(features.mean(0) @ weight.t()))


def sharpened_classifier() -> EmotionClassifier:
    torch.manual_seed(0)
    module = EmotionClassifier("tiny", optimizer=partial(torch.optim.SGD, lr=0.0))
    sharpen(module.model)
    return module


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """The same weights as a Hugging Face folder, a Lightning .ckpt and bare state dicts."""
    root = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_CACHE", str(root / "cache"))
        module = sharpened_classifier()
        items = [{"input_values": speechlike(0.5, seed=i), "label": i % 6, "index": i,
                  "error": None} for i in range(2)]
        trainer = L.Trainer(max_epochs=1, limit_train_batches=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, accelerator="cpu")
        trainer.fit(module, DataLoader(items, batch_size=2, collate_fn=collate_clips))
        trainer.save_checkpoint(root / "last.ckpt")
        module.export(root / "hf")
        state = module.model.state_dict()
        torch.save(state, root / "emotion_model.pth")
        torch.save({f"module.{k}": v for k, v in state.items()}, root / "prefixed.pth")
    return {"folder": root / "hf", "ckpt": root / "last.ckpt",
            "pth": root / "emotion_model.pth", "prefixed": root / "prefixed.pth", "root": root}


@pytest.fixture(scope="module")
def recognizer(models) -> EmotionRecognizer:
    return EmotionRecognizer.from_pretrained(models["folder"])


def clips(count: int = 7) -> list[np.ndarray]:
    lengths = [0.6, 1.7, 1.1, 2.3, 0.9, 1.7, 1.4, 0.5, 2.0][:count]
    return [speechlike(s, seed=10 + i) for i, s in enumerate(lengths)]


# -- model paths ------------------------------------------------------------------------------


def test_the_three_kinds_of_model_path_give_identical_predictions(models, recognizer):
    audio = clips(4)
    reference = np.stack([list(recognizer.predict(a, RATE).probabilities.values())
                          for a in audio])
    assert len({LABELS.index(recognizer.predict(a, RATE).label) for a in audio}) > 1, \
        "the test clips should not all get the same label"
    for kind, kwargs in [("ckpt", {}), ("pth", {"backbone": str(models["folder"])}),
                         ("prefixed", {"backbone": str(models["folder"])})]:
        other = EmotionRecognizer.from_pretrained(models[kind], **kwargs)
        probs = np.stack([list(other.predict(a, RATE).probabilities.values()) for a in audio])
        np.testing.assert_allclose(probs, reference, atol=1e-6, err_msg=kind)


def test_checkpoint_of_a_hydra_run_loads_safely_and_pickled_code_is_refused(models, tmp_path):
    from omegaconf import OmegaConf

    checkpoint = torch.load(models["ckpt"], weights_only=False)
    checkpoint["hyper_parameters"]["class_weights"] = OmegaConf.create({"w": [1.0] * 6}).w
    torch.save(checkpoint, tmp_path / "hydra.ckpt")
    reference = EmotionRecognizer.from_pretrained(models["folder"]).predict(clips(1)[0], RATE)
    hydra = EmotionRecognizer.from_pretrained(tmp_path / "hydra.ckpt").predict(clips(1)[0], RATE)
    assert hydra.probabilities == pytest.approx(reference.probabilities, abs=1e-6)

    checkpoint["hyper_parameters"]["optimizer"] = partial(torch.optim.SGD, lr=0.1)
    torch.save(checkpoint, tmp_path / "code.ckpt")
    with pytest.raises(ModelLoadError, match="trust_checkpoint"):
        EmotionRecognizer.from_pretrained(tmp_path / "code.ckpt")
    trusted = EmotionRecognizer.from_pretrained(tmp_path / "code.ckpt", trust_checkpoint=True)
    assert trusted.predict(clips(1)[0], RATE).label == reference.label


def test_state_dict_that_does_not_fit_lists_the_keys(models, tmp_path):
    state = torch.load(models["pth"], weights_only=True)
    state.pop("classifier.bias")
    state["head.extra"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ModelLoadError) as info:
        EmotionRecognizer.from_pretrained(tmp_path / "bad.pth", backbone=str(models["folder"]))
    message = str(info.value)
    assert "classifier.bias" in message and "head.extra" in message
    assert "missing" in message and "unexpected" in message


def test_eight_label_head_is_refused_with_its_shapes(models, tmp_path):
    state = torch.load(models["pth"], weights_only=True)
    state["classifier.weight"] = torch.zeros(8, state["classifier.weight"].shape[1])
    state["classifier.bias"] = torch.zeros(8)
    torch.save(state, tmp_path / "eight.pth")
    with pytest.raises(ModelLoadError, match=r"classifier\.weight: file \(8,"):
        EmotionRecognizer.from_pretrained(tmp_path / "eight.pth", backbone=str(models["folder"]))


def test_bare_state_dict_offline_says_to_pass_a_backbone(models):
    with pytest.raises(ModelLoadError, match="backbone"):
        EmotionRecognizer.from_pretrained(models["pth"])  # default: the hub checkpoint, offline


def test_folder_with_other_labels_is_refused(tmp_path):
    from transformers import Wav2Vec2ForSequenceClassification

    config = tiny_config()
    config.num_labels = 8
    config.id2label = dict(enumerate("abcdefgh"))
    config.label2id = {v: k for k, v in config.id2label.items()}
    Wav2Vec2ForSequenceClassification(config).save_pretrained(tmp_path / "eight")
    with pytest.raises(ModelLoadError, match="not the six classes"):
        EmotionRecognizer.from_pretrained(tmp_path / "eight")


def test_missing_model_path_names_the_accepted_kinds(tmp_path):
    with pytest.raises(FileNotFoundError, match="Lightning .ckpt"):
        EmotionRecognizer.from_pretrained(tmp_path / "nothing-here")


def test_original_functions_keep_their_shapes(models, recognizer, tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, speechlike(1.3, seed=3), RATE)
    model, device = load_model(models["pth"], backbone=str(models["folder"]))
    assert device.type in ("cpu", "cuda") and not model.training
    label, probabilities = predict_emotion(model, recognizer.feature_extractor, path)
    assert probabilities.shape == (6,) and probabilities.dtype == np.float32
    assert abs(float(probabilities.sum()) - 1) < 1e-5 and label == LABELS[probabilities.argmax()]
    ours = recognizer.predict(path)
    assert ours.label == label
    np.testing.assert_allclose(list(ours.probabilities.values()), probabilities, atol=1e-4)


# -- batching ---------------------------------------------------------------------------------


def test_batched_results_equal_one_at_a_time(recognizer):
    audio = clips(7)
    single = [recognizer.predict(a, RATE) for a in audio]
    for workers in (0, 1):
        batched = list(recognizer.predict_many([(a, RATE) for a in audio], batch_size=4,
                                               num_workers=workers))
        assert [r.index for r in batched] == list(range(7))
        for one, many in zip(single, batched):
            assert many.prediction.label == one.label
            np.testing.assert_allclose(list(many.prediction.probabilities.values()),
                                       list(one.probabilities.values()), atol=1e-4)


def test_group_norm_backbone_batches_only_equal_lengths(tmp_path):
    """wav2vec2-base style encoders: padding changes results, so only equal lengths share a
    batch; the padded batch (what plain batching would do) really differs."""
    from transformers import Wav2Vec2ForSequenceClassification

    config = tiny_config()
    config.feat_extract_norm = "group"
    config.do_stable_layer_norm = False
    config.num_labels = 6
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {v: k for k, v in config.id2label.items()}
    torch.manual_seed(0)
    model = Wav2Vec2ForSequenceClassification(config)
    sharpen(model)
    model.save_pretrained(tmp_path / "group")
    default_feature_extractor(config).save_pretrained(tmp_path / "group")
    recognizer = EmotionRecognizer.from_pretrained(tmp_path / "group")
    assert not recognizer.uses_mask
    audio = clips(7)  # two clips share a length (1.7 s)
    single = np.stack([list(recognizer.predict(a, RATE).probabilities.values()) for a in audio])
    batched = np.stack([list(r.prediction.probabilities.values())
                        for r in recognizer.predict_many([(a, RATE) for a in audio],
                                                         batch_size=8)])
    np.testing.assert_allclose(batched, single, atol=1e-4)
    padded = collate_clips([{"input_values": a, "label": -1, "index": i, "error": None}
                            for i, a in enumerate(audio)])
    path = recognizer.forward  # the whole padded batch at once, as training runs it
    naive = path.probabilities(path.logits(padded["input_values"], padded["attention_mask"]))
    assert np.abs(naive.numpy() - single).max() > 1e-3


def test_predict_many_streams_without_decoding_everything_first(recognizer, monkeypatch):
    import ser.inference.stream as stream

    decoded: list[int] = []
    original = stream.decode_item

    def counting(item, index, **kwargs):
        decoded.append(index)
        return original(item, index, **kwargs)

    monkeypatch.setattr(stream, "decode_item", counting)
    items = [(speechlike(0.5, seed=i), RATE) for i in range(40)]
    results = recognizer.predict_many(items, batch_size=2, chunk_size=4)
    first = next(results)
    assert first.index == 0 and first.ok
    assert len(decoded) <= 8, f"{len(decoded)} of 40 items decoded before the first result"
    assert [r.index for r in results] == list(range(1, 40))


def test_int8_quantization_keeps_the_labels(models, recognizer):
    quantized = EmotionRecognizer.from_pretrained(models["folder"], quantize=True)
    for a in clips(5):
        ours, theirs = recognizer.predict(a, RATE), quantized.predict(a, RATE)
        assert ours.label == theirs.label
        assert abs(ours.confidence - theirs.confidence) < 0.1


# -- broken files and formats -----------------------------------------------------------------


def write_broken(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"empty": folder / "empty.wav", "not_audio": folder / "notes.wav",
             "truncated": folder / "cut.wav", "too_short": folder / "blip.wav",
             "non_finite": folder / "nan.wav", "missing": folder / "gone.wav"}
    files["empty"].write_bytes(b"")
    files["not_audio"].write_text("this is not audio\n")
    sf.write(folder / "whole.wav", speechlike(1.0), RATE)
    files["truncated"].write_bytes((folder / "whole.wav").read_bytes()[:30])
    (folder / "whole.wav").unlink()
    sf.write(files["too_short"], speechlike(0.01), RATE)
    bad = speechlike(1.0)
    bad[100] = np.nan
    sf.write(files["non_finite"], bad, RATE, subtype="FLOAT")
    return files


def test_each_broken_file_gets_its_error_and_the_rest_are_predicted(recognizer, tmp_path):
    broken = write_broken(tmp_path / "bad")
    good = []
    for i in range(4):
        good.append(tmp_path / f"good{i}.wav")
        sf.write(good[-1], speechlike(0.8 + 0.3 * i, seed=i), RATE)
    items = [good[0], *broken.values(), *good[1:]]
    results = list(recognizer.predict_many(items, batch_size=3, num_workers=1))
    assert [r.source for r in results] == [str(p) for p in items]
    by_source = {r.source: r for r in results}
    for path in good:
        assert by_source[str(path)].ok
    for kind, path in broken.items():
        result = by_source[str(path)]
        assert not result.ok and str(path) in result.error, kind
    assert "file not found" in by_source[str(broken["missing"])].error
    assert "empty" in by_source[str(broken["empty"])].error
    assert "too short" in by_source[str(broken["too_short"])].error
    assert "NaN" in by_source[str(broken["non_finite"])].error
    with pytest.raises(AudioError, match="not an audio file"):
        recognizer.predict(broken["not_audio"])


@pytest.mark.parametrize("fmt,subtype,ext,rate,channels", [
    ("WAV", "PCM_16", "wav", 8000, 1),
    ("WAV", "PCM_24", "wav", 48000, 2),
    ("FLAC", "PCM_24", "flac", 22050, 6),
    ("OGG", "VORBIS", "ogg", 44100, 2),
    ("MP3", "MPEG_LAYER_III", "mp3", 32000, 1),
])
def test_formats_rates_and_channels(recognizer, tmp_path, fmt, subtype, ext, rate, channels):
    audio = speechlike(1.5, rate=rate, seed=4, channels=channels)
    path = tmp_path / f"clip.{ext}"
    sf.write(path, audio, rate, format=fmt, subtype=subtype)
    [result] = recognizer.predict_many([path])
    assert result.ok, result.error
    assert abs(result.prediction.duration - 1.5) < 0.1
    # The file gives what its decoded samples give as an array (channels mixed, resampled alike).
    decoded, decoded_rate = sf.read(path, dtype="float32", always_2d=True)
    from_array = recognizer.predict(decoded, decoded_rate)
    assert from_array.label == result.prediction.label
    np.testing.assert_allclose(list(result.prediction.probabilities.values()),
                               list(from_array.probabilities.values()), atol=1e-4)


# -- long recordings --------------------------------------------------------------------------


def test_window_plan_covers_the_recording():
    plan = WindowPlan(window=4.0, hop=2.0, threshold=20.0)
    assert plan.starts(25.0) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 21.0]
    assert plan.starts(24.0)[-1] == 20.0 and plan.starts(3.0) == [0.0]
    assert not plan.is_long(20.0) and plan.is_long(20.5)
    with pytest.raises(ValueError):
        WindowPlan(window=4.0, hop=5.0)
    with pytest.raises(ValueError):
        WindowPlan(window=30.0, threshold=20.0)


def test_long_recording_gets_windows_that_cover_it(recognizer, tmp_path):
    rate = 48000
    audio = np.concatenate([speechlike(6.0, rate, seed=s) for s in range(4)])[: int(23.3 * rate)]
    path = tmp_path / "long.flac"
    sf.write(path, audio, rate, subtype="PCM_24")
    prediction = recognizer.predict(path)
    windows = prediction.windows
    assert windows[0].start == 0.0 and windows[-1].end == pytest.approx(23.3, abs=1e-3)
    for before, after in zip(windows, windows[1:]):
        assert after.start <= before.end  # no gaps
    assert all(w.end - w.start == pytest.approx(4.0, abs=1e-3) for w in windows)
    mean = np.mean([list(w.probabilities.values()) for w in windows], axis=0)
    np.testing.assert_allclose(list(prediction.probabilities.values()), mean, atol=1e-6)
    assert prediction.label == LABELS[int(mean.argmax())]
    # The same recording in memory gives the same windows and (up to resampling) the same result.
    in_memory = recognizer.predict(audio, rate)
    assert [w.start for w in in_memory.windows] == [w.start for w in windows]
    [streamed] = recognizer.predict_many([path])
    assert len(streamed.prediction.windows) == len(windows)
    assert streamed.prediction.label == prediction.label
    short = recognizer.predict(audio[: 10 * rate], rate)
    assert short.windows == ()


RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from ser.inference import EmotionRecognizer
    recognizer = EmotionRecognizer.from_pretrained(sys.argv[1], threads=1)
    recognizer.predict(sys.argv[2])  # warm-up on a short file: allocator and model buffers
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prediction = recognizer.predict(sys.argv[3])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after,
                      "windows": len(prediction.windows)}))
""")


def write_long(path: Path, minutes: float, rate: int = 48000) -> None:
    """A long stereo recording written block by block (the test itself stays small)."""
    block = speechlike(10.0, rate, seed=1, channels=2)
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        for _ in range(int(minutes * 6)):
            out.write(block)


@pytest.mark.slow
def test_long_recording_memory_is_bounded(models, tmp_path):
    """Peak RSS for 10 minutes stays under 2x that of 1 minute (decoding it whole would add
    ~460 MB: 230 MB of 48 kHz stereo float32 plus its mono mix and resampled copy)."""
    short = tmp_path / "short.wav"
    sf.write(short, speechlike(2.0), RATE)
    peaks = {}
    for minutes in (1, 10):
        path = tmp_path / f"{minutes}min.wav"
        write_long(path, minutes)
        out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(models["folder"]), str(short),
                              str(path)], capture_output=True, text=True, check=True,
                             env={**os.environ, "SER_CACHE": str(tmp_path)})
        peaks[minutes] = json.loads(out.stdout.strip().splitlines()[-1])
        path.unlink()
    assert peaks[10]["windows"] == 299 and peaks[1]["windows"] == 29
    assert peaks[10]["after_kb"] < 2 * peaks[1]["after_kb"]
    growth_mb = (peaks[10]["after_kb"] - peaks[1]["after_kb"]) / 1024
    assert growth_mb < 100, f"10 minutes took {growth_mb:.0f} MB more than 1 minute"


# -- compatibility with transformers ----------------------------------------------------------


def test_transformers_pipeline_gives_the_same_top_label(models, recognizer):
    from transformers import pipeline

    classify = pipeline("audio-classification", model=str(models["folder"]), device="cpu")
    for a in clips(4):
        theirs = classify(a, top_k=6)
        ours = recognizer.predict(a, RATE)
        assert theirs[0]["label"] == ours.label
        assert theirs[0]["score"] == pytest.approx(ours.confidence, abs=1e-4)
