"""Reading candle CSVs: what is accepted, and every refusal naming its row (header = row 1) and column."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from marketdata.csv_validation import (
    HEADER,
    CandleCsvError,
    CsvProblem,
    candles_to_csv,
    parse_candles_csv,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
LIMIT = 1_000_000


def candle_rows(count: int, *, start: datetime = START, step: timedelta = timedelta(minutes=5)) -> list[str]:
    rows = []
    for index in range(count):
        moment = start + index * step
        price = 100 + index
        rows.append(f"{moment:%Y-%m-%d %H:%M:%S},{price},{price + 2},{price - 1},{price + 1},{10 + index}")
    return rows


def csv_bytes(rows: list[str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def parse(data: bytes, timeframe: str = "5m", **limits: int) -> pd.DataFrame:
    return parse_candles_csv(data, timeframe=timeframe, max_bytes=limits.pop("max_bytes", LIMIT), **limits)


def refusal(data: bytes, timeframe: str = "5m", **limits: int) -> list[CsvProblem]:
    with pytest.raises(CandleCsvError) as caught:
        parse(data, timeframe, **limits)
    return caught.value.problems


def where(problems: list[CsvProblem]) -> list[tuple[int | None, str | None]]:
    return [(problem.row, problem.column) for problem in problems]


# What is accepted


def test_a_well_formed_file_becomes_freqtrade_columns_in_utc():
    frame = parse(csv_bytes(candle_rows(3)))

    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert str(frame["date"].dt.tz) == "UTC"
    assert frame["date"].tolist() == [pd.Timestamp(START + timedelta(minutes=5 * i)) for i in range(3)]
    assert frame.loc[2, ["open", "high", "low", "close", "volume"]].tolist() == [102.0, 104.0, 101.0, 103.0, 12.0]
    assert all(str(dtype) == "float64" for dtype in frame.dtypes.iloc[1:])


def test_epoch_milliseconds_iso_with_offsets_and_plain_utc_mean_the_same_moments():
    rows = [
        "1704067200000,1,2,0.5,1.5,10",
        "2024-01-01T00:05:00Z,1,2,0.5,1.5,10",
        "2024-01-01T01:10:00+01:00,1,2,0.5,1.5,10",
        "2024-01-01 00:15:00,1,2,0.5,1.5,10",
    ]

    frame = parse(csv_bytes(rows))

    assert frame["date"].tolist() == [pd.Timestamp(START + timedelta(minutes=5 * i)) for i in range(4)]


def test_header_case_order_whitespace_bom_crlf_and_trailing_blank_lines_are_tolerated():
    text = "\ufeffVolume, Close ,LOW,high,Open,date\r\n10,1.5,0.5,2,1,2024-01-01 00:00:00\r\n\r\n\r\n"

    frame = parse(text.encode())

    assert frame.iloc[0].tolist()[1:] == [1.0, 2.0, 0.5, 1.5, 10.0]
    assert len(frame) == 1


def test_zero_volume_and_a_doji_are_candles():
    frame = parse(csv_bytes(["2024-01-01 00:00:00,5,5,5,5,0"]))

    assert frame.iloc[0].tolist()[1:] == [5.0, 5.0, 5.0, 5.0, 0.0]


def test_a_file_object_is_read_like_bytes():
    frame = parse_candles_csv(io.BytesIO(csv_bytes(candle_rows(2))), timeframe="5m", max_bytes=LIMIT)

    assert len(frame) == 2


def test_what_candles_to_csv_writes_reads_back_as_the_same_candles():
    # given: prices that only survive a round trip written at full precision
    frame = parse(csv_bytes(candle_rows(25)))
    frame["close"] = frame["close"] + 0.1 + 0.2
    frame["volume"] = frame["volume"] * 1e-9

    # when
    text = "".join(candles_to_csv(frame, chunk_rows=7))

    # then
    assert text.startswith(HEADER + "\n2024-01-01T00:00:00Z,")
    pd.testing.assert_frame_equal(parse(text.encode()), frame)


def test_weekly_candles_open_on_mondays_as_freqtrade_counts_them():
    from freqtrade.exchange import timeframe_to_prev_date

    monday = timeframe_to_prev_date("1w", datetime(2024, 1, 10, tzinfo=UTC))
    rows = [f"{monday + timedelta(weeks=i):%Y-%m-%d},1,2,0.5,1.5,10" for i in range(2)]

    assert len(parse(csv_bytes(rows), "1w")) == 2
    thursday = [f"{datetime(2024, 1, 4):%Y-%m-%d},1,2,0.5,1.5,10"]
    assert where(refusal(csv_bytes(thursday), "1w")) == [(2, "date")]


# Refusals of the whole file


@pytest.mark.parametrize("data", [b"", b"  \n\n"], ids=["nothing", "blank lines"])
def test_an_empty_file_is_refused(data):
    problems = refusal(data)

    assert [(p.row, p.column, p.type) for p in problems] == [(None, None, "missing")]
    assert problems[0].message == "The file is empty."


def test_a_header_without_candles_is_refused():
    problems = refusal(csv_bytes([]))

    assert problems[0].message == "The file has a header but no candles."


def test_a_file_over_the_byte_cap_is_refused_without_reading_all_of_it():
    data = csv_bytes(candle_rows(50))
    stream = io.BytesIO(data)

    with pytest.raises(CandleCsvError) as caught:
        parse_candles_csv(stream, timeframe="5m", max_bytes=100)

    assert caught.value.problems[0].type == "too_long"
    assert "larger than 100 bytes" in caught.value.problems[0].message
    assert stream.tell() == 101
    assert refusal(data, max_bytes=len(data) - 1)[0].type == "too_long"
    assert len(parse(data, max_bytes=len(data))) == 50


def test_a_file_over_the_row_cap_is_refused():
    problems = refusal(csv_bytes(candle_rows(11)), max_rows=10)

    assert problems[0].message == "The file has 11 candles; at most 10 are accepted."


def test_text_that_is_not_utf8_is_refused_naming_its_row():
    data = csv_bytes(candle_rows(2)) + "2024-01-01 00:10:00,1,2,0.5,1.5,10 \u20ac\n".encode("cp1252")

    problems = refusal(data)

    assert where(problems) == [(4, None)]
    assert "not UTF-8" in problems[0].message
    assert "0x80" in problems[0].message


def test_binary_data_is_refused():
    problems = refusal(b"PK\x03\x04\x00\x00binary")

    assert "not a CSV text file" in problems[0].message


def test_semicolon_separated_text_is_refused_with_a_hint():
    problems = refusal(b"date;open;high;low;close;volume\n2024-01-01 00:00:00;1;2;0.5;1.5;10\n")

    assert where(problems) == [(1, None)]
    assert "separated by commas, not ';'" in problems[0].message


def test_a_blank_first_row_is_refused_as_a_missing_header():
    problems = refusal(b"\n" + csv_bytes(candle_rows(1)))

    assert where(problems) == [(1, None)]
    assert problems[0].message == f"Row 1 must be the header {HEADER}; it is empty."


def test_a_file_without_a_header_is_refused():
    problems = refusal("\n".join(candle_rows(2)).encode())

    assert where(problems) == [(1, None)]
    assert problems[0].message.startswith(f"Row 1 must be the header {HEADER}")


# Refusals of the header (row 1)


def test_a_missing_column_is_named():
    problems = refusal(csv_bytes(["2024-01-01 00:00:00,1,2,0.5,1.5"], header="date,open,high,low,close"))

    assert [(p.row, p.column, p.type) for p in problems] == [(1, "volume", "missing")]


def test_an_extra_column_is_named():
    rows = ["2024-01-01 00:00:00,1,2,0.5,1.5,10,1.4"]

    problems = refusal(csv_bytes(rows, header=HEADER + ",adj_close"))

    assert [(p.row, p.column, p.type) for p in problems] == [(1, "adj_close", "extra_forbidden")]


def test_a_misnamed_column_is_both_unexpected_and_missing():
    header = "timestamp,open,high,low,close,volume"

    problems = refusal(csv_bytes(["2024-01-01 00:00:00,1,2,0.5,1.5,10"], header=header))

    assert where(problems) == [(1, "timestamp"), (1, "date")]
    assert problems[0].input == "timestamp"


def test_a_repeated_column_is_named():
    header = "date,open,high,low,close,volume,Open"

    problems = refusal(csv_bytes(["2024-01-01 00:00:00,1,2,0.5,1.5,10,1"], header=header))

    assert where(problems) == [(1, "open")]
    assert "more than once" in problems[0].message


def test_an_unnamed_column_is_refused():
    problems = refusal(csv_bytes(["2024-01-01 00:00:00,1,2,0.5,1.5,10,"], header=HEADER + ","))

    assert where(problems) == [(1, None)]
    assert problems[0].message.startswith("Column 7 has no name")


# Refusals of rows: row and column named


def test_a_row_with_too_many_values_is_named():
    rows = candle_rows(3)
    rows[1] += ",99"

    problems = refusal(csv_bytes(rows))

    assert where(problems) == [(3, None)]
    assert problems[0].message.startswith("Row 3 has 7 values; every row has 6")


def test_empty_cells_and_short_rows_are_named():
    rows = candle_rows(4)
    rows[0] = rows[0].replace(",102,", ",,")  # high empty
    rows[2] = ",".join(rows[2].split(",")[:4])  # close and volume missing

    problems = refusal(csv_bytes(rows))

    assert [(p.row, p.column, p.type) for p in problems] == [
        (2, "high", "missing"),
        (4, "close", "missing"),
        (4, "volume", "missing"),
    ]
    assert problems[0].message == "Row 2: high is empty."


def test_a_blank_row_between_candles_is_refused():
    rows = candle_rows(3)
    rows.insert(1, "")

    problems = refusal(csv_bytes(rows))

    assert where(problems) == [(3, None)]
    assert problems[0].message == "Row 3 is empty."


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "1.2.3", "0x10", "12 USDT"])
@pytest.mark.parametrize("column", ["open", "high", "low", "close", "volume"])
def test_a_value_that_is_not_a_finite_number_is_named(column, value):
    header = HEADER.split(",")
    cells = ["2024-01-01 00:00:00", "1", "2", "0.5", "1.5", "10"]
    cells[header.index(column)] = value

    problems = refusal(csv_bytes([",".join(cells)]))

    assert [(p.row, p.column, p.type, p.input) for p in problems] == [(2, column, "float_parsing", value)]
    assert problems[0].message == f"Row 2: {column} must be a number."


@pytest.mark.parametrize(
    ("cells", "column", "message"),
    [
        ("-1,2,0.5,1.5,10", "open", "open must be greater than 0"),
        ("1,2,0,1.5,10", "low", "low must be greater than 0"),
        ("1,2,0.5,-1.5,10", "close", "close must be greater than 0"),
        ("1,2,0.5,1.5,-0.01", "volume", "volume must not be negative"),
    ],
)
def test_negative_or_zero_prices_and_negative_volume_are_refused(cells, column, message):
    problems = refusal(csv_bytes(["2024-01-01 00:00:00," + cells]))

    assert (problems[0].row, problems[0].column) == (2, column)
    assert problems[0].message == f"Row 2: {message}."


def test_a_high_below_the_body_is_refused():
    rows = candle_rows(2)
    rows[1] = "2024-01-01 00:05:00,10,11,9,12,5"

    problems = refusal(csv_bytes(rows))

    assert where(problems) == [(3, "high")]
    assert problems[0].message == "Row 3: high 11 is below max(open, close) 12."


def test_a_low_above_the_body_is_refused():
    rows = candle_rows(2)
    rows[0] = "2024-01-01 00:00:00,10,13,10.5,12,5"

    problems = refusal(csv_bytes(rows))

    assert where(problems) == [(2, "low")]
    assert problems[0].message == "Row 2: low 10.5 is above min(open, close) 10."


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01 00:00:00", "01/02/2024 00:00", "2024-01-01 25:00:00"])
def test_a_date_that_does_not_parse_is_named(value):
    problems = refusal(csv_bytes([f"{value},1,2,0.5,1.5,10"]))

    assert [(p.row, p.column, p.type, p.input) for p in problems] == [(2, "date", "datetime_parsing", value)]
    assert "ISO 8601" in problems[0].message


def test_epoch_seconds_are_refused_as_not_milliseconds():
    problems = refusal(csv_bytes(["1704067200,1,2,0.5,1.5,10"]))

    assert where(problems) == [(2, "date")]
    assert "not in epoch milliseconds" in problems[0].message


def test_dates_out_of_order_are_refused():
    rows = candle_rows(4)
    rows[1], rows[2] = rows[2], rows[1]

    problems = refusal(csv_bytes(rows))

    assert where(problems) == [(4, "date")]
    assert problems[0].message == (
        "Row 4: date 2024-01-01 00:05:00 is earlier than row 3 (2024-01-01 00:10:00); rows must be oldest first."
    )


def test_a_repeated_date_is_refused():
    rows = candle_rows(3)
    rows.insert(2, rows[1])

    problems = refusal(csv_bytes(rows))

    assert where(problems) == [(4, "date")]
    assert problems[0].message == "Row 4: date 2024-01-01 00:05:00 repeats row 3."


@pytest.mark.parametrize(
    ("value", "timeframe"),
    [("2024-01-01 10:02:00", "5m"), ("2024-01-01 10:30:00", "1h"), ("2024-01-01 00:00:00.500", "1m")],
)
def test_a_date_off_the_timeframe_boundary_is_refused(value, timeframe):
    problems = refusal(csv_bytes([f"{value},1,2,0.5,1.5,10"]), timeframe)

    assert [(p.row, p.column, p.input) for p in problems] == [(2, "date", value)]
    assert f"is not on a {timeframe} boundary" in problems[0].message


def test_a_gap_is_refused_naming_the_missing_candles():
    rows = candle_rows(6)
    del rows[2:5]  # 00:10, 00:15 and 00:20 missing

    problems = refusal(csv_bytes(rows))

    assert where(problems) == [(4, "date")]
    assert problems[0].message == (
        "Row 4: gap before 2024-01-01 00:25:00: 3 5m candle(s) missing, "
        "from 2024-01-01 00:10:00 to 2024-01-01 00:20:00."
    )


def test_many_problems_are_reported_together_sorted_by_row_and_capped():
    # given: 30 rows with a bad close and, on row 5, an empty open as well
    rows = [row.rsplit(",", 2)[0] + ",x," + row.rsplit(",", 1)[1] for row in candle_rows(30)]
    rows[3] = rows[3].replace(",103,", ",,", 1)

    # when
    problems = refusal(csv_bytes(rows))

    # then
    assert len(problems) == 21
    assert where(problems[:6]) == [(2, "close"), (3, "close"), (4, "close"), (5, "open"), (5, "close"), (6, "close")]
    assert (problems[-1].row, problems[-1].message) == (
        None,
        "11 more problems are not listed; fix these and upload again.",
    )
