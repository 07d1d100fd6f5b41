"""``ser history``: list what a server answered, from the same store ``ser serve`` writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ser.history.records import Record, csv_writer
from ser.history.schema import SchemaError
from ser.history.store import HistoryStore, StoreConfigError, resolve_store_url, shown_url, \
    sqlite_file

SCREEN_ROWS = 20


def run_history(store: str | None = None, limit: int | None = None,
                out: Path | None = None) -> int:
    """Print the newest records (``limit``, default 20), or write them to ``out`` (.csv or
    .json; default every record). Returns 0, or 1/2 with the reason on stderr."""
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        print(f"error: --out {out}: use a .csv or .json file name", file=sys.stderr)
        return 2
    try:
        url = resolve_store_url(store)
    except StoreConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if url is None:
        print("error: --store none keeps no history: name the store a server writes "
              "(e.g. --store sqlite:///FILE or postgresql://USER@HOST/DB)", file=sys.stderr)
        return 2
    file = sqlite_file(url)
    if file is not None and not file.exists():
        print(f"no history yet: {file} does not exist (ser serve creates it; a server started "
              "with --store URL writes there instead)", file=sys.stderr)
        return 1
    try:
        history = HistoryStore.open(url)
    except (StoreConfigError, SchemaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a database that is down or refuses us
        print(f"error: cannot read the history store {shown_url(url)}: {exc}", file=sys.stderr)
        return 1
    try:
        total = history.count()
        if out is None:
            records = list(history.iter_all(limit or SCREEN_ROWS))
        else:
            records = list(history.iter_all(limit))
    finally:
        history.close()
    if out is None:
        print(_table(records))
    else:
        _write(records, out)
        print(f"wrote {out}")
    print(f"{len(records)} newest of {total} prediction(s) in {history.shown}")
    return 0


def _table(records: list[Record]) -> str:
    lines = [f"{'time (UTC)':<23}  {'id':<36}  {'emotion':<8} {'confidence':>10}  file"]
    for r in records:
        when = r.time[:19].replace("T", " ")
        lines.append(f"{when:<23}  {r.id:<36}  {r.emotion:<8} {r.confidence:>10.3f}  "
                     f"{r.file_name if r.file_name is not None else ''}")
    return "\n".join(lines)


def _write(records: list[Record], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        out.write_text(json.dumps([r.to_json() for r in records], indent=1) + "\n",
                       encoding="utf-8")
        return
    with out.open("w", newline="", encoding="utf-8") as handle:
        csv_writer(handle).writerows(r.to_csv_row() for r in records)
