"""`nbseal verify --junit`: the XML as a JUnit parser and xml.etree read it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser

from nbseal.distributed import notebook_verdict, report_from_json
from nbseal.errors import NotebookCancelledError, NotebookTimeoutError
from nbseal.junit import render_junit
from nbseal.verify import CellReport, NotebookReport

ANSI_TRACEBACK = "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero\x07"


def _reports() -> list[NotebookReport]:
    return [
        NotebookReport(Path("ok.ipynb"), [CellReport(1, "reproduced")], 1.5),
        NotebookReport(
            Path("differs.ipynb"),
            [CellReport(1, "reproduced"), CellReport(2, "differs", diff=("-43", "+42"))],
            2.0,
        ),
        NotebookReport(Path("raises.ipynb"), [CellReport(1, "error", ANSI_TRACEBACK)], 1.0),
        NotebookReport(
            Path("hangs.ipynb"),
            [CellReport(1, "reproduced")],
            25.0,
            NotebookTimeoutError.after(Path("hangs.ipynb"), 25, 2),
        ),
        NotebookReport(
            Path("queued.ipynb"), problem=NotebookCancelledError.interrupted(Path("queued.ipynb"))
        ),
    ]


def test_each_notebook_is_a_testcase_with_its_outcome(tmp_path: Path) -> None:
    path = tmp_path / "verify.xml"
    path.write_text(render_junit(_reports()))
    xml = junitparser.JUnitXml.fromfile(str(path))
    (suite,) = list(xml)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 1, 2, 1)
    cases = {case.name: case.result for case in suite}
    assert cases["ok.ipynb"] == []
    (failure,) = cases["differs.ipynb"]
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "cell(s) 2 differ from the stored outputs"
    assert "+42" in (failure.text or "")
    (raised,) = cases["raises.ipynb"]
    assert isinstance(raised, junitparser.Error)
    assert "ZeroDivisionError: division by zero" in (raised.text or ""), "escapes removed"
    (cut,) = cases["hangs.ipynb"]
    assert isinstance(cut, junitparser.Error)
    assert cut.type == "NotebookTimeoutError"
    assert "timed out after 25 s" in (cut.message or "")
    (skipped,) = cases["queued.ipynb"]
    assert isinstance(skipped, junitparser.Skipped)


def test_the_schema_s_required_attributes_are_there() -> None:
    root = ET.fromstring(render_junit(_reports()).encode())
    assert root.tag == "testsuites"
    (suite,) = root
    assert {"name", "tests", "failures", "errors", "skipped", "time", "timestamp"} <= set(
        suite.attrib
    )
    for case in suite:
        assert {"name", "classname", "time"} <= set(case.attrib)
        float(case.attrib["time"])


def test_a_worker_s_json_comes_back_as_the_same_report() -> None:
    for report in _reports()[:4]:
        payload = report.to_json()
        payload["problem_class"] = report.problem.ename if report.problem else None
        again = report_from_json(payload, report.path)
        assert again.to_json() == report.to_json()
        assert notebook_verdict(again) == notebook_verdict(report)
        if report.problem is not None:
            assert again.problem is not None
            assert again.problem.ename == report.problem.ename
    verdicts = [notebook_verdict(report) for report in _reports()]
    assert verdicts == ["reproduced", "differs", "error", "error", "error"]
