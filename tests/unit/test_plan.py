"""The notebook planner and the locks a notebook file holds (pure, no uv)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from nbseal.directives import parse_cell
from nbseal.errors import DirectiveError, NotebookError
from nbseal.lock import Lock
from nbseal.notebook import LOCK_MIME, lock_output, set_locks, stored_locks
from nbseal.plan import (
    DEFAULT_ENV_NAME,
    DEFAULT_IPYKERNEL,
    Declaration,
    NotebookState,
    host_platform,
    host_python_version,
    plan_notebook,
)
from nbseal.sandbox.limits import DEFAULT_LIMITS, Limits
from nbseal.sandbox.policy import grants_summary

PIN = "2025-06-01T00:00:00Z"


def lock_for(requirements: tuple[str, ...], pin: str = PIN, version: str = "1.17.0") -> Lock:
    pylock = f'lock-version = "1.0"\n[[packages]]\nname = "six"\nversion = "{version}"\n'
    return Lock("uv", requirements, host_python_version(), host_platform(), pin, pylock)


def test_plan_follows_pins_and_definitions_in_cell_order() -> None:
    plan = plan_notebook(
        [
            "#seal pin 2025-06-01\n#seal env a <- six\nimport six",
            "#seal env b <- six pin=2024-01-01\n#seal env a\nprint(1)",
            "#seal env c <- bash_kernel kernel=bash",
        ]
    )
    a, b, c = (plan.environments[n] for n in "abc")
    assert a.requirements == ("six", "ipykernel")
    assert a.pin == PIN
    assert b.pin == "2024-01-01T00:00:00Z"
    assert c.requirements == ("bash_kernel",)
    assert c.kernel == "bash"
    assert plan.used == {"a"}
    assert DEFAULT_ENV_NAME not in plan.locked_environments()


def test_default_is_locked_only_when_code_runs_in_it() -> None:
    plan = plan_notebook(["x = 1", "#seal env a <- six pin=2025-01-01"])
    declared = plan.locked_environments()
    assert declared[DEFAULT_ENV_NAME].requirements == (DEFAULT_IPYKERNEL,)
    assert set(declared) == {DEFAULT_ENV_NAME, "a"}


def test_unpinned_environment_has_no_pin_until_resolved() -> None:
    declaration = plan_notebook(["#seal env a <- six"]).environments["a"]
    assert declaration.pin is None
    with pytest.raises(ValueError, match="unpinned"):
        declaration.spec()
    assert declaration.spec("2026-01-01T00:00:00Z").pin == "2026-01-01T00:00:00Z"


def test_pep723_block_declares_the_default_environment() -> None:
    block = (
        "# /// script\n"
        '# requires-python = ">=3.10"\n'
        '# dependencies = ["six==1.16.0"]\n'
        "# [tool.uv]\n"
        '# exclude-newer = "2025-06-01T00:00:00Z"\n'
        "# ///"
    )
    plan = plan_notebook([block, "import six"])
    default = plan.environments[DEFAULT_ENV_NAME]
    assert default.requirements == ("six==1.16.0", "ipykernel")
    assert default.pin == PIN
    assert default.source == "PEP 723 block"
    assert plan.used == {DEFAULT_ENV_NAME}


def test_requires_python_that_excludes_this_python_names_cell_and_line() -> None:
    block = "# /// script\n# requires-python = '>=3.99'\n# ///"
    with pytest.raises(DirectiveError) as info:
        plan_notebook(["x = 1", block])
    assert info.value.cell == 2
    assert info.value.line == 1
    assert info.value.message.startswith("cell 2, line 1: this notebook requires Python >=3.99")


def test_switch_to_an_undefined_environment_names_the_cell() -> None:
    with pytest.raises(DirectiveError, match="cell 2, line 1: no environment named 'b'"):
        plan_notebook(["#seal env a <- six", "#seal env b"])


@pytest.mark.parametrize(
    ("lock", "reason"),
    [
        (lock_for(("six", "ipykernel")), None),
        (lock_for(("ipykernel", "six")), None),
        (lock_for(("six==1.16.0", "ipykernel")), "requirements changed"),
        (lock_for(("six", "ipykernel"), pin="2024-01-01T00:00:00Z"), "pin changed"),
    ],
)
def test_staleness_compares_requirements_and_pin(lock: Lock, reason: str | None) -> None:
    declaration = Declaration("a", ("six", "ipykernel"), PIN)
    found = declaration.staleness(lock)
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_an_unpinned_declaration_accepts_any_pin_and_rejects_other_pythons() -> None:
    declaration = Declaration("a", ("six", "ipykernel"), None)
    assert declaration.staleness(lock_for(("six", "ipykernel"), pin="2020-01-01T00:00:00Z")) is None
    other = Lock("uv", ("six", "ipykernel"), "3.99.0", host_platform(), PIN, "")
    stale = declaration.staleness(other) or ""
    assert stale.startswith(f"locked for Python 3.99, this is Python {host_python_version()}")
    assert "`nbseal lock`" in stale  # with the way out


def test_a_lock_serves_its_series_not_one_patch_release() -> None:
    """Locks travel (issue 19): another 3.11.x fits; another series, or python=X.Y.Z, not."""
    here = host_python_version()
    series = ".".join(here.split(".")[:2])
    other_patch = f"{series}.{int(here.split('.')[2]) + 1}"
    declaration = Declaration("a", ("six", "ipykernel"), PIN)
    old_format = Lock("uv", ("six", "ipykernel"), other_patch, host_platform(), PIN, "")
    assert declaration.staleness(old_format) is None
    serving = replace(old_format, serves=series)
    assert declaration.staleness(serving) is None
    assert "platform" in (
        declaration.staleness(replace(old_format, platform="linux-aarch64")) or ""
    )
    exact = Declaration("a", ("six", "ipykernel"), PIN, python=other_patch)
    assert "python= changed" in (exact.staleness(serving) or "")
    assert exact.staleness(replace(serving, serves=other_patch)) is None


def test_locks_round_trip_through_metadata_and_outputs() -> None:
    nb = nbformat.v4.new_notebook()
    meta_lock = lock_for(("six", "ipykernel"))
    output_lock = lock_for(("six", "ipykernel"), version="1.16.0")
    cell = nbformat.v4.new_code_cell("#seal env a <- six")
    cell.outputs = [nbformat.v4.new_output("display_data", data=lock_output("a", output_lock))]
    nb.cells = [cell]
    set_locks(nb, {"a": meta_lock})
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)
    assert stored_locks(nb) == {"a": [meta_lock, output_lock]}
    assert LOCK_MIME in nb.cells[0].outputs[0]["data"]


def test_a_damaged_lock_in_metadata_says_how_to_repair() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["nbseal"] = {"environments": {"a": {"backend": "uv"}}}
    with pytest.raises(NotebookError) as info:
        stored_locks(nb)
    assert "metadata.nbseal.environments.a" in info.value.message
    assert "nbseal lock" in info.value.hint


def test_limits_follow_the_notebook_and_name_a_value_too_low() -> None:
    plan = plan_notebook(["#seal limit memory=16G", "#seal limit processes=4096\nx = 1"])
    assert plan.limits == Limits(tasks=4096, memory=16 * 2**30)
    assert plan_notebook(["x = 1"]).limits == DEFAULT_LIMITS
    with pytest.raises(DirectiveError) as info:
        plan_notebook(["x = 1", "#seal limit processes=2"])
    assert info.value.message == "cell 2, line 1: processes=2 is below 16"
    assert "at least processes=16" in info.value.hint


# -- one meaning per directive: the state both the planner and the kernel apply ----


def _apply_cell(state: NotebookState, source: str) -> None:
    for directive in parse_cell(source).directives:
        state.apply(directive)


def test_notebook_state_applies_directives_in_the_order_they_run() -> None:
    state = NotebookState()
    _apply_cell(state, "#seal pin 2025-06-01\n#seal env a <- six")
    assert state.current == "a"
    assert state.environments["a"].pin == PIN
    _apply_cell(state, "#seal env default\n#seal allow network\n#seal limit processes=64")
    assert state.current == DEFAULT_ENV_NAME
    assert state.declaration(DEFAULT_ENV_NAME).requirements == (DEFAULT_IPYKERNEL,)
    assert state.network
    assert state.limits.tasks == 64


def test_a_cell_is_checked_on_a_copy_before_it_takes_effect() -> None:
    state = NotebookState()
    trial = state.copy()
    _apply_cell(trial, "#seal pin 2025-06-01\n#seal env a <- six\n#seal share data ro")
    assert trial.environments
    assert trial.shares
    assert trial.pin
    assert state == NotebookState(), "the notebook's own state is untouched"


def test_planner_and_kernel_word_an_unknown_switch_the_same() -> None:
    # The planner applies cells through NotebookState.apply, as the kernel does.
    with pytest.raises(DirectiveError) as planned:
        plan_notebook(["#seal env a <- six", "#seal env b\nprint(1)"])
    state = NotebookState()
    _apply_cell(state, "#seal env a <- six")
    with pytest.raises(DirectiveError) as applied:
        _apply_cell(state, "#seal env b\nprint(1)")
    assert planned.value.reason == applied.value.reason == "no environment named 'b' is defined"
    assert planned.value.expected == applied.value.expected
    assert "(defined: a, default)" in applied.value.expected
    assert planned.value.cell == 2
    assert state.current == "a", "a refused switch changes nothing"


def test_grants_summary_is_one_line_for_describe_and_for_nbseal_run() -> None:
    sealed = grants_summary(network=False, shares=[], limits=DEFAULT_LIMITS)
    assert sealed.startswith("sealed: no network, no host files (seccomp profile")
    assert DEFAULT_LIMITS.describe() in sealed
    opened = grants_summary(
        network=True,
        shares=[(Path("/data/results"), "ro", "results")],
        limits=Limits(tasks=64),
        machine="kernels run as uid 1000000",
    )
    assert opened.startswith(
        "sealed; exceptions: network (#seal allow network), "
        "share /data/results (ro, written results), "
    )
    assert "limits: 64 processes" in opened
    assert "(#seal limit)" in opened
    assert opened.endswith("; kernels run as uid 1000000)")
