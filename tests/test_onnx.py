"""ONNX export (`ser export --onnx`), the ONNX Runtime backend, and the measured precision."""

from __future__ import annotations

import builtins
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from ser.cli import main
from ser.data.batching import collate_clips
from ser.inference import EmotionRecognizer, ModelLoadError
from ser.inference import precision as precision_module
from ser.inference.onnx_runtime import OnnxRuntime
from ser.inference.runtime import TorchRuntime
from ser.labels import LABELS

from test_inference import clips, sharpened_classifier, speechlike, write_broken

pytest.importorskip("onnxruntime")

RATE = 16000
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """A sharpened tiny model folder, and its ONNX export (fp32 and int8) by `ser export`."""
    root = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_CACHE", str(root / "cache"))
        folder = sharpened_classifier().export(root / "model")
    code = main(["export", "--model", str(folder), "--onnx", str(root / "onnx"), "--int8"])
    assert code == 0
    return {"model": folder, "onnx": root / "onnx", "root": root}


def without_onnxruntime(monkeypatch) -> None:
    """Make `import onnxruntime` fail, as on an install without the onnx extra."""
    real_import = builtins.__import__

    def guarded(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", guarded)


# -- export -----------------------------------------------------------------------------------


def test_export_writes_a_model_folder_with_its_parity_check(exported, capsys):
    onnx = exported["onnx"]
    assert {p.name for p in onnx.iterdir()} >= {
        "model.onnx", "model.int8.onnx", "config.json", "preprocessor_config.json",
        "onnx_export.json"}
    record = json.loads((onnx / "onnx_export.json").read_text())
    assert record["source"] == str(exported["model"])
    assert record["inputs"] == ["input_values", "attention_mask"]
    fp32, int8 = record["parity"]["model.onnx"], record["parity"]["model.int8.onnx"]
    assert fp32["max_logit_diff"] <= 1e-4 and fp32["labels_agree_all"]
    assert int8["labels_agree"].endswith("/6") and int8["max_logit_diff"] > 0
    assert fp32["checks"] == 6  # three clips one at a time, then as one padded batch
    config = json.loads((onnx / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(6)] == list(LABELS)


def test_export_prints_the_parity_and_refuses_a_file_name(exported, tmp_path, capsys):
    code = main(["export", "--model", str(exported["model"]), "--onnx", str(tmp_path / "m")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "parity model.onnx: max |logit difference| vs PyTorch fp32" in printed
    assert not (tmp_path / "m" / "model.int8.onnx").exists()
    code = main(["export", "--model", str(exported["model"]), "--onnx", str(tmp_path / "x.onnx")])
    assert code == 1 and "takes a folder" in capsys.readouterr().err


def test_export_runs_eager_attention_and_leaves_the_model_as_it_was(exported, tmp_path):
    """The graph has plain attention (no NaN guard over every attention matrix, the SDPA
    export's: 9 % of ONNX Runtime's time at the real size), and the model is unchanged."""
    import onnx

    from ser.inference.export import export_graph
    from ser.inference.loading import load_for_inference

    ops = {n.op_type for n in onnx.load(exported["onnx"] / "model.onnx").graph.node}
    assert "Softmax" in ops and "IsNaN" not in ops
    model = load_for_inference(exported["model"]).model
    before = model.config._attn_implementation
    export_graph(model, tmp_path / "again.onnx")
    assert model.config._attn_implementation == before


def test_calibration_clips_are_spread_over_a_sorted_corpus(tmp_path):
    """A corpus sorted by name is sorted by speaker or emotion: the calibration clips come from
    all of it, not its first 16 files; an unreadable file is passed over."""
    from ser.inference.export_command import calibration_clips

    for k in range(40):  # file k is 1 s + k ms long, so a clip's length tells its file
        sf.write(tmp_path / f"{k:02d}.wav", speechlike(1 + k / 1000, seed=k), RATE)
    (tmp_path / "00.wav").write_bytes(b"not audio")
    files = [round((c.size / RATE - 1) * 1000) for c in calibration_clips(str(tmp_path))]
    assert len(files) == 16 and 0 not in files
    assert files[:15] == [i * 40 // 16 for i in range(1, 16)] and files[-1] == 1


def test_int8_convolutions_are_calibrated_on_the_audio_given(exported, tmp_path, capsys):
    """Without recordings to measure ranges on, the int8 file keeps its convolutions fp32 and
    says why; `--calibrate` runs them as QLinearConv (except the one reading the raw waveform),
    their ranges measured on the user's recordings, and the record says so."""
    import onnx

    record = json.loads((exported["onnx"] / "onnx_export.json").read_text())
    assert "calibration" not in record["int8"]
    assert record["int8"]["conv"].startswith("fp32: no calibration audio")
    ops = [n.op_type for n in onnx.load(exported["onnx"] / "model.int8.onnx").graph.node]
    assert "QLinearConv" not in ops and "Conv" in ops and "MatMulInteger" in ops

    audio = tmp_path / "audio"
    audio.mkdir()
    for i, seconds in enumerate((1.3, 2.2)):
        sf.write(audio / f"take{i}.wav", speechlike(seconds, seed=i), RATE)
    (audio / "broken.wav").write_bytes(b"not audio")
    out = tmp_path / "calibrated"
    args = ["export", "--model", str(exported["model"]), "--onnx", str(out), "--int8"]
    assert main(args + ["--calibrate", str(audio)]) == 0
    assert "int8: MatMuls dynamic" in capsys.readouterr().out
    record = json.loads((out / "onnx_export.json").read_text())
    assert record["int8"]["calibration"] == f"2 clip(s) of {audio}"
    ops = [n for n in onnx.load(out / "model.int8.onnx").graph.node]
    assert sum(n.op_type == "QLinearConv" for n in ops) >= 3
    assert [n.name for n in ops if n.op_type == "Conv"] == list(record["int8"]["fp32"])
    assert "reads the raw waveform" in record["int8"]["fp32"].values()
    assert record["parity"]["model.int8.onnx"]["labels_agree_all"]
    capsys.readouterr()
    assert main(args[:-1] + ["--calibrate", str(audio)]) == 2
    assert "give --int8 too" in capsys.readouterr().err
    assert main(args + ["--calibrate", str(tmp_path / "nothing")]) == 2
    assert "no readable audio" in capsys.readouterr().err


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_model(exported, tmp_path):
    """torch.export-based export (opset 18) of the tiny model: same parity, dynamic axes."""
    from ser.inference.export import export_onnx

    result = export_onnx(exported["model"], tmp_path / "dynamo", exporter="dynamo")
    assert result.parity["model.onnx"]["max_logit_diff"] <= 1e-4
    record = json.loads((tmp_path / "dynamo" / "onnx_export.json").read_text())
    assert record["exporter"] == "dynamo" and record["opset"] == 18
    recognizer = EmotionRecognizer.from_pretrained(tmp_path / "dynamo")
    reference = EmotionRecognizer.from_pretrained(exported["model"], precision="fp32")
    audio = clips(4)
    assert np.abs(recognizer.probabilities(audio) - reference.probabilities(audio)).max() < 1e-4


@pytest.mark.slow
def test_export_parity_of_a_base_size_group_norm_model(tmp_path):
    """wav2vec2-base sizes with its group-norm encoder (no attention mask input), random
    weights: fp32 within 1e-4 of PyTorch at several lengths, int8 keeps the labels."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    from ser.backbones import default_feature_extractor
    from ser.inference.export import export_onnx
    from ser.labels import ID2LABEL, LABEL2ID

    config = Wav2Vec2Config(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=3072, feat_extract_norm="group",
                            do_stable_layer_norm=False, num_labels=6, id2label=dict(ID2LABEL),
                            label2id=dict(LABEL2ID))
    torch.manual_seed(0)
    model = Wav2Vec2ForSequenceClassification(config)
    model.save_pretrained(tmp_path / "base")
    default_feature_extractor(config).save_pretrained(tmp_path / "base")
    result = export_onnx(tmp_path / "base", tmp_path / "onnx", int8=True)
    record = json.loads((tmp_path / "onnx" / "onnx_export.json").read_text())
    assert record["inputs"] == ["input_values"]
    assert record["int8"]["conv"].startswith("fp32: a group-norm feature encoder")
    assert result.parity["model.onnx"]["max_logit_diff"] <= 1e-4
    assert result.parity["model.int8.onnx"]["labels_agree_all"]
    recognizer = EmotionRecognizer.from_pretrained(tmp_path / "onnx", runtime="onnx",
                                                   precision="fp32")
    reference = EmotionRecognizer.from_pretrained(tmp_path / "base", runtime="torch")
    audio = [speechlike(s, seed=i) for i, s in enumerate((0.9, 1.6, 1.6))]
    assert np.abs(recognizer.probabilities(audio) - reference.probabilities(audio)).max() < 1e-4


# -- the backend ------------------------------------------------------------------------------


def test_auto_runtime_takes_the_onnx_file_and_says_so(exported, caplog):
    with caplog.at_level(logging.INFO, logger="ser.inference.recognizer"):
        auto = EmotionRecognizer.from_pretrained(exported["onnx"])
    assert auto.runtime.name == "onnx" and auto.runtime.file.name == "model.int8.onnx"
    assert "ONNX Runtime" in caplog.text and "model.int8.onnx" in caplog.text
    fp32 = EmotionRecognizer.from_pretrained(exported["onnx"], precision="fp32")
    assert fp32.runtime.file.name == "model.onnx"
    assert EmotionRecognizer.from_pretrained(exported["model"]).runtime.name == "torch"
    assert fp32.config.id2label[0] == LABELS[0]
    with pytest.raises(AttributeError, match="no PyTorch model"):
        fp32.model  # noqa: B018
    with pytest.raises(ModelLoadError, match="bf16"):
        EmotionRecognizer.from_pretrained(exported["onnx"], precision="bf16")
    with pytest.raises(ModelLoadError, match="ser export"):
        EmotionRecognizer.from_pretrained(exported["model"], runtime="onnx")


def test_int8_onnx_keeps_the_labels_of_pytorch_fp32(exported):
    """On clips the sharpened model tells apart (the parity clips of the export may sit between
    two close classes, where int8 can swap them: that is reported, not hidden)."""
    int8 = EmotionRecognizer.from_pretrained(exported["onnx"])
    reference = EmotionRecognizer.from_pretrained(exported["model"], precision="fp32")
    assert int8.quantized
    for audio in clips(5):
        ours, theirs = int8.predict(audio, RATE), reference.predict(audio, RATE)
        assert ours.label == theirs.label
        assert abs(ours.confidence - theirs.confidence) < 0.1


def test_a_padded_batch_gives_each_clip_its_logits_alone(exported):
    """The ONNX runtime runs a batch's clips side by side, each cut to its own length (faster
    on the CPU, bench/BENCHMARKS.md): the logits of a padded batch are those of each clip alone,
    in input order, with two clips at once as with one."""
    recognizer = EmotionRecognizer.from_pretrained(exported["onnx"], precision="fp32")
    path = recognizer.forward
    audio = clips(5)
    batch = collate_clips([{"input_values": a, "label": -1, "index": i, "error": None}
                           for i, a in enumerate(audio)])
    inputs = path.inputs(batch["input_values"], batch["attention_mask"])
    one, two, both_cores = (OnnxRuntime(recognizer.runtime.file, recognizer.config,
                                        threads=n, clips_at_once=c)
                            for n, c in ((1, None), (2, None), (2, 1)))
    assert (one.clips_at_once, two.clips_at_once, both_cores.clips_at_once) == (1, 2, 1)
    assert "1 clip(s) at once, 2 thread(s) each" in both_cores.description
    many_cores = OnnxRuntime(recognizer.runtime.file, recognizer.config, threads=16)
    assert "8 clip(s) at once, 2 thread(s) each" in many_cores.description  # a batch's 8 clips
    with pytest.raises(ValueError, match="at least 1"):
        OnnxRuntime(recognizer.runtime.file, recognizer.config, threads=2, clips_at_once=0)
    alone = torch.cat([one.logits(path.inputs(torch.from_numpy(a)[None],
                                              torch.ones(1, a.size, dtype=torch.long)))
                       for a in audio])
    for runtime in (one, two, both_cores):
        torch.testing.assert_close(runtime.logits(inputs), alone, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="ONNX runtime"):
        EmotionRecognizer.from_pretrained(exported["model"], runtime="torch", clips_at_once=2)
    assert len({int(row.argmax()) for row in alone}) > 1  # the rows are not all one answer


def corpus(folder: Path) -> list[Path]:
    """Good clips of several lengths (one long enough for windows at long_threshold=2) and the
    broken files of test_inference, interleaved."""
    folder.mkdir(parents=True, exist_ok=True)
    good = []
    for i, seconds in enumerate((0.7, 1.3, 1.3, 0.9, 5.5, 1.8)):
        good.append(folder / f"good{i}.wav")
        sf.write(good[-1], speechlike(seconds, seed=20 + i), RATE)
    broken = list(write_broken(folder / "bad").values())
    return [good[0], *broken[:3], *good[1:4], *broken[3:], *good[4:]]


def test_onnx_predictions_have_the_rows_of_pytorch(exported, tmp_path, capsys, caplog):
    """Same folder of good and broken files through `ser predict` on both runtimes: the same
    rows, errors and labels, probabilities within 1e-4, long files cut into the same windows.
    `--model DIR/model.onnx` picks the fp32 file of an export that has int8 too."""
    files = corpus(tmp_path / "clips")
    args = [*map(str, files), "--batch-size", "3", "--workers", "0", "--long-threshold", "2",
            "--window", "1", "--hop", "0.5"]
    assert main(["predict", "--model", str(exported["model"]), "--runtime", "torch", *args,
                 "--out", str(tmp_path / "torch.json")]) == 1
    model = exported["onnx"] / "model.onnx"
    caplog.set_level(logging.INFO, logger="ser.inference.recognizer")
    assert main(["predict", "--model", str(model), *args, "--out", str(tmp_path / "onnx.csv")]
                ) == 1
    assert "ONNX Runtime" in caplog.text and "model.onnx (" in caplog.text
    assert main(["predict", "--model", str(model), "--runtime", "onnx", *args,
                 "--out", str(tmp_path / "onnx.json")]) == 1
    capsys.readouterr()
    ours = json.loads((tmp_path / "onnx.json").read_text())["files"]
    theirs = json.loads((tmp_path / "torch.json").read_text())["files"]
    assert [r["path"] for r in ours] == [r["path"] for r in theirs] == list(map(str, files))
    for a, b in zip(ours, theirs):
        assert a["error"] == b["error"]
        assert a["pred"] == b["pred"], a["path"]
        if a["pred"]:
            probs = [[r[f"p_{label}"] for label in LABELS] for r in (a, b)]
            assert np.abs(np.subtract(*probs)).max() < 1e-4
            assert len(a["windows"]) == len(b["windows"])
    assert sum(1 for r in ours if r["windows"]) == 1
    assert sum(1 for r in ours if r["error"]) == 6
    table = pd.read_csv(tmp_path / "onnx.csv", keep_default_na=False)
    assert list(table["path"]) == list(map(str, files))
    assert list(table["pred"]) == [r["pred"] for r in theirs]


def test_runtime_onnx_without_onnxruntime_is_a_clear_error(exported, monkeypatch, capsys, caplog):
    without_onnxruntime(monkeypatch)
    code = main(["predict", "--model", str(exported["onnx"]), "--runtime", "onnx",
                 str(exported["root"] / "none.wav")])
    err = capsys.readouterr().err
    assert code == 2
    assert "onnxruntime, which is not installed" in err and "pip install 'ser[onnx]'" in err
    # auto on a folder with only the ONNX files: the same error, nothing to fall back on
    with pytest.raises(ModelLoadError, match="holds only an ONNX model"):
        EmotionRecognizer.from_pretrained(exported["onnx"])
    # auto on a folder with PyTorch weights too: PyTorch, and a warning that says why
    both = exported["root"] / "both"
    if not both.exists():
        both.mkdir()
        for f in [*exported["model"].iterdir(), exported["onnx"] / "model.onnx"]:
            (both / f.name).write_bytes(f.read_bytes())
    with caplog.at_level(logging.WARNING):
        recognizer = EmotionRecognizer.from_pretrained(both)
    assert recognizer.runtime.name == "torch" and "onnxruntime is not installed" in caplog.text
    code = main(["export", "--model", str(exported["model"]), "--onnx",
                 str(exported["root"] / "never")])
    assert code == 1 and "pip install 'ser[onnx]'" in capsys.readouterr().err


def test_serve_runs_the_onnx_runtime(exported, capsys):
    from fastapi.testclient import TestClient

    from ser.serve import create_app

    clip = speechlike(1.2, seed=3)
    buffer = exported["root"] / "serve.wav"
    sf.write(buffer, clip, RATE)
    reference = EmotionRecognizer.from_pretrained(exported["onnx"]).predict(buffer)
    app = create_app(exported["onnx"], recognizer_options={"runtime": "onnx", "threads": 2})
    try:
        with TestClient(app) as client:
            state = client.app.state
            assert state.recognizer.runtime.name == "onnx"
            # one clip per core: two uploads' forward passes run at once, not one after another
            assert state.model_gate.capacity == state.recognizer.runtime.clips_at_once == 2
            reply = client.post("/predict", files={"file": ("a.wav", buffer.read_bytes())})
    finally:
        torch.set_num_threads(1)  # threads=2 set it for the process
    assert reply.status_code == 200
    assert reply.json()["emotion"] == reference.label
    assert reply.json()["confidence"] == pytest.approx(reference.confidence, abs=1e-6)
    with TestClient(create_app(exported["model"], recognizer_options={"runtime": "torch"})
                    ) as client:  # PyTorch spreads one forward pass over every core
        assert client.app.state.model_gate.capacity == 1
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--clips-at-once" in capsys.readouterr().out


# -- precision="auto" --------------------------------------------------------------------------


def test_auto_precision_is_measured_once_per_processor_and_cached(tmp_path, monkeypatch):
    monkeypatch.delenv("SER_PRECISION", raising=False)
    monkeypatch.setenv("SER_CACHE", str(tmp_path))
    calls = []

    def fake_probe(device):
        calls.append(device)
        return {"fp32": 1.0, "bf16": 0.5}  # bf16 twice as fast on this "processor"

    monkeypatch.setattr(precision_module, "probe", fake_probe)
    cpu = torch.device("cpu")
    assert precision_module.autocast_dtype("auto", cpu) is torch.bfloat16
    assert precision_module.autocast_dtype("auto", cpu) is torch.bfloat16
    assert len(calls) == 1
    cached = json.loads((tmp_path / "precision.json").read_text())
    (entry,) = cached.values()
    assert entry["choice"] == "bf16" and entry["bf16_speedup"] == 2.0
    assert precision_module.processor_name(cpu) in next(iter(cached))
    # A processor where bf16 is slower (the Xeon of BENCHMARKS.md): fp32.
    (tmp_path / "precision.json").unlink()
    monkeypatch.setattr(precision_module, "probe", lambda device: {"fp32": 1.0, "bf16": 1.9})
    assert precision_module.autocast_dtype("auto", cpu) is None
    assert precision_module.autocast_dtype("bf16", cpu) is torch.bfloat16


def test_two_cpus_sold_under_one_name_do_not_share_a_cached_choice(tmp_path, monkeypatch):
    """A VM's bare "AMD EPYC" is a Zen 3 on one host and a Zen 4 on another: the choice cached
    on the first must not be applied on the second."""
    monkeypatch.delenv("SER_PRECISION", raising=False)
    monkeypatch.setenv("SER_CACHE", str(tmp_path))
    cpu = torch.device("cpu")
    zen3 = "model name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 1\nflags\t\t: fpu avx2 fma\n\n"
    zen4 = ("model name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 17\n"
            "flags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n\n")
    monkeypatch.setattr(precision_module, "processor_name", lambda device: "AMD EPYC")
    monkeypatch.setattr(precision_module, "_cpuinfo", lambda: zen3)
    monkeypatch.setattr(precision_module, "probe", lambda device: {"fp32": 1.0, "bf16": 3.0})
    assert precision_module.autocast_dtype("auto", cpu) is None  # emulated bf16: fp32
    monkeypatch.setattr(precision_module, "_cpuinfo", lambda: zen4)
    monkeypatch.setattr(precision_module, "probe", lambda device: {"fp32": 1.0, "bf16": 0.55})
    assert precision_module.autocast_dtype("auto", cpu) is torch.bfloat16  # measured, not reused
    keys = list(json.loads((tmp_path / "precision.json").read_text()))
    assert len(keys) == 2 and any("model 17; avx512_bf16" in k for k in keys)


def test_ser_precision_says_what_auto_means_without_measuring(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision_module, "probe", lambda device: pytest.fail("measured"))
    monkeypatch.setenv("SER_PRECISION", "bf16")
    assert precision_module.autocast_dtype("auto", cpu) is torch.bfloat16
    monkeypatch.setenv("SER_PRECISION", "fp32")
    assert precision_module.autocast_dtype("auto", cpu) is None
    assert precision_module.autocast_dtype("bf16", cpu) is torch.bfloat16  # explicit wins
    monkeypatch.setenv("SER_PRECISION", "fp16")
    with pytest.raises(ValueError, match="SER_PRECISION='fp16'"):
        precision_module.autocast_dtype("auto", cpu)


def test_real_probe_decides_and_the_torch_runtime_follows(tmp_path, monkeypatch):
    monkeypatch.delenv("SER_PRECISION", raising=False)
    monkeypatch.setenv("SER_CACHE", str(tmp_path))
    seconds = precision_module.probe(torch.device("cpu"))
    assert seconds["fp32"] > 0 and seconds["bf16"] > 0
    choice = precision_module.measured_precision(torch.device("cpu"))
    expected = "bf16" if seconds["fp32"] / seconds["bf16"] >= 1.5 else None
    if expected:  # a clear bf16 win on this CPU must be taken (a noisy middle ground may not)
        assert choice == "bf16"
    module = sharpened_classifier()
    runtime = TorchRuntime(module.model, device=torch.device("cpu"))
    assert (runtime.autocast_dtype is torch.bfloat16) == (choice == "bf16")
    quantized = TorchRuntime(sharpened_classifier().model, device=torch.device("cpu"),
                             quantize=True)
    assert quantized.autocast_dtype is None  # int8 and bf16 do not compose (see runtime.py)


@pytest.mark.slow
def test_evaluate_with_the_onnx_runtime_gives_the_pytorch_metrics(exported, tiny_corpora,
                                                                 tmp_path):
    """`python evaluate.py runtime=onnx` on an exported folder: same predictions and metrics."""
    from helpers import compose_config

    from ser.evaluation.run import evaluate

    common = ["print_rows=3", "progress=false", "dataset=ravdess",
              f"dataset.root={tiny_corpora['ravdess']}", "dataset.actors=[1]"]
    onnx_fp32 = exported["onnx"] / "model.onnx"
    ours = evaluate(compose_config("evaluate", tmp_path / "onnx",
                                   [*common, f"model_path={onnx_fp32}", "runtime=onnx"]))
    theirs = evaluate(compose_config("evaluate", tmp_path / "torch",
                                     [*common, f"model_path={exported['model']}",
                                      "runtime=torch"]))
    assert ours.metrics["n"] == theirs.metrics["n"] > 0
    assert ours.metrics["confusion"] == theirs.metrics["confusion"]
    probs = [f"p_{label}" for label in LABELS]
    np.testing.assert_allclose(ours.predictions[probs].to_numpy(dtype=float),
                               theirs.predictions[probs].to_numpy(dtype=float), atol=1e-4)


# -- the export at the end of training --------------------------------------------------------


@pytest.mark.slow
def test_training_ends_with_an_onnx_export_that_ser_predict_runs_by_default(
        tiny_corpora, tmp_path, monkeypatch, capsys):
    """train() writes model.onnx (and model.int8.onnx if int8 agrees with fp32 on the
    validation clips) into model/; `ser predict --model RUN/model` then runs ONNX Runtime with
    the labels of the PyTorch weights; the checksum manifest covers the ONNX files."""
    from helpers import compose_config
    from ser.inference.auto_export import export_trained_model
    from ser.training import train
    from test_train import overrides_for

    monkeypatch.setenv("SER_ONNX_EXPORT", "true")
    cfg = compose_config("train", tmp_path, overrides_for(
        tiny_corpora, "model=tiny", "logger=none", "trainer.max_epochs=2", "data.batch_size=4"))
    _, metrics = train(cfg)
    model_dir = Path(metrics["model"])
    block = metrics["onnx"]
    assert block["exported"] and (model_dir / "model.onnx").is_file()
    agreement = block["int8_agreement"]
    assert agreement["set"] == "validation" and agreement["clips"] == metrics["validation"]["n"]
    assert (model_dir / "model.int8.onnx").is_file() == agreement["kept"]
    assert block["default"] == ("model.int8.onnx" if agreement["kept"] else "model.onnx")
    manifest = json.loads((model_dir / "checksums.json").read_text())["files"]
    assert {"model.safetensors", "model.onnx"} <= set(manifest)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["onnx"] == block

    files = sorted(str(p) for p in (tiny_corpora["indonesian"] / "train").glob("*.wav"))[:6]
    default = EmotionRecognizer.from_pretrained(model_dir)
    assert default.runtime.name == "onnx"
    fp32_onnx = EmotionRecognizer.from_pretrained(model_dir, precision="fp32")
    torch_labels = [r.prediction.label for r in EmotionRecognizer.from_pretrained(
        model_dir, runtime="torch", precision="fp32").predict_many(files, num_workers=0)]
    assert [r.prediction.label for r in fp32_onnx.predict_many(files, num_workers=0)] == \
        torch_labels

    # int8 that does not agree well enough is removed, and the manifest follows.
    strict = export_trained_model(model_dir, files, min_int8_agreement=1.01)
    assert strict["int8_agreement"]["kept"] is False and strict["default"] == "model.onnx"
    assert not (model_dir / "model.int8.onnx").exists()
    assert "model.int8.onnx" not in json.loads((model_dir / "checksums.json").read_text())["files"]
    assert EmotionRecognizer.from_pretrained(model_dir).runtime.name == "onnx"

    # A damaged ONNX file is refused by name, like damaged PyTorch weights.
    data = bytearray((model_dir / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_dir / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="model.onnx"):
        EmotionRecognizer.from_pretrained(model_dir)


def test_without_onnxruntime_training_says_why_it_did_not_export(tmp_path, monkeypatch, caplog):
    from ser.inference.auto_export import export_trained_model

    without_onnxruntime(monkeypatch)
    with caplog.at_level(logging.WARNING):
        block = export_trained_model(tmp_path, [])
    assert block == {"exported": False, "reason": block["reason"]}
    assert "pip install 'ser[onnx]'" in block["reason"]
    assert "not exported to ONNX" in caplog.text and "PyTorch" in caplog.text
