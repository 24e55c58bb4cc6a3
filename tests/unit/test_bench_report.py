import pytest

from bench.report import BenchRun, parse_results, render_report, result, table_rows, target_met, without_results

PREFLIGHT = """members                         100,000
render + segments                 0.410 s       243,612 members/s
RESULT\tPreflight: render + segments\t>= 100,000 members/s\t243,612 members/s
RESULT\tPreflight: whole, cold phone cache\t< 3 s\t3.41 s (29,325 members/s)
RESULT\tmalformed line with three fields\t-
"""


def run(output: str, returncode: int | None = 0, title: str = "Preflight") -> BenchRun:
    return BenchRun(title, "python -m bench.preflight", returncode, 12.0, output)


def test_result_lines_are_parsed_in_order_and_other_lines_ignored() -> None:
    found = parse_results(PREFLIGHT)
    assert [(r.figure, r.target, r.measured) for r in found] == [
        ("Preflight: render + segments", ">= 100,000 members/s", "243,612 members/s"),
        ("Preflight: whole, cold phone cache", "< 3 s", "3.41 s (29,325 members/s)"),
    ]
    assert "RESULT" not in without_results(PREFLIGHT).replace("RESULT\tmalformed", "")


def test_result_prints_one_tab_separated_line_that_parses_back(capsys: pytest.CaptureFixture[str]) -> None:
    result("Soak: wall time,\t20,000 segments", "<= 681 s", "")
    line = capsys.readouterr().out
    assert line == "RESULT\tSoak: wall time, 20,000 segments\t<= 681 s\t-\n"
    assert parse_results(line)[0].target == "<= 681 s"


@pytest.mark.parametrize(("target", "measured", "met"), [
    (">= 100,000 members/s", "243,612 members/s", True),
    (">= 1,000 messages/s", "812 messages/s", False),
    ("<= 50 ms", "43.1 ms (p50 2.0, p95 9.8)", True),
    ("<= 50 ms", "0.061 s", False),  # units convert
    ("< 3 s", "2,950 ms", True),
    ("<= 200 MB", "152 MB (120 / 150)", True),
    ("< 300 MB", "1.2 GB", False),
    ("<= 3 segments", "3 segments", True),
    (">= 2.94 segments/s", "2.939 segments/s (median 2.99)", False),
    ("= 0", "0", True),
    ("= 0", "2", False),
    ("0", "0", True),  # a bare number asks for equality
    ("= 100,000", "100,000", True),
    ("-", "12 ms", None),  # no target
    (">= 500 req/s", "n/a", None),  # nothing measured
    (">= 2,000 creates/s", "2,345 messages/s", None),  # different units are not guessed at
    ("<= 50 ms", "12 MB", None),
    ("about 667 s", "700 s", None),
])
def test_targets_are_compared_when_the_units_agree(target: str, measured: str, met: bool | None) -> None:
    assert target_met(target, measured) is met


def test_a_missed_target_is_marked_and_a_failed_benchmark_gets_a_row() -> None:
    runs = [run(PREFLIGHT),
            BenchRun("Soak", "python -m bench.soak", 1, 30.0, "RESULT\tSoak: duplicate texts\t= 0\t0\nTraceback"),
            BenchRun("Home", "python -m bench.home", None, 1800.0, ""),
            BenchRun("Quiet", "python -m bench.quiet", 0, 1.0, "no figures here")]
    rows = table_rows(runs)
    assert rows[0] == ("Preflight: render + segments", ">= 100,000 members/s", "243,612 members/s ✓",
                       "`python -m bench.preflight`")
    assert rows[1][2] == "3.41 s (29,325 members/s) **✗ missed**"
    assert rows[2][2] == "0 ✓"
    assert rows[3] == ("Soak", "-", "**failed**: exit code 1", "`python -m bench.soak`")
    assert rows[4][2] == "**failed**: timed out after 1800 s"
    assert rows[5][2] == "**failed**: printed no RESULT lines"


def test_the_report_has_the_machine_one_table_and_the_raw_outputs() -> None:
    document = render_report([run(PREFLIGHT + "x | y\n")], heading="Textpulse benchmark results",
                             preamble="Measured today.", facts=[("CPU", "AMD EPYC, 2 cores"), ("RAM", "23.5 GiB")])
    lines = document.splitlines()
    assert lines[0] == "# Textpulse benchmark results"
    assert "- CPU: AMD EPYC, 2 cores" in lines
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| Figure | Target | Measured | Command |"
    assert len(table) == 2 + 2
    assert "| Preflight: whole, cold phone cache | < 3 s | 3.41 s (29,325 members/s) **✗ missed** |" in document
    assert "2 figures from 1 benchmark: 1 target met, 1 missed, 0 without a comparable target; none failed." in lines
    raw = document.split("## Raw output", 1)[1]
    assert "243,612 members/s" in raw and "RESULT\t" not in raw
    assert "x | y" in raw  # raw output is in a code block, not escaped


def test_a_table_cell_with_a_pipe_is_escaped() -> None:
    rows = run("RESULT\ta | b\t-\t1 | 2\n")
    document = render_report([rows], heading="h", preamble="p", facts=[])
    assert "| a \\| b | - | 1 \\| 2 | `python -m bench.preflight` |" in document


def test_bench_run_selects_by_name_or_module_in_the_report_order() -> None:
    from bench.run import BENCHMARKS, select

    assert select([]) == BENCHMARKS
    chosen = [b.name for b in select(["soak", "dispatch"])]
    assert chosen == ["dispatch-pacing", "dispatch-throughput", "dispatch-capped", "soak"]
    assert [b.command for b in select(["bench.standin_twilio"])] == ["python -m bench.standin_twilio"]
    with pytest.raises(SystemExit, match="unknown benchmark nope"):
        select(["nope"])
