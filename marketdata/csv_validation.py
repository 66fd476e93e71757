"""Candles as CSV: reading a user's upload into freqtrade's columns (refusing what a backtest should
not run on), and writing stored candles back out in the same format.

The accepted file (and the one ``candles_to_csv`` writes):

- UTF-8 text (a leading byte-order mark is ignored), comma-separated, at most ``max_bytes`` bytes.
- A header row naming exactly the columns date, open, high, low, close, volume (any order, any case).
- One candle per row, oldest first, one row per timeframe step: no duplicates, no gaps.
- ``date`` is the candle's open time, in UTC, written either as ISO 8601 (``2024-01-01 00:05:00``,
  ``2024-01-01T00:05:00Z``, ``2024-01-01T01:05:00+01:00``; without an offset it is UTC) or as epoch
  milliseconds (``1704067500000``). It must fall on the timeframe's boundary, as freqtrade's candles do.
- Prices are numbers greater than 0, volume a number not below 0, and low <= open, close <= high.

Rows are numbered as a spreadsheet or a text editor numbers them: the header is row 1, the first
candle row 2. Every refusal names its row and column; up to ``max_problems`` are reported at once.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pandas as pd

from marketdata.storage import COLUMNS
from marketdata.vocabulary import TIMEFRAME_SECONDS

PRICES = ("open", "high", "low", "close")
HEADER = ",".join(COLUMNS)
# ccxt (and so freqtrade) opens weekly candles on Mondays; the epoch began on a Thursday.
_ALIGN_OFFSET_MS = {"1w": 4 * 86_400_000}
# Epoch milliseconds between 1973 and 5138: a 10-digit value is almost surely seconds.
_EPOCH_MS_RANGE = (10**11, 10**14)
_INPUT_ECHO = 50
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class CsvProblem:
    """One reason a file is refused. ``row`` counts the header as row 1; None means the whole file."""

    message: str
    row: int | None = None
    column: str | None = None
    input: str | None = None
    type: str = "value_error"


class CandleCsvError(ValueError):
    """The file is refused; ``problems`` lists (up to a cap) why, sorted by row."""

    def __init__(self, problems: list[CsvProblem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems[:3]))
        self.problems = problems


def parse_candles_csv(
    source: bytes | BinaryIO,
    *,
    timeframe: str,
    max_bytes: int,
    max_rows: int | None = None,
    max_problems: int = 20,
) -> pd.DataFrame:
    """Candles from a CSV upload: columns ``COLUMNS``, date as UTC datetimes, prices as floats.

    Raises CandleCsvError naming every problem found (up to ``max_problems``).
    """
    if timeframe not in TIMEFRAME_SECONDS:
        raise ValueError(f"unknown timeframe {timeframe!r}")
    text = _text(source, max_bytes)
    order = _header(text)
    cells = _cells(text, order)
    if max_rows is not None and len(cells) > max_rows:
        raise CandleCsvError([_file_problem(f"The file has {len(cells)} candles; at most {max_rows} are accepted.")])
    checks = _Checks(cells, timeframe, cap=max_problems)
    checks.run()
    if checks.total:
        raise CandleCsvError(checks.report(max_problems))
    return checks.frame()


def candles_to_csv(frame: pd.DataFrame, *, chunk_rows: int = 10_000) -> Iterator[str]:
    """The header, then the candles in chunks: ISO dates in UTC, floats written to round-trip exactly."""
    yield HEADER + "\n"
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows].loc[:, COLUMNS]
        yield chunk.to_csv(header=False, index=False, date_format="%Y-%m-%dT%H:%M:%SZ", lineterminator="\n")


def _file_problem(message: str, type_: str = "value_error") -> CsvProblem:
    return CsvProblem(message=message, type=type_)


def _echo(value: str) -> str:
    return value if len(value) <= _INPUT_ECHO else value[: _INPUT_ECHO - 3] + "..."


def _text(source: bytes | BinaryIO, max_bytes: int) -> str:
    # Read one byte past the cap: enough to know the file is too big without reading all of it.
    data = source.read(max_bytes + 1) if hasattr(source, "read") else bytes(source)
    if len(data) > max_bytes:
        raise CandleCsvError([_file_problem(f"The file is larger than {max_bytes} bytes.", "too_long")])
    if not data.strip():
        raise CandleCsvError([_file_problem("The file is empty.", "missing")])
    if b"\x00" in data:
        raise CandleCsvError([_file_problem("This is not a CSV text file: it contains binary data.")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1].hex()
        message = f"Row {row} is not UTF-8 text (byte 0x{byte}); save the file as UTF-8 CSV."
        raise CandleCsvError([CsvProblem(message=message, row=row)]) from None


def _looks_like_data(value: str) -> bool:
    return bool(re.fullmatch(r"[\d\s.:+TZ/-]+", value)) and any(char.isdigit() for char in value)


def _header(text: str) -> list[str]:
    """The normalised column names in file order; refuses a missing, extra, repeated or misnamed column."""
    first_line = text.split("\n", 1)[0].rstrip("\r")
    names = [name.strip().lower() for name in next(csv.reader([first_line]), [])]
    if len(names) == 1:
        for separator in (";", "\t", "|"):
            if separator in first_line:
                shown = "tab" if separator == "\t" else repr(separator)
                message = f"Columns must be separated by commas, not {shown}: the header should read {HEADER}."
                raise CandleCsvError([CsvProblem(message=message, row=1, input=_echo(first_line))])
    if not any(names):
        raise CandleCsvError([CsvProblem(message=f"Row 1 must be the header {HEADER}; it is empty.", row=1)])
    if _looks_like_data(names[0]):
        message = f"Row 1 must be the header {HEADER}; it looks like a candle."
        raise CandleCsvError([CsvProblem(message=message, row=1, column=None, input=_echo(first_line))])
    problems: list[CsvProblem] = []
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            problems.append(CsvProblem(f"Column {position} has no name; the columns are {HEADER}.", 1, None, name))
        elif name not in COLUMNS:
            message = f"Unexpected column {name!r}; the columns are {HEADER}."
            problems.append(CsvProblem(message, 1, name, _echo(name), "extra_forbidden"))
        elif name in seen:
            problems.append(CsvProblem(f"Column {name!r} appears more than once.", 1, name, name))
        seen.add(name)
    for name in COLUMNS:
        if name not in seen:
            problems.append(
                CsvProblem(f"Column {name!r} is missing; the columns are {HEADER}.", 1, name, None, "missing")
            )
    if problems:
        raise CandleCsvError(problems)
    return names


def _cells(text: str, order: list[str]) -> pd.DataFrame:
    """Every cell as stripped text, columns named; trailing blank lines dropped."""
    try:
        cells = pd.read_csv(
            io.StringIO(text), header=0, names=order, index_col=False, dtype=str,
            keep_default_na=False, skip_blank_lines=False,
        )  # fmt: skip
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            expected, row, saw = (int(group) for group in found.groups())
            message = f"Row {row} has {saw} values; every row has {expected}: {HEADER}."
            raise CandleCsvError([CsvProblem(message=message, row=row)]) from None
        raise CandleCsvError([_file_problem(f"The file cannot be read as CSV: {exc}")]) from None
    cells = cells.loc[:, COLUMNS].apply(lambda column: column.str.strip())
    filled = (cells != "").any(axis=1).to_numpy()
    last = int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0
    cells = cells.iloc[:last]
    if cells.empty:
        raise CandleCsvError([_file_problem("The file has a header but no candles.", "missing")])
    cells.index = pd.RangeIndex(2, 2 + len(cells))  # the spreadsheet row numbers
    return cells


class _Checks:
    """Vectorised checks over all rows; each finding is counted, and the first few of each kind kept."""

    def __init__(self, cells: pd.DataFrame, timeframe: str, cap: int) -> None:
        self.cells = cells
        self.timeframe = timeframe
        self.step_ms = TIMEFRAME_SECONDS[timeframe] * 1000
        self.rows = cells.index.to_numpy()
        self.found: list[CsvProblem] = []
        self.total = 0
        self.numbers: dict[str, pd.Series] = {}
        self.dates = pd.Series(dtype="datetime64[us, UTC]")
        self._millis = np.zeros(0, dtype="int64")
        self._cap = cap

    def report(self, max_problems: int) -> list[CsvProblem]:
        position = {name: index for index, name in enumerate(COLUMNS)}
        listed = sorted(self.found, key=lambda p: (p.row or 0, position.get(p.column or "", -1)))[:max_problems]
        if self.total > len(listed):
            more = self.total - len(listed)
            listed.append(_file_problem(f"{more} more problems are not listed; fix these and upload again."))
        return listed

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"date": self.dates, **{name: self.numbers[name] for name in COLUMNS[1:]}})
        return frame.loc[:, COLUMNS].reset_index(drop=True)

    def _flag(self, mask: np.ndarray, column: str | None, type_: str, message: Callable[[int], str]) -> None:
        """Record the rows where ``mask`` holds; ``message`` gets a position (0-based) and words it."""
        hits = np.flatnonzero(mask)
        self.total += len(hits)
        for index in hits[: self._cap]:
            raw = _echo(self.cells[column].iloc[index]) if column else None
            self.found.append(CsvProblem(message(int(index)), int(self.rows[index]), column, raw, type_))

    def run(self) -> None:
        blank = (self.cells == "").all(axis=1).to_numpy()
        self._flag(blank, None, "missing", lambda i: f"Row {self.rows[i]} is empty.")
        for name in COLUMNS:
            empty = (self.cells[name] == "").to_numpy() & ~blank
            self._flag(empty, name, "missing", lambda i, name=name: f"Row {self.rows[i]}: {name} is empty.")
        valid_numbers = self._numbers(blank)
        self._candle_shape(valid_numbers)
        if self._dates():
            self._sequence()

    def _numbers(self, blank: np.ndarray) -> np.ndarray:
        """Parse the five numeric columns; True per row where all five are acceptable."""
        all_valid = ~blank
        for name in COLUMNS[1:]:
            raw = self.cells[name]
            values = pd.to_numeric(raw, errors="coerce").astype("float64")
            present = (raw != "").to_numpy()
            not_number = present & ~np.isfinite(values.to_numpy())
            self._flag(
                not_number, name, "float_parsing", lambda i, n=name: f"Row {self.rows[i]}: {n} must be a number."
            )
            number = present & ~not_number
            if name == "volume":
                out_of_range = number & (values.to_numpy() < 0)
                words = "must not be negative"
            else:
                out_of_range = number & (values.to_numpy() <= 0)
                words = "must be greater than 0"
            kind = "greater_than_equal" if name == "volume" else "greater_than"
            self._flag(out_of_range, name, kind, lambda i, n=name, w=words: f"Row {self.rows[i]}: {n} {w}.")
            self.numbers[name] = values
            all_valid = all_valid & number & ~out_of_range
        return all_valid

    def _candle_shape(self, valid: np.ndarray) -> None:
        open_, high, low, close = (self.numbers[name].to_numpy() for name in PRICES)
        top, bottom = np.maximum(open_, close), np.minimum(open_, close)
        self._flag(
            valid & (high < top), "high", "value_error",
            lambda i: f"Row {self.rows[i]}: high {_num(high[i])} is below max(open, close) {_num(top[i])}.",
        )  # fmt: skip
        self._flag(
            valid & (low > bottom), "low", "value_error",
            lambda i: f"Row {self.rows[i]}: low {_num(low[i])} is above min(open, close) {_num(bottom[i])}.",
        )  # fmt: skip

    def _dates(self) -> bool:
        """Parse and check each date on its own; True when every one parsed and is on a boundary."""
        raw = self.cells["date"]
        present = (raw != "").to_numpy()
        digits = raw.str.fullmatch(r"\d{1,18}").fillna(False).to_numpy(dtype=bool)
        epoch = pd.to_numeric(raw.where(digits, "0")).astype("int64")
        low, high = _EPOCH_MS_RANGE
        bad_epoch = digits & ((epoch < low) | (epoch >= high)).to_numpy()
        self._flag(
            bad_epoch, "date", "datetime_parsing",
            lambda i: f"Row {self.rows[i]}: date {epoch.iloc[i]} is not in epoch milliseconds "
                      f"(a 2024 date has 13 digits, like 1704067200000).",
        )  # fmt: skip
        from_epoch = pd.to_datetime(epoch.where(digits & ~bad_epoch), unit="ms", utc=True)
        from_iso = pd.to_datetime(raw.where(present & ~digits), format="ISO8601", utc=True, errors="coerce")
        dates = from_iso.dt.as_unit("us").where(~digits, from_epoch.dt.as_unit("us"))
        unparsed = present & ~digits & dates.isna().to_numpy()
        self._flag(
            unparsed, "date", "datetime_parsing",
            lambda i: f"Row {self.rows[i]}: date must be ISO 8601 in UTC (like 2024-01-01 00:05:00) "
                      f"or epoch milliseconds.",
        )  # fmt: skip
        parsed = ~dates.isna().to_numpy()
        since_epoch = dates.fillna(_EPOCH) - _EPOCH
        millis = (since_epoch // pd.Timedelta(milliseconds=1)).to_numpy(dtype="int64")
        sub_millisecond = (since_epoch % pd.Timedelta(milliseconds=1) != pd.Timedelta(0)).to_numpy()
        offset = _ALIGN_OFFSET_MS.get(self.timeframe, 0)
        misaligned = parsed & (((millis - offset) % self.step_ms != 0) | sub_millisecond)
        self._flag(
            misaligned, "date", "value_error",
            lambda i: f"Row {self.rows[i]}: date {_iso(dates.iloc[i])} is not on a {self.timeframe} boundary "
                      f"(that candle opens at {_iso(millis[i] - (millis[i] - offset) % self.step_ms)}).",
        )  # fmt: skip
        self.dates = dates
        self._millis = millis
        return bool((parsed & ~misaligned).all())

    def _sequence(self) -> None:
        """Oldest first, each date once, one candle per step (checked only once every date is sound)."""
        millis = self._millis
        step = np.diff(millis, prepend=millis[0] - self.step_ms)
        earlier = step < 0
        duplicate = step == 0
        self._flag(
            duplicate, "date", "value_error",
            lambda i: f"Row {self.rows[i]}: date {_iso(millis[i])} repeats row {self.rows[i] - 1}.",
        )  # fmt: skip
        self._flag(
            earlier, "date", "value_error",
            lambda i: f"Row {self.rows[i]}: date {_iso(millis[i])} is earlier than row {self.rows[i] - 1} "
                      f"({_iso(millis[i - 1])}); rows must be oldest first.",
        )  # fmt: skip
        if earlier.any() or duplicate.any():
            return  # a gap after a row out of order would only repeat the same problem
        gap = step > self.step_ms
        self._flag(
            gap, "date", "value_error",
            lambda i: f"Row {self.rows[i]}: gap before {_iso(millis[i])}: "
                      f"{(millis[i] - millis[i - 1]) // self.step_ms - 1} {self.timeframe} candle(s) missing, "
                      f"from {_iso(millis[i - 1] + self.step_ms)} to {_iso(millis[i] - self.step_ms)}.",
        )  # fmt: skip


def _num(value: float) -> str:
    return f"{float(value):.15g}"


def _iso(moment: int | pd.Timestamp) -> str:
    """A date as the messages show it; ``moment`` is a Timestamp or epoch milliseconds."""
    if not isinstance(moment, pd.Timestamp):
        moment = pd.Timestamp(int(moment), unit="ms", tz="UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f" if moment.microsecond else "%Y-%m-%d %H:%M:%S")
