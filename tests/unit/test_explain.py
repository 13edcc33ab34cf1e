"""Why a cell did not reproduce (nbseal.explain): one test per cause, pure."""

from __future__ import annotations

import pytest

from nbseal.compare import DEFAULT_SANITIZERS, normalise_outputs
from nbseal.explain import (
    DIFFERS,
    DRIFT,
    ERROR,
    FAILED_ENVIRONMENT,
    MISSING_DATA,
    NONDETERMINISM,
    explain_difference,
    explain_error,
)


def out(text: str, name: str = "stdout") -> list[tuple[str, str]]:
    return normalise_outputs(
        [{"output_type": "stream", "name": name, "text": text}], DEFAULT_SANITIZERS
    )


def why(source: str, old: str, new: str, earlier: tuple[str, ...] = ()) -> tuple[str, str]:
    cells = [(number, text) for number, text in enumerate(earlier, start=1)]
    found = explain_difference(source, cells, out(old), out(new))
    return found.cause, found.evidence


@pytest.mark.parametrize(
    ("source", "evidence"),
    [
        ("import numpy as np\nprint(np.random.rand(3))", "np.random.rand(3)"),
        ("x = np.random.default_rng()\nprint(x.random())", "default_rng()"),
        ("import random\nprint(random.random())", "random.random()"),
        ("print(torch.randn(2))", "torch.randn(2)"),
        ("df.sample(3)", "df.sample(3)"),
        ("%timeit sum(range(10))", "%timeit"),
        ("import time\nprint(time.time())", "reads the clock"),
        ("print(datetime.now())", "reads the clock"),
        ("print(uuid.uuid4())", "random UUID"),
        ("print(id(x))", "id"),
        ("print(hash('a'))", "hash() of a str"),
    ],
)
def test_nondeterminism_is_read_from_the_source(source: str, evidence: str) -> None:
    cause, said = why(source, "0.1\n", "0.7\n")
    assert cause == NONDETERMINISM
    assert evidence in said


@pytest.mark.parametrize(
    ("earlier", "source"),
    [
        (("import numpy as np\nnp.random.seed(0)",), "print(np.random.rand(3))"),
        ((), "np.random.seed(42); print(np.random.rand(3))"),
        (("import random\nrandom.seed(1)",), "print(random.random())"),
        ((), "rng = np.random.default_rng(7)\nprint(rng.random())"),
        (("torch.manual_seed(0)",), "print(torch.rand(2))"),
        ((), "df.sample(3, random_state=0)"),
        ((), "# np.random.rand(3) in a comment\nprint(1)"),
    ],
)
def test_a_seed_before_the_draw_is_no_evidence(earlier: tuple[str, ...], source: str) -> None:
    cause, _ = why(source, "0.1\n", "0.7\n", earlier)
    assert cause == DIFFERS


def test_a_seed_after_the_draw_does_not_count() -> None:
    cause, said = why("print(np.random.rand())\nnp.random.seed(0)", "0.1\n", "0.7\n")
    assert cause == NONDETERMINISM
    assert "no numpy seed before" in said


def test_an_earlier_unseeded_draw_is_weaker_evidence() -> None:
    cause, said = why("print(x)", "0.1\n", "0.7\n", ("x = np.random.rand()",))
    assert (cause, said.split(":")[0]) == (NONDETERMINISM, "cell 1 draws unseeded random numbers")


def test_a_set_printed_in_another_order_is_nondeterminism() -> None:
    cause, _ = why("print(set(words))", "{'b', 'a', 'c'}\n", "{'a', 'c', 'b'}\n")
    assert cause == NONDETERMINISM


def test_new_or_gone_warnings_are_drift() -> None:
    stored = out("1\n")
    fresh = [
        *out("1\n"),
        *out("x.py:3: FutureWarning: the default will change\n  y = f()\n", "stderr"),
    ]
    found = explain_difference("y = f()", [], stored, fresh)
    assert (found.cause, found.evidence) == (
        DRIFT,
        "new warning: FutureWarning: the default will change",
    )
    gone = explain_difference("y = f()", [], fresh, stored)
    assert gone.evidence.startswith("a stored warning is gone: FutureWarning")


def test_late_digits_versions_and_reprs_are_drift() -> None:
    assert why("print(score)", "0.9733333333333334\n", "0.9733333333333333\n") == (
        DRIFT,
        "numbers differ only in late digits: 0.9733333333333334 → 0.9733333333333333",
    )
    assert why("print(np.__version__)", "1.14.5\n", "1.21.0\n") == (
        DRIFT,
        "version numbers differ: 1.14.5 → 1.21.0",
    )
    old, new = "LogisticRegression(C=1.0, penalty='l2')\n", "LogisticRegression()\n"
    cause, said = why("model", old, new)
    assert cause == DRIFT
    assert "repr changed form" in said


def test_late_digits_in_a_padded_table_are_drift_and_far_ones_are_not() -> None:
    """pandas pads a column to its widest number: rounding that changed moves the padding."""
    old = "C1        -0.0128398\nC2    12.5\n"
    new = "C1          -0.01284\nC2    12.5\n"
    assert why("params", old, new) == (
        DRIFT,
        "numbers differ only in late digits: -0.0128398 → -0.01284",
    )
    far = "C1            -0.9\nC2    12.5\n"
    assert why("params", old, far)[0] == DIFFERS


def test_random_uuids_are_nondeterminism_other_hex_is_not() -> None:
    """IPython's display ids and a div's uuid4 id (made in an earlier cell) differ each run."""
    old = "<DisplayHandle display_id=118a56127f42348f8893440da7181c57>\n"
    new = "<DisplayHandle display_id=c5561cb82a29751fa693227cd28d42ee>\n"
    assert why("dh", old, new) == (
        NONDETERMINISM,
        "random ids differ: 118a56127f42348f8893440da7181c57 → c5561cb82a29751fa693227cd28d42ee",
    )
    div = '<div id="{}" style="height: 300px"></div>\n'
    first = div.format("c6929609-3cb6-4443-9574-d9f71791a987")
    second = div.format("e1c09508-764a-423c-9775-337f5e3f7fac")
    assert why("FlotPlot(x, y)", first, second)[0] == NONDETERMINISM
    # An md5 digest is not random: its change is not explained away.
    assert (
        why("h", "d41d8cd98f00b204e9800998ecf8427e\n", "0cc175b9c0f1b6a831c399e269772661\n")[0]
        != NONDETERMINISM
    )
    # Nor is a change beside a UUID.
    changed = div.format("e1c09508-764a-423c-9775-337f5e3f7fac").replace("300", "400")
    assert why("FlotPlot(x, y)", first, changed)[0] != NONDETERMINISM
    # Nor one in another output of the cell.
    two = explain_difference("f()", [], [*out(first), *out("1\n")], [*out(second), *out("2\n")])
    assert two.cause != NONDETERMINISM


def test_numbers_far_apart_are_no_drift() -> None:
    assert why("print(total)", "100\n", "117\n") == (DIFFERS, "stream:stdout: `100` → `117`")
    assert why("r", "Result(3, 'a')\n", "Result(4, 'a')\n")[0] == DIFFERS, "values, same form"


def test_matplotlib_s_figure_size_is_drift() -> None:
    assert why("print(fig)", "Figure(432x288)\n", "Figure(640x480)\n") == (
        DRIFT,
        "matplotlib's figure size changed: 432x288 → 640x480",
    )


def test_errors_missing_data_and_failed_environments() -> None:
    missing = explain_error(
        "FileNotFoundError",
        "[Errno 2] No such file or directory: 'data/bikes.csv'",
        notebook="nb.ipynb",
    )
    assert missing.cause == MISSING_DATA
    assert "'data/bikes.csv'" in missing.evidence
    assert "nbseal data add nb.ipynb data/bikes.csv" in missing.hint
    assert "#seal share data" in missing.hint
    pandas = explain_error("FileNotFoundError", "[Errno 2] File b'x.csv' does not exist: b'x.csv'")
    assert pandas.cause == MISSING_DATA
    assert "'x.csv'" in pandas.evidence
    lacking = explain_error("ModuleNotFoundError", "No module named 'sklearn.ensemble'")
    assert lacking.cause == ERROR
    assert lacking.hint == (
        "the environment lacks sklearn.ensemble: add scikit-learn to the cell's `#seal env` line"
    )
    # Raised the same in the stored run, it is the notebook's own matter.
    assert explain_error("ModuleNotFoundError", "No module named 'x'", stored="...").hint == ""
    new = explain_error("ValueError", "bad")
    assert (new.cause, new.evidence) == (ERROR, "ValueError: bad (the stored cell did not raise)")
    other = explain_error("ValueError", "bad", stored="KeyError: 'k'")
    assert other.evidence == "ValueError: bad, where the stored cell raised KeyError: 'k'"
    build = explain_error("UvError", "uv could not install the environment from its lock: X")
    assert (build.cause, build.evidence) == (
        FAILED_ENVIRONMENT,
        "UvError: uv could not install the environment from its lock: X",
    )
    again = explain_error("EnvironmentFailedError", "...", first_failure=2)
    assert (again.cause, again.evidence) == (FAILED_ENVIRONMENT, "not built again: see cell 2")
    # A user's own class of that name is no failed environment.
    assert explain_error("NotebookError", "x").cause == ERROR


def test_a_stored_error_the_rerun_does_not_raise() -> None:
    found = explain_difference("f()", [], out("x\n"), out("1\n"), stored_error="KeyError: 'k'")
    assert (found.cause, found.evidence) == (
        ERROR,
        "the stored cell raised KeyError: 'k'; the re-run did not",
    )


def test_times_a_cell_or_a_library_prints_are_the_clock() -> None:
    # lifelines' fit summary; nbval's docs printing time.strftime's results.
    summary = "  number of events = 114\n  time fit was run = {} UTC\n"
    old = summary.format("2019-02-24 19:24:52")
    new = summary.format("2026-11-30 18:04:10")
    assert why("cph.print_summary()", old, new) == (
        NONDETERMINISM,
        "only dates and times differ (the clock when each run ran): "
        "2019-02-24 19:24:52 → 2026-11-30 18:04:10",
    )
    clock = "The time is: {}\nToday's date is: {}\n"
    earlier = ("print([np.random.rand() for i in range(4)])",)
    # Not blamed on an earlier cell's random numbers.
    assert why(
        "show_time()",
        clock.format("15:28:30", "21/12/16"),
        clock.format("18:00:03", "30/11/26"),
        earlier,
    ) == (
        NONDETERMINISM,
        "only dates and times differ (the clock when each run ran): 15:28:30 → 18:00:03",
    )
    # Dates alone may be data; a change beside a time is more than the clock.
    assert why("df.date.max()", "2019-02-24\n", "2026-11-30\n")[0] != NONDETERMINISM
    changed = summary.format("2026-11-30 18:04:10").replace("114", "115")
    assert why("cph.print_summary()", old, changed)[0] != NONDETERMINISM
