"""Contacts from CSV as people export them (Excel's "CSV UTF-8" among them), and files that are
not what they should be: every problem by line, with a clear message, and no traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.contacts import parse_csv
from starters.cli import app

runner = CliRunner()


def test_a_byte_order_mark_is_not_part_of_the_first_column() -> None:
    contacts, problems = parse_csv("\ufeffid,email\nb1,b1@example.com\n")
    assert problems == []
    assert [(c.id, c.email) for c in contacts] == [("b1", "b1@example.com")]


def test_a_header_naming_a_column_twice_is_refused() -> None:
    contacts, problems = parse_csv("id,email,email\nb1,b1@example.com,other@example.com\n")
    assert contacts == []
    assert [str(p) for p in problems] == ["line 1: the header names 'email' more than once"]


def test_a_phone_with_two_plus_signs_is_refused() -> None:
    contacts, problems = parse_csv("id,phone\nb1,++48601234567\n")
    assert contacts == []
    assert [str(p) for p in problems] == [
        "line 2: phone: phone is not a valid international number (E.164, e.g. +48601234567)"
    ]


def test_a_record_over_several_lines_is_reported_where_it_starts() -> None:
    text = 'id,note,time_zone\nb1,"one\ntwo\nthree",Mars/Base\nb2,,UTC\n'
    contacts, problems = parse_csv(text)
    assert [c.id for c in contacts] == ["b2"]
    assert [str(p) for p in problems] == [
        "line 2: time_zone: time_zone 'Mars/Base' is not an IANA time zone (e.g. Europe/Warsaw)"
    ]


def test_a_field_over_the_csv_limit_imports_nothing() -> None:
    text = "id,note\nb1,short\nb2," + "x" * 200_000 + "\nb3,short\n"
    contacts, problems = parse_csv(text)
    assert contacts == []
    assert [str(p) for p in problems] == [
        "line 3: not valid CSV: field larger than field limit (131072)"
    ]


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "journeys.db"
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", f"sqlite:///{db}")
    return db


def test_excels_csv_utf8_imports(tmp_path: Path, store_url: Path) -> None:
    file = tmp_path / "excel.csv"
    file.write_bytes("id,email,city\r\nb1,b1@example.com,Łódź\r\n".encode("utf-8-sig"))
    result = runner.invoke(app, ["contacts", "import", str(file)])
    assert result.exit_code == 0
    assert result.output.strip() == "imported 1 contacts, rejected 0 problem(s)"
    rows = sqlite3.connect(store_url).execute("SELECT id, attributes FROM contacts").fetchall()
    assert rows == [("b1", '{"city": "\\u0141\\u00f3d\\u017a"}')]


def test_a_file_that_is_not_utf8_is_refused_by_line(tmp_path: Path, store_url: Path) -> None:
    file = tmp_path / "latin1.csv"
    file.write_bytes("id,city\nb1,Gda\xf1sk\n".encode("latin-1"))
    result = runner.invoke(app, ["contacts", "import", str(file)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {file}:line 2: not UTF-8 text (byte 0xf1): save the file as CSV UTF-8"
    )
    assert not store_url.exists()
