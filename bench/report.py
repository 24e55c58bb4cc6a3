"""The benchmarks' figures as one Markdown report: RESULT lines in, one table out.

Every benchmark prints, for each figure it measures, one tab-separated line (``result()`` writes it)::

    RESULT<TAB><figure><TAB><target><TAB><measured>

``target`` is ``-`` when there is none. A target such as ``>= 1,000 messages/s``, ``<= 50 ms``, ``< 20 s``
or ``= 0`` is compared with the first number of ``measured`` (``1,234 messages/s``, ``152 MB (min 120)``)
when their units agree or convert (ms/s, KB/MB/GB); anything else is shown without a mark, never guessed.
``python -m bench.run`` runs the benchmarks and renders their lines with ``render_report``. Pure: no
processes, files or clock here, so the rendering is unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "RESULT"
MET, MISSED = "✓", "✗ missed"

_NUMBER = r"([-+]?\d[\d,]*(?:\.\d+)?)"
_TARGET = re.compile(rf"^\s*(>=|<=|==|=|<|>|≥|≤)?\s*{_NUMBER}\s*(\S*)")
_MEASURED = re.compile(rf"{_NUMBER}\s*(\S*)")
# Units that convert into one another: (family, factor to the family's base unit).
_UNITS = {"us": ("time", 1e-6), "ms": ("time", 1e-3), "s": ("time", 1.0),
          "KB": ("size", 1 / 1024), "MB": ("size", 1.0), "GB": ("size", 1024.0)}


def result(figure: str, target: str, measured: str) -> None:
    """Print one figure as a RESULT line (tabs and newlines inside the fields become spaces)."""
    fields = [" ".join(field.split()) or "-" for field in (figure, target, measured)]
    print("\t".join([PREFIX, *fields]), flush=True)


@dataclass(frozen=True)
class Result:
    figure: str
    target: str
    measured: str


@dataclass(frozen=True)
class BenchRun:
    """One benchmark as ``bench.run`` ran it. ``returncode`` is None when it was stopped for taking too long."""

    title: str
    command: str
    returncode: int | None
    seconds: float
    output: str

    @property
    def results(self) -> list[Result]:
        return parse_results(self.output)

    @property
    def failure(self) -> str | None:
        if self.returncode is None:
            return f"timed out after {self.seconds:.0f} s"
        if self.returncode != 0:
            return f"exit code {self.returncode}"
        if not self.results:
            return "printed no RESULT lines"
        return None


def parse_results(output: str) -> list[Result]:
    """The RESULT lines of a benchmark's output, in order; other lines (and malformed ones) are ignored."""
    found = []
    for line in output.splitlines():
        fields = line.rstrip("\r").split("\t")
        if fields[0] == PREFIX and len(fields) == 4:
            found.append(Result(*(field.strip() for field in fields[1:])))
    return found


def without_results(output: str) -> str:
    """The output as a person reads it: the RESULT lines are in the table already."""
    return "\n".join(line for line in output.splitlines() if not line.startswith(PREFIX + "\t"))


def target_met(target: str, measured: str) -> bool | None:
    """True or False when ``measured`` can be compared with ``target``; None when it cannot."""
    wanted = _TARGET.match(target)
    got = _MEASURED.search(measured)
    if wanted is None or got is None:
        return None
    operator, bound, bound_unit = wanted.groups()
    value, unit = got.groups()
    scale = _scale(unit, bound_unit)
    if scale is None:
        return None
    x, limit = _number(value) * scale, _number(bound)
    match operator:
        case ">=" | "≥":
            return x >= limit
        case "<=" | "≤":
            return x <= limit
        case ">":
            return x > limit
        case "<":
            return x < limit
        case _:  # "=", "==" or a bare number
            return x == limit


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _scale(unit: str, target_unit: str) -> float | None:
    """The factor that turns a measured value into the target's unit; None when the units do not match."""
    unit, target_unit = unit.rstrip(",;:)"), target_unit.rstrip(",;:)")
    if unit == target_unit or not unit or not target_unit:
        return 1.0
    if unit in _UNITS and target_unit in _UNITS and _UNITS[unit][0] == _UNITS[target_unit][0]:
        return _UNITS[unit][1] / _UNITS[target_unit][1]
    return None


def table_rows(runs: Sequence[BenchRun]) -> list[tuple[str, str, str, str]]:
    """(figure, target, measured with its mark, command) for every figure; a failed benchmark adds a row."""
    rows = []
    for run in runs:
        command = f"`{run.command}`"
        for r in run.results:
            met = target_met(r.target, r.measured)
            mark = "" if met is None else f" {MET}" if met else f" **{MISSED}**"
            rows.append((r.figure, r.target, r.measured + mark, command))
        if run.failure is not None:
            rows.append((run.title, "-", f"**failed**: {run.failure}", command))
    return rows


def render_table(runs: Sequence[BenchRun]) -> str:
    lines = ["| Figure | Target | Measured | Command |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table_rows(runs)]
    return "\n".join(lines)


def summary(runs: Sequence[BenchRun]) -> str:
    results = [r for run in runs for r in run.results]
    marks = [target_met(r.target, r.measured) for r in results]
    failed = [run.title for run in runs if run.failure is not None]
    text = (f"{_count(len(results), 'figure')} from {_count(len(runs), 'benchmark')}: "
            f"{_count(marks.count(True), 'target')} met, {marks.count(False)} missed, "
            f"{marks.count(None)} without a comparable target")
    return text + (f"; failed: {', '.join(failed)}." if failed else "; none failed.")


def render_report(runs: Sequence[BenchRun], *, heading: str, preamble: str,
                  facts: Sequence[tuple[str, str]], raw_limit: int = 6000) -> str:
    """The whole Markdown document: heading, preamble, the machine, the table, then every raw output."""
    lines = [f"# {heading}", "", preamble, "", "## Machine", ""]
    lines += [f"- {label}: {value}" for label, value in facts]
    lines += ["", "## Figures", "",
              f"{MET} marks a target met and **{MISSED}** one missed; a figure whose target is `-` or cannot be "
              "compared with the measurement is unmarked.", "", render_table(runs), "", summary(runs), "",
              "## Raw output", ""]
    for run in runs:
        status = "" if run.failure is None else f" (failed: {run.failure})"
        output = without_results(run.output).strip()
        if len(output) > raw_limit:
            output = "[…]\n" + output[-raw_limit:]
        lines += [f"### {run.title}{status}", "", f"`{run.command}`, {run.seconds:.0f} s", "",
                  "```text", output or "(no output)", "```", ""]
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
