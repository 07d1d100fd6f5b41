"""The bodies of the ``ser`` sub-commands: each imports its module when it runs (so one command
never pays for another's imports) and calls one function with the parsed arguments; the exit
status is what that function returns."""

from __future__ import annotations

import argparse
import sys


def cmd_synth(args: argparse.Namespace) -> int:
    from ser.data.synthetic import write_synthetic_corpora

    roots = write_synthetic_corpora(args.out_dir, seed=args.seed, size=args.size)
    for layout, root in roots.items():
        print(f"{layout}: {root}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ser.corpus_report import inspect_corpus

    report = inspect_corpus(args.data_root, figure=args.figure)
    print(report.to_text())
    return 1 if report.fatal else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ser.inference.command import run_predict

    if args.plot is not None and not args.timeline:
        print("error: --plot needs --timeline", file=sys.stderr)
        return 2
    if args.timeline:
        from ser.inference.timeline_report import run_timeline

        return run_timeline(
            args.model, args.inputs, out=args.out, plot=args.plot, vad=vad_config(args),
            batch_size=args.batch_size, threads=args.threads, backbone=args.backbone,
            device=args.device, quantize=args.quantize, trust_checkpoint=args.trust_checkpoint,
            raw_probabilities=args.raw_probabilities, runtime=args.runtime)

    return run_predict(
        args.model, args.inputs, out=args.out, windows_out=args.windows_out,
        batch_size=args.batch_size, window=args.window, hop=args.hop,
        long_threshold=args.long_threshold, threads=args.threads, workers=args.workers,
        backbone=args.backbone, device=args.device, quantize=args.quantize,
        trust_checkpoint=args.trust_checkpoint, raw_probabilities=args.raw_probabilities,
        runtime=args.runtime,
    )


def vad_config(args: argparse.Namespace):
    from ser.inference.vad import VadConfig

    return VadConfig(threshold=args.vad_threshold, max_segment=args.max_segment,
                     min_silence=args.min_silence)


def cmd_stream(args: argparse.Namespace) -> int:
    from ser.inference.replay import run_replay

    return run_replay(args.model, args.file, speed=args.speed, vad=vad_config(args),
                      threads=args.threads, backbone=args.backbone, device=args.device,
                      partials=not args.no_partials)


def cmd_serve(args: argparse.Namespace) -> int:
    from ser.history.store import StoreConfigError, resolve_store_url

    try:
        resolve_store_url(args.store)  # a bad --store fails now, not after the model loads
    except StoreConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from ser.audio import AudioLimits
    from ser.history.service import HistoryOptions
    from ser.serve import cors_origins_with, run_server
    from ser.serve.live import StreamLimits

    options = {"device": args.device, "threads": args.threads, "runtime": args.runtime,
               "raw_probabilities": args.raw_probabilities or None,
               "clips_at_once": args.clips_at_once}
    limits = AudioLimits(max_seconds=args.max_seconds, max_channels=args.max_channels,
                         min_rate=args.min_rate, max_rate=args.max_rate)
    try:
        return run_server(
            args.model, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
            cors_origins=cors_origins_with(args.cors_origin or ()),
            limits=limits, header_timeout=args.header_timeout, body_timeout=args.body_timeout,
            ageing=args.ageing, refusal_delay=args.refusal_delay, backbone=args.backbone,
            recognizer_options={k: v for k, v in options.items() if v is not None},
            history=HistoryOptions(store=args.store, keep_audio=args.keep_audio,
                                   log_clients=args.log_clients),
            stream_limits=StreamLimits(max_streams=args.max_streams),
        )
    except (StoreConfigError, OSError) as err:  # e.g. a --keep-audio folder that cannot be made
        print(f"error: {err}", file=sys.stderr)
        return 2


def cmd_history(args: argparse.Namespace) -> int:
    from ser.history.command import run_history

    return run_history(args.store, limit=args.limit, out=args.out)


def cmd_export(args: argparse.Namespace) -> int:
    from ser.inference.export_command import run_export

    return run_export(args.model, args.onnx, int8=args.int8, backbone=args.backbone,
                      trust_checkpoint=args.trust_checkpoint, exporter=args.exporter,
                      calibrate=args.calibrate)


def cmd_audit(args: argparse.Namespace) -> int:
    from ser.audit.command import run_audit

    return run_audit(args.train, args.eval, out=args.out, threshold=args.threshold,
                     cache_dir=args.cache_dir, workers=args.workers, data_root=args.data_root)


def cmd_summarize(args: argparse.Namespace) -> int:
    from ser.sweeps import best_line, summarize_sweep

    try:
        frame = summarize_sweep(args.sweep_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((args.sweep_dir / "summary.md").read_text(), end="")
    print(best_line(frame))
    return 0
