"""``multibot data list|upload|download``: the stored candles."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from multibot_client.cli.app import cli, common_options, session

TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")


@cli.group()
@common_options
def data() -> None:
    """The stored candles (shared by every user): list, upload CSV, download CSV."""


@data.command("list")
@common_options
def data_list() -> None:
    """Every stored pair and timeframe, with its dates."""
    current = session()
    found = current.client().data_list()
    output = current.output
    if output.as_json:
        output.json(found)
        return
    output.table(("Pair", "Timeframe", "Exchange", "From", "To", "Candles", "Source"),
                 [[row["pair"], row["timeframe"], row["exchange"], row["start_date"], row["end_date"], row["records"],
                   row["source"]] for row in found["data"]])  # fmt: skip


@data.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-p", "--pair", required=True, help="Like BTC/USDT.")
@click.option("-t", "--timeframe", required=True, type=click.Choice(TIMEFRAMES))
@common_options
def data_upload(file: Path, pair: str, timeframe: str) -> None:
    """Merge a CSV of candles (date,open,high,low,close,volume) into the stored ones."""
    current = session()
    answer = current.client().data_upload(file, pair=pair, timeframe=timeframe)
    output = current.output
    if output.as_json:
        output.json(answer)
        return
    stored = answer["data"]
    output.message(f"Uploaded {stored['pair']} {stored['timeframe']}: {answer['added']} new, "
                   f"{answer['updated']} updated; {answer['records']} candles stored "
                   f"({stored['start_date']} to {stored['end_date']}).")  # fmt: skip


@data.command("download")
@click.argument("pair")
@click.argument("timeframe", type=click.Choice(TIMEFRAMES))
@click.option("-o", "--output", "target", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the CSV ('-': stdout; default: PAIR-TIMEFRAME.csv here).")  # fmt: skip
@click.option("--exchange", help="Whose candles (default: replay).")
@common_options
def data_download(pair: str, timeframe: str, target: Path | None, exchange: str | None) -> None:
    """The stored candles of PAIR (like BTC/USDT) and TIMEFRAME, as CSV."""
    current = session()
    content = current.client().data_download(pair, timeframe, exchange=exchange)
    if target is not None and str(target) == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    path = target or Path(f"{pair.replace('/', '_')}-{timeframe}.csv")
    path.write_bytes(content)
    rows = max(0, content.count(b"\n") - 1)
    output = current.output
    if output.as_json:
        output.json({"path": str(path), "bytes": len(content), "candles": rows})
    else:
        output.message(f"Wrote {rows} candles to {path}.")
