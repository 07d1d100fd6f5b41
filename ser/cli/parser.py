"""The ``ser`` command line: the parser of every sub-command, its options and their checks.
Each sub-command's body is in :mod:`ser.cli.commands`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ser.cli import commands

# ``ser --help``'s description.
DESCRIPTION = ("The ``ser`` command: one sub-command per job, each a thin shell over a plain "
               "function.")


def _add_vad_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speech segments (Silero VAD; --timeline, stream)")
    group.add_argument("--max-segment", type=_positive(float), default=10.0,
                       help="longest speech segment in seconds; longer speech is cut at its "
                            "longest pause (default 10)")
    group.add_argument("--min-silence", type=_positive(float), default=0.25,
                       help="seconds of silence that end a segment (default 0.25)")
    group.add_argument("--vad-threshold", type=float, default=0.5,
                       help="speech probability that starts a segment (default 0.5)")


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _at_least_zero(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                        help="onnx: ONNX Runtime on a folder written by `ser export --onnx`; "
                             "auto (default): onnx when the model folder holds model.onnx or "
                             "model.int8.onnx and onnxruntime is installed, else torch")


def _export_doc() -> str:
    return ("Writes OUT_DIR/model.onnx (dynamic batch and time axes), with --int8 also "
            "model.int8.onnx, plus the labels and feature-extractor settings, and prints the "
            "parity check against PyTorch (stored in OUT_DIR/onnx_export.json). Needs the onnx "
            "extra: pip install 'ser[onnx]'.")


def build_parser() -> argparse.ArgumentParser:
    from ser.serve.schedule import DEFAULT_AGEING, DEFAULT_REFUSAL_DELAY

    parser = argparse.ArgumentParser(prog="ser", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write synthetic corpora in the Kaggle and RAVDESS layouts")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", choices=["tiny", "demo", "full"], default="demo",
                       help="tiny: a few files per class (tests); demo: the offline demo; "
                            "full: the real corpora's sizes (benchmarks)")
    synth.set_defaults(func=commands.cmd_synth)

    insp = sub.add_parser("inspect", help="describe a corpus folder and the problems in it")
    insp.add_argument("data_root", type=Path)
    insp.add_argument("--figure", type=Path, default=None,
                      help="where to write the class-distribution PNG "
                           "(default: DATA_ROOT/class_distribution.png, or the current folder "
                           "if DATA_ROOT is read-only)")
    insp.set_defaults(func=commands.cmd_inspect)

    pred = sub.add_parser(
        "predict", help="predict the emotion of audio files, folders or globs",
        description="One line per file; exit status 1 if any file failed (each named at the end).")
    pred.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                      help="audio files (any format soundfile reads), folders (searched "
                           "recursively for .wav .flac .ogg .mp3) or quoted glob patterns")
    pred.add_argument("--model", required=True,
                      help="a Hugging Face model folder, a Lightning .ckpt, or a state dict "
                           "such as emotion_model.pth (with --backbone)")
    pred.add_argument("--out", type=Path, default=None,
                      help="write predictions to FILE.csv (one row per file) or FILE.json "
                           "(with the windows of long recordings)")
    pred.add_argument("--windows-out", type=Path, default=None, metavar="FILE.csv",
                      help="also write one row per window of each long recording")
    pred.add_argument("--batch-size", type=_positive(int), default=8)
    pred.add_argument("--window", type=_positive(float), default=4.0,
                      help="window length in seconds for long recordings (default 4)")
    pred.add_argument("--hop", type=_positive(float), default=2.0,
                      help="seconds between window starts (default 2)")
    pred.add_argument("--long-threshold", type=_positive(float), default=20.0,
                      help="recordings longer than this many seconds are cut into windows; the "
                           "file's prediction is the mean of the window probabilities")
    pred.add_argument("--threads", type=_positive(int), default=None,
                      help="CPU threads for the model (torch.set_num_threads)")
    pred.add_argument("--workers", type=int, default=None,
                      help="processes decoding audio while the model runs (0: none; default: "
                           "1 when a CPU core is left over from --threads, else 0)")
    pred.add_argument("--backbone", default=None,
                      help="architecture (hub id or local folder) of a bare state dict; default "
                           "the original project's base checkpoint")
    pred.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    pred.add_argument("--quantize", action="store_true",
                      help="int8 Linear layers on the CPU (faster; probabilities move ~1e-3)")
    pred.add_argument("--trust-checkpoint", action="store_true",
                      help="allow full unpickling of a .ckpt/.pth that safe loading refuses; "
                           "only for files from a trusted source")
    pred.add_argument("--raw-probabilities", action="store_true",
                      help="the model's uncalibrated probabilities (default: calibrated by the "
                           "temperature fitted on the validation split, see README)")
    pred.add_argument("--timeline", action="store_true",
                      help="emotion over time: one row per speech segment "
                           "(path,start,end,pred,confidence,p_*); silence is not scored")
    pred.add_argument("--plot", type=Path, default=None, metavar="DIR",
                      help="with --timeline: write a PNG per file into DIR")
    _add_vad_options(pred)
    _add_runtime(pred)
    pred.set_defaults(func=commands.cmd_predict)

    live = sub.add_parser(
        "stream", help="replay an audio file in real time through live recognition",
        description="Prints an event per finished speech segment (and partial updates) as the "
                    "server's /stream would send them.")
    live.add_argument("file", metavar="FILE")
    live.add_argument("--model", required=True, help="as for predict")
    live.add_argument("--speed", type=float, default=1.0,
                      help="1: real time (default); 2: twice as fast; 0: as fast as possible")
    live.add_argument("--no-partials", action="store_true", help="final segment events only")
    live.add_argument("--threads", type=_positive(int), default=None)
    live.add_argument("--backbone", default=None)
    live.add_argument("--device", default=None)
    _add_vad_options(live)
    live.set_defaults(func=commands.cmd_stream)

    serve = sub.add_parser(
        "serve", help="serve predictions over HTTP (POST /predict, GET /ping, upload page at /)",
        description="Loads the model once, logs 'ready: URL' when it accepts requests.")
    serve.add_argument("--model", required=True,
                       help="a Hugging Face model folder, a Lightning .ckpt, or a state dict "
                            "such as emotion_model.pth (with --backbone)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-upload-mb", type=_positive(float), default=10.0,
                       help="largest accepted upload in MB; larger ones get 413 (default 10)")
    serve.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                       help="another browser origin allowed to call the API; repeat for several "
                            "(http://localhost:3000 and http://127.0.0.1:3000 are always allowed)")
    serve.add_argument("--max-seconds", type=_positive(float), default=600.0,
                       help="longest accepted recording in seconds, read from its header before "
                            "decoding; longer ones get 413 (default 600)")
    serve.add_argument("--max-channels", type=_positive(int), default=8,
                       help="most channels accepted in an upload (default 8)")
    serve.add_argument("--min-rate", type=_positive(int), default=8000,
                       help="lowest accepted sample rate in Hz (default 8000)")
    serve.add_argument("--max-rate", type=_positive(int), default=192000,
                       help="highest accepted sample rate in Hz (default 192000)")
    serve.add_argument("--header-timeout", type=_positive(float), default=10.0,
                       help="seconds a connection may take to send its request headers before "
                            "it is closed (default 10)")
    serve.add_argument("--body-timeout", type=_positive(float), default=60.0,
                       help="seconds an upload may take to arrive before it gets 408 "
                            "(default 60)")
    serve.add_argument("--refusal-delay", type=_at_least_zero, default=DEFAULT_REFUSAL_DELAY,
                       help="seconds a refused upload's 4xx answer is held back, so a client "
                            "that resends a bad file at once cannot keep the server busy parsing "
                            f"refusals (default {DEFAULT_REFUSAL_DELAY:g}; 0: answer at once)")
    serve.add_argument("--ageing", type=_at_least_zero, default=DEFAULT_AGEING,
                       help="uploads are decoded and run shortest first; a waiting upload gains "
                            "this many audio seconds of priority per second it waits, so later "
                            "shorter ones overtake it for at most its length / AGEING seconds "
                            f"(default {DEFAULT_AGEING:g}: a 10-minute upload waits at most "
                            f"~{600 / DEFAULT_AGEING:g} s behind later short ones; 0: strictly "
                            "shortest first, no bound)")
    serve.add_argument("--backbone", default=None,
                       help="architecture (hub id or local folder) of a bare state dict")
    serve.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    serve.add_argument("--threads", type=_positive(int), default=None,
                       help="CPU threads for the model (torch.set_num_threads)")
    serve.add_argument("--clips-at-once", type=_positive(int), default=None,
                       help="ONNX runtime: uploads scored side by side, each on its share of "
                            "the cores (default: one per core, for throughput; 1: each on "
                            "every core, for the latency of one upload at a time)")
    serve.add_argument("--store", default=None, metavar="URL",
                       help="where each answer is recorded: sqlite:///FILE, "
                            "postgresql://USER@HOST/DB (several servers, one history), or none "
                            "(default sqlite:///$SER_CACHE/history.db, ~/.cache/ser; printed "
                            "at start-up)")
    serve.add_argument("--keep-audio", type=Path, default=None, metavar="DIR",
                       help="also keep each upload in DIR, named by its SHA-256 (never by the "
                            "client's name); default: keep no audio")
    serve.add_argument("--log-clients", action="store_true",
                       help="record the client's IP address with each prediction")
    serve.add_argument("--raw-probabilities", action="store_true",
                       help="the model's uncalibrated probabilities (default: calibrated by the "
                            "temperature fitted on the validation split, see README)")
    serve.add_argument("--max-streams", type=_positive(int), default=4,
                       help="concurrent /stream WebSocket sessions (default 4)")
    _add_runtime(serve)
    serve.set_defaults(func=commands.cmd_serve)

    hist = sub.add_parser(
        "history", help="list the predictions a server recorded (newest first)",
        description="Reads the store that ser serve writes; prints a table, or writes every "
                    "record (with its probabilities and windows) to --out.")
    hist.add_argument("--store", default=None, metavar="URL",
                      help="the server's --store (default sqlite:///$SER_CACHE/history.db)")
    hist.add_argument("--limit", type=_positive(int), default=None, metavar="N",
                      help="the newest N records (default: 20 on the screen, all with --out)")
    hist.add_argument("--out", type=Path, default=None, metavar="FILE.csv|FILE.json",
                      help="write the records to a CSV (one row each) or JSON file")
    hist.set_defaults(func=commands.cmd_history)

    exp = sub.add_parser("export", help="export a model to ONNX (with a parity check)",
                         description=_export_doc())
    exp.add_argument("--model", required=True, help="any model path ser predict takes")
    exp.add_argument("--onnx", required=True, metavar="OUT_DIR",
                     help="folder for model.onnx, config.json, preprocessor_config.json (may be "
                          "the model folder itself: ser predict then uses ONNX Runtime)")
    exp.add_argument("--int8", action="store_true",
                     help="also write model.int8.onnx (int8 MatMuls, and convolutions with "
                          "--calibrate; used by default)")
    exp.add_argument("--calibrate", default=None, metavar="AUDIO",
                     help="folder, file or glob of recordings like those the model will hear: "
                          "the int8 convolutions' ranges are measured on up to 16 of them, "
                          "spread over the sorted list (without it the convolutions stay fp32)")
    exp.add_argument("--backbone", default=None, help="architecture of a bare state dict")
    exp.add_argument("--trust-checkpoint", action="store_true")
    exp.add_argument("--exporter", choices=["legacy", "dynamo"], default="legacy",
                     help="torch.onnx.export's TorchScript (default) or torch.export path")
    exp.set_defaults(func=commands.cmd_export)

    aud = sub.add_parser(
        "audit", help="find evaluation clips that are also in the training data",
        description="Each folder may be a Kaggle root (train.csv, test.csv), a RAVDESS root "
                    "(Actor_XX folders) or any folder of audio files. Prints each match and "
                    "'N of M evaluation clips found in the training data'; files that cannot be "
                    "read are listed and left out.")
    aud.add_argument("--train", required=True, type=Path, metavar="DIR|split.csv",
                     help="the training data: a folder (of a Kaggle root only train/), a training "
                          "run folder or its split.csv (only its train rows; val/test rows and "
                          "Kaggle test files are reported apart as held-out data)")
    aud.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                     help="the Kaggle root a split.csv refers to (default: data.root of the "
                          "run's config.yaml)")
    aud.add_argument("--eval", required=True, type=Path, metavar="DIR")
    aud.add_argument("--out", type=Path, default=None, metavar="FILE.csv",
                     help="write the matches (eval_path, train_path, score, coarse, part)")
    aud.add_argument("--threshold", type=_positive(float), default=None,
                     help="lowest fine score counted as the same recording (default 0.8; "
                          "measured: copies 0.87-1.0, other speakers and takes of the same "
                          "sentence at most 0.75; bench/BENCHMARKS.md)")
    aud.add_argument("--cache-dir", type=Path, default=None,
                     help="fingerprint cache (default $SER_CACHE/fingerprints, "
                          "~/.cache/ser/fingerprints)")
    aud.add_argument("--workers", type=_positive(int), default=None,
                     help="decoding processes (default 2)")
    aud.set_defaults(func=commands.cmd_audit)

    summ = sub.add_parser(
        "summarize", help="one table of a training multirun's jobs, best first",
        description="Reads each job folder's metrics.json and .hydra/overrides.yaml, writes "
                    "summary.csv and summary.md into SWEEP_DIR, prints the table and the best job.")
    summ.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR",
                      help="a multirun folder, e.g. outputs/train/multiruns/<time>_<host-pid>")
    summ.set_defaults(func=commands.cmd_summarize)
    return parser
