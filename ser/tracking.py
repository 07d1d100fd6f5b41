"""Experiment tracking that never blocks a run: W&B when it can, offline when it cannot.

Three bounds, each with one log line:

* before the run: the server must *answer* an HTTP request within ``PROBE_TIMEOUT`` seconds (a
  bare TCP connect passes a server that accepts connections and then never answers);
* at the run's start: ``wandb.init`` waits at most ``init_timeout`` seconds (W&B's own
  ``Settings.init_timeout``, 90 s by default in wandb; ``DEFAULT_INIT_TIMEOUT`` here); when it
  gives up, the run starts again offline instead of failing the job;
* at the run's end: ``finish`` waits at most ``finish_timeout`` seconds for the upload (W&B's
  ``Settings.finish_timeout``, unbounded by default in wandb; ``DEFAULT_FINISH_TIMEOUT`` here),
  and never raises: the job's results are already on disk, and what W&B did not upload stays
  in the run's local folder for ``wandb sync``.
"""

from __future__ import annotations

import logging
import netrc
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"
PROBE_TIMEOUT = 3.0
DEFAULT_INIT_TIMEOUT = 30.0
DEFAULT_FINISH_TIMEOUT = 60.0

T = TypeVar("T")


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)).hostname or ""
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _http_answer(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # any status line is an answer: the server is there
    except (OSError, ValueError):
        return False  # refused, timed out, no route, bad URL


def _reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the server answers an HTTP request within ``timeout`` seconds, all included (name
    lookup too, which socket timeouts do not cover: the request runs in a daemon thread)."""
    answered: list[bool] = []
    probe = threading.Thread(target=lambda: answered.append(_http_answer(url, timeout)),
                             name="wandb-probe", daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    return bool(answered and answered[0])


def wandb_mode() -> str:
    """The mode W&B will run in, honouring ``WANDB_MODE``; decided once and exported."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    url = os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)
    if not _has_wandb_key():
        log.warning("W&B: no API key configured; logging offline (upload later with `wandb sync`)")
        mode = "offline"
    elif not _reachable(url):
        log.warning("W&B: %s did not answer within %g s; logging offline (upload later with "
                    "`wandb sync`)", url, PROBE_TIMEOUT)
        mode = "offline"
    else:
        mode = "online"
    os.environ["WANDB_MODE"] = mode
    return mode


def init_settings(init_timeout: float | None = DEFAULT_INIT_TIMEOUT,
                  finish_timeout: float | None = DEFAULT_FINISH_TIMEOUT) -> Any:
    """``wandb.Settings`` that bound the run's start to ``init_timeout`` seconds and its finish
    (the last upload) to ``finish_timeout`` seconds, without raising (see :func:`finish_run`)."""
    import wandb

    if finish_timeout is None:
        finish_timeout = DEFAULT_FINISH_TIMEOUT  # 0 stays 0: W&B's "wait as long as it takes"
    return wandb.Settings(init_timeout=float(init_timeout or DEFAULT_INIT_TIMEOUT),
                          finish_timeout=float(finish_timeout), finish_timeout_raises=False)


def start_or_offline(start: Callable[[], T], init_kwargs: MutableMapping[str, Any]) -> T:
    """``start()`` (a call of ``wandb.init(**init_kwargs)``); when the server does not start the
    run in time (or refuses the key), switch ``init_kwargs`` and ``WANDB_MODE`` to offline, say
    so in one line, and start again."""
    import wandb

    try:
        return start()
    except (wandb.errors.CommError, TimeoutError) as exc:
        if init_kwargs.get("mode") == "offline":
            raise
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        log.warning("W&B: the run did not start online (%s: %s); logging offline instead "
                    "(upload later with `wandb sync`)", type(exc).__name__, first)
        os.environ["WANDB_MODE"] = "offline"
        init_kwargs["mode"] = "offline"
        return start()


class BoundedWandbLogger(WandbLogger):
    """Lightning's WandbLogger whose run starts offline when the online start times out."""

    @property
    def experiment(self):  # type: ignore[override]
        return start_or_offline(lambda: WandbLogger.experiment.fget(self), self._wandb_init)


def wandb_logger(init_timeout: float | None = DEFAULT_INIT_TIMEOUT,
                 finish_timeout: float | None = DEFAULT_FINISH_TIMEOUT, **kwargs: Any):
    """Lightning's WandbLogger in the mode :func:`wandb_mode` decides, its start bounded by
    ``init_timeout`` seconds (then offline; see :func:`start_or_offline`) and its finish by
    ``finish_timeout`` seconds (see :func:`finish_run`)."""
    kwargs.setdefault("mode", wandb_mode())
    kwargs.setdefault("settings", init_settings(init_timeout, finish_timeout))
    if kwargs.get("save_dir"):
        os.makedirs(kwargs["save_dir"], exist_ok=True)
    return BoundedWandbLogger(**kwargs)


def finish_run(run: Any, exit_code: int = 0) -> None:
    """``run.finish()``, which gives up uploading after the run's ``finish_timeout``; then one
    line says so and how to upload the rest (``wandb sync`` of the run's local folder)."""
    run.finish(exit_code=exit_code)
    # wandb sets this when the finish timeout expired (it raises only with
    # finish_timeout_raises, which we leave off: nothing about the job has failed).
    if getattr(run, "_finish_timed_out", False) is True:
        folder = getattr(run.settings, "sync_dir", None) or "wandb/<the run's folder>"
        log.warning("W&B: the upload did not finish within %g s; the run's data is kept in %s "
                    "(upload it later with `wandb sync %s`)", run.settings.finish_timeout,
                    folder, folder)


def finish_wandb(exit_code: int = 0) -> None:
    """Close the current W&B run (failed when ``exit_code`` is not 0), so the next job of a
    sweep starts its own; bounded by its ``finish_timeout`` (see :func:`finish_run`)."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        finish_run(wandb.run, exit_code=exit_code)
