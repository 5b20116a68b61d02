"""CSV files of records with an `id` (contacts, team members) as people export them: UTF-8 with
or without Excel's byte order mark, every row validated, every problem by the line where its row
starts (also for a quoted field over several lines)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import ValidationError


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Record = TypeVar("Record", bound=_Identified)


def decode_csv(data: bytes) -> str:
    """A CSV file's text: UTF-8, with or without the byte order mark Excel writes ("CSV UTF-8").
    ValueError naming the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}): save the file as CSV UTF-8"
        ) from None


def _header_problem(header: list[str]) -> str | None:
    if "id" not in header:
        return "the header must name an 'id' column"
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"the header names {', '.join(repr(n) for n in repeated)} more than once"
    return None


def parse_records(
    text: str, build: Callable[[dict[str, str]], Record]
) -> tuple[list[Record], list[RowProblem]]:
    """Every row built (`build` raises ValidationError for a bad one) and checked for an id that
    repeats. A file that is not CSV (a field over the csv module's limit, say) gives nothing:
    which rows it held is not known."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    records: list[Record] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    header: list[str] | None = None
    end = 0  # the line the last record ended on
    while True:
        start = end + 1
        try:
            fields = next(reader, None)
        except csv.Error as e:
            return [], [*problems, RowProblem(start, f"not valid CSV: {e}")]
        if fields is None:
            break
        end = reader.line_num
        if not fields:
            continue  # a blank line
        if header is None:
            header = fields
            if problem := _header_problem(header):
                return [], [RowProblem(start, problem)]
            continue
        if len(fields) > len(header):
            problems.append(RowProblem(start, "more fields than the header has columns"))
            continue
        try:
            record = build(dict(zip(header, fields, strict=False)))
        except ValidationError as e:
            for err in e.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(
                    RowProblem(start, f"{field}: {err['msg'].removeprefix('Value error, ')}")
                )
            continue
        if record.id in seen:
            problems.append(RowProblem(start, f"id '{record.id}' repeats line {seen[record.id]}"))
            continue
        seen[record.id] = start
        records.append(record)
    if header is None:
        return [], [RowProblem(1, "the header must name an 'id' column")]
    return records, problems
