"""How the command line prints: one JSON document with --json, Rich tables on a terminal, the plain
lines exactly when piped; diagnostics and progress on stderr (a bar on a terminal, a line per change
otherwise). Rich consoles over in-memory files stand in for the terminal and the pipe."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import pytest
from rich.console import Console

from seq_export_cli.output import Output, per_source, sections, table

WIDTH = 100
STATUS_TABLE = table(
    "2026-11-22 in s3://lake-bucket",
    ["kind", "exported", "lines>", "bytes>"],
    [("subusers", "yes", 3, 120), ("account", "no", None, None)],
)
PLAIN_LINES = ["exported      subusers 2026-11-22: s3://lake-bucket/seq/dt=2026-11-22/scores.jsonl", "[not] markup"]


@dataclass
class Screen:
    """An ``Output`` over in-memory stdout and stderr, both a terminal or both a pipe."""

    output: Output
    out: io.StringIO
    err: io.StringIO


def screen(*, terminal: bool, json_output: bool = False) -> Screen:
    out, err = io.StringIO(), io.StringIO()

    def console(file: io.StringIO) -> Console:
        # as Output's own consoles: no highlighting, no wrapping of long lines
        return Console(file=file, force_terminal=terminal, width=WIDTH, highlight=False, soft_wrap=True)

    return Screen(Output(json_output=json_output, stdout=console(out), stderr=console(err)), out, err)


@pytest.fixture(autouse=True)
def _no_colour_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


# -- the answer ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_with_json_the_answer_is_one_json_document_with_values_as_given(terminal: bool) -> None:
    shown = screen(terminal=terminal, json_output=True)
    document = {
        "query": {"username": "Zoë [team] :fire: ops"},
        "subusers": [{"user_id": "100001", "score": 2.5, "date": None, "note": "x" * (3 * WIDTH)}],
    }

    shown.output.answer(document, PLAIN_LINES, STATUS_TABLE)

    assert json.loads(shown.out.getvalue()) == document  # one document: json.loads takes nothing else
    assert "\x1b" not in shown.out.getvalue()
    assert shown.err.getvalue() == ""
    assert not shown.output.rich


def test_with_json_human_lines_are_left_out_of_stdout() -> None:
    shown = screen(terminal=False, json_output=True)

    shown.output.line("queued 3 days")

    assert shown.out.getvalue() == ""


def test_a_terminal_gets_the_table_with_its_title_and_column_headers() -> None:
    shown = screen(terminal=True)

    shown.output.answer({"ignored": True}, PLAIN_LINES, STATUS_TABLE)

    out = shown.out.getvalue()
    assert shown.output.rich
    assert "2026-11-22 in s3://lake-bucket" in out
    for header in ("kind", "exported", "lines", "bytes"):
        assert header in out, header
    assert "lines>" not in out  # the marker only right-aligns the column
    assert "subusers" in out
    assert "120" in out
    assert PLAIN_LINES[0] not in out


def test_a_pipe_gets_the_plain_lines_exactly() -> None:
    shown = screen(terminal=False)

    shown.output.answer({"ignored": True}, PLAIN_LINES, STATUS_TABLE)

    assert not shown.output.rich
    assert shown.out.getvalue() == "".join(f"{line}\n" for line in PLAIN_LINES)
    assert shown.err.getvalue() == ""


def test_a_terminal_gets_the_plain_lines_when_the_answer_has_no_table() -> None:
    shown = screen(terminal=True)

    shown.output.answer({"ignored": True}, ["exported      1/1 queued days (2026-11-20 .. 2026-11-21)"])

    assert shown.out.getvalue() == "exported      1/1 queued days (2026-11-20 .. 2026-11-21)\n"


def test_table_columns_marked_with_gt_are_right_aligned_and_missing_values_a_dash() -> None:
    shown = table(None, ["user_id", "score>"], [("100001", None)])

    assert [(column.header, column.justify) for column in shown.columns] == [
        ("user_id", "left"),
        ("score", "right"),
    ]
    assert [str(cell) for cell in shown.columns[1].cells] == ["-"]


def test_plain_lines_and_notes_keep_colons_as_written() -> None:
    shown = screen(terminal=False)

    shown.output.answer({}, ["username    team:fire:ops"])
    shown.output.note("no latest score for username 'team:fire:ops'")

    assert shown.out.getvalue() == "username    team:fire:ops\n"
    assert shown.err.getvalue() == "seq-export: no latest score for username 'team:fire:ops'\n"


def test_table_cells_are_shown_as_written_not_as_markup() -> None:
    shown = screen(terminal=True)

    shown.output.answer({}, [], table("low scores", ["username"], [("acme[/b]",), ("[b]bold[/b]",)]))

    assert "acme[/b]" in shown.out.getvalue()
    assert "[b]bold[/b]" in shown.out.getvalue()


# -- diagnostics and progress --------------------------------------------------------------------------
def test_a_note_goes_to_stderr_prefixed_with_the_program() -> None:
    shown = screen(terminal=False, json_output=True)

    shown.output.note("2 of 3 queued days not exported within 60 s: subusers:2026-11-20, subusers:2026-11-21")

    assert shown.out.getvalue() == ""
    assert shown.err.getvalue() == (
        "seq-export: 2 of 3 queued days not exported within 60 s: subusers:2026-11-20, subusers:2026-11-21\n"
    )


def test_progress_on_a_pipe_prints_one_line_per_change() -> None:
    shown = screen(terminal=False)

    with shown.output.progress(3, "days exported") as progress:
        for done in (0, 1, 1, 3, 3):
            progress.update(done)

    assert shown.err.getvalue().splitlines() == [
        "seq-export: days exported: 0/3",
        "seq-export: days exported: 1/3",
        "seq-export: days exported: 3/3",
    ]
    assert shown.out.getvalue() == ""


def test_progress_without_a_total_counts_and_shows_the_detail() -> None:
    shown = screen(terminal=False)

    with shown.output.progress(None, "pages fetched") as progress:
        progress.update(1, "(1000 records)")
        progress.update(1, "(1000 records)")
        progress.update(2, "(1500 records)")

    assert shown.err.getvalue().splitlines() == [
        "seq-export: pages fetched: 1 (1000 records)",
        "seq-export: pages fetched: 2 (1500 records)",
    ]


def test_progress_on_a_terminal_draws_a_bar_that_ends_at_the_last_count() -> None:
    shown = screen(terminal=True)

    with shown.output.progress(3, "days exported") as progress:
        for done in (0, 1, 3):
            progress.update(done)

    err = shown.err.getvalue()
    assert "days exported" in err
    assert "━" in err  # the bar
    assert "3/3" in err.rsplit("\r", 1)[-1]  # the last frame drawn
    assert "seq-export:" not in err  # not the piped lines
    assert shown.out.getvalue() == ""


_CONTROL = re.compile(r"\x1b\[(\??)(\d*)([A-Za-z])")


def terminal_view(written: str) -> list[str]:
    """The lines a terminal shows once ``written`` is drawn: carriage returns, line feeds,
    cursor-up and erase-line applied; colours and cursor visibility ignored."""
    rows, row, at = [""], 0, 0
    for piece in re.split(r"(\x1b\[\??\d*[A-Za-z]|\r|\n)", written):
        if piece == "\r":
            at = 0
        elif piece == "\n":
            row, at = row + 1, 0
            rows += [""] * (row + 1 - len(rows))
        elif (control := _CONTROL.fullmatch(piece)) is not None:
            private, number, letter = control.groups()
            if not private and letter == "A":
                row = max(0, row - int(number or 1))
            elif not private and letter == "K":
                rows[row] = ""
        elif piece:
            rows[row] = rows[row][:at].ljust(at) + piece + rows[row][at + len(piece) :]
            at += len(piece)
    return [line.rstrip() for line in rows if line.strip()]


def test_a_spinner_is_erased_when_it_stops_so_no_frame_sits_above_the_not_ready_line() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=WIDTH, highlight=False, soft_wrap=True)
    output = Output(json_output=False, stdout=console, stderr=console)  # one terminal shows both

    with output.progress(None, "subusers 2026-11-22, pages fetched") as progress:
        progress.update(1, "(1000 records)")
    output.answer({}, ["not ready     subusers 2026-11-22: SendGrid is still computing the day (202)"])

    assert "pages fetched: 1 (1000 records)" in terminal.getvalue()  # it was drawn
    assert terminal_view(terminal.getvalue()) == [
        "not ready     subusers 2026-11-22: SendGrid is still computing the day (202)"
    ]


def test_a_bar_stays_on_screen_at_its_last_count_above_what_follows() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=WIDTH, highlight=False, soft_wrap=True)
    output = Output(json_output=False, stdout=console, stderr=console)

    with output.progress(2, "days exported") as progress:
        progress.update(2)
    output.answer({}, ["exported      subusers 2026-11-22"])

    shown = terminal_view(terminal.getvalue())
    assert len(shown) == 2
    assert shown[0].startswith("days exported")
    assert "2/2" in shown[0]
    assert shown[1] == "exported      subusers 2026-11-22"


# -- several sources -----------------------------------------------------------------------------------
def test_one_source_and_several_are_listed_alike_under_the_day() -> None:
    one = {"date": "2026-11-22", "source": "eu", "exported": True}
    other = {"date": "2026-11-22", "source": "global", "exported": False}

    assert per_source([one], day="2026-11-22") == {"date": "2026-11-22", "sources": [one]}
    assert per_source([one, other], day="2026-11-22") == {"date": "2026-11-22", "sources": [one, other]}


def test_a_stack_of_several_sources_gets_one_titled_section_per_source() -> None:
    parts = [("global", ["exported      subusers 2026-11-22"]), ("eu", ["not exported  subusers 2026-11-22"])]

    assert sections(parts, titled=False) == ["exported      subusers 2026-11-22", "not exported  subusers 2026-11-22"]
    assert sections(parts, titled=True) == [
        "source        global",
        "exported      subusers 2026-11-22",
        "",
        "source        eu",
        "not exported  subusers 2026-11-22",
    ]
