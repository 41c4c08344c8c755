"""Where a command's answer goes: one JSON document with ``--json``; Rich tables and progress
on a terminal; plain lines when piped (no colour, no redraw, nothing to strip). The answer goes
to stdout once; diagnostics and progress go to stderr.

``TTY_COMPATIBLE=1`` makes Rich treat a pipe as a terminal (how the tests look at the tables).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from seq_export_cli.errors import PROG


class Progressing(Protocol):
    def update(self, done: int, detail: str = "") -> None: ...


class Output:
    def __init__(self, *, json_output: bool, stdout: Console | None = None, stderr: Console | None = None) -> None:
        self.json = json_output
        # text is printed as written: no markup, no emoji codes (a username "team:fire:ops")
        self._out = stdout or Console(highlight=False, soft_wrap=True, emoji=False)
        self._err = stderr or Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

    @property
    def rich(self) -> bool:
        """Tables and colour: a terminal, and no --json."""
        return not self.json and self._out.is_terminal

    def answer(self, document: Any, lines: Sequence[str], table: RenderableType | None = None) -> None:
        """The command's answer, once: JSON, a table on a terminal, or plain lines."""
        if self.json:
            self._out.print_json(json.dumps(document, default=str), indent=2, highlight=False)
        elif table is not None and self.rich:
            self._out.print(table)
        else:
            for line in lines:
                self._out.print(line, markup=False, emoji=False)

    def line(self, text: str) -> None:
        """A human line on stdout (not with --json, whose stdout is the one document)."""
        if not self.json:
            self._out.print(text, markup=False, emoji=False)

    def note(self, message: str) -> None:
        """A diagnostic on stderr, prefixed with the program's name."""
        self._err.print(f"{PROG}: {message}", markup=False, highlight=False, emoji=False)

    @contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[Progressing]:
        """A bar (``total`` known) or a spinner on a terminal's stderr; a line per change otherwise
        (``label: done/total detail``). ``label`` says what is counted: ``queued days exported``.
        A spinner is erased when it stops (its last frame would sit above the answer, as if still
        working, after a 202); a bar stays, as the count it reached."""
        if self._err.is_terminal:
            with Progress(*_columns(total), console=self._err, transient=total is None) as bar:
                task = bar.add_task(label, total=total, detail="")
                yield _RichProgress(bar, task)
        else:
            yield _LineProgress(self, total, label)


def _columns(total: int | None) -> list[Any]:
    if total is None:
        return [SpinnerColumn(), TextColumn("{task.description}: {task.completed} {task.fields[detail]}")]
    return [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    ]


class _RichProgress:
    def __init__(self, bar: Progress, task: Any) -> None:
        self._bar, self._task = bar, task

    def update(self, done: int, detail: str = "") -> None:
        self._bar.update(self._task, completed=done, detail=detail)


class _LineProgress:
    def __init__(self, output: Output, total: int | None, label: str) -> None:
        self._output, self._total, self._label = output, total, label
        self._last: tuple[int, str] | None = None

    def update(self, done: int, detail: str = "") -> None:
        if (done, detail) == self._last:
            return
        self._last = (done, detail)
        count = f"{done}/{self._total}" if self._total is not None else str(done)
        self._output.note(f"{self._label}: {count}{' ' + detail if detail else ''}")


def counted(count: object, noun: str, plural: str | None = None) -> str:
    """``1 day``, ``3 days``: a count and its noun, in the singular for exactly one (every line
    of the CLI says counts so)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A Rich table; numbers right-aligned by the caller's column names ending in ``>``."""
    shown = Table(title=Text(title) if title is not None else None, title_justify="left", header_style="bold")
    for column in columns:
        name, justify = (column[:-1], "right") if column.endswith(">") else (column, "left")
        shown.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        shown.add_row(*(Text("-" if value is None else str(value)) for value in row))  # as written, not markup
    return shown


def per_source(documents: Sequence[Any], *, day: str) -> dict[str, Any]:
    """The answer of a command that speaks per source (``run``, ``status``, ``report``): the same
    shape for one source and for several, ``{"date": D, "sources": [...]}``, each entry carrying
    its ``source``."""
    return {"date": day, "sources": list(documents)}


def sections(parts: Sequence[tuple[str, Sequence[str]]], *, titled: bool) -> list[str]:
    """Plain lines of each source's answer; ``titled`` (a stack of several sources): one section
    per source, under a ``source  NAME`` line, a blank line between sections."""
    if not titled:
        return [line for _, lines in parts for line in lines]
    shown: list[str] = []
    for index, (source, lines) in enumerate(parts):
        shown += ([""] if index else []) + [f"source        {source}", *lines]
    return shown
