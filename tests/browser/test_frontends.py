"""nbseal as a user meets it: in JupyterLab 4 and Notebook 7, in a real Chromium.

Every test runs once per frontend (``[lab]``, ``[notebook]``), in a notebook
it creates with the nbseal kernel. The assertions read the DOM (and, where the
DOM alone cannot tell, the kernel messages the page received); screenshots
land in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import platform
import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import BUILD_TIMEOUT, RUN_TIMEOUT, Notebook, Output, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1200)]

# Environments a single test must see built in front of it: one six version
# per frontend, so neither frontend finds the other's build in the store.
BUILT_HERE = {"lab": "1.16.0", "notebook": "1.15.0"}
STORED_HERE = {"lab": "1.14.0", "notebook": "1.13.0"}
# An environment the other tests share (built once, then reused).
SHARED = "six==1.17.0 pin=2025-06-01"

SUMMARY = re.compile(
    r"^✓ nbseal · (?P<env>[\w.-]+): (?P<count>\d+) packages, "
    r"(?P<how>built and stored|reused from the store|kernel already running)"
    r"(?: in [\d.]+ s)? \(key (?P<key>[0-9a-f]{12})\)$"
)
PROGRESS_MIME = "application/vnd.nbseal.progress+json"
LOCK_MIME = "application/vnd.nbseal.lock+json"


def summary_of(notebook: Notebook, index: int, env: str) -> re.Match[str]:
    """The one-line summary an environment's cell ends with."""
    lines = [o.text for o in notebook.outputs(index) if f"nbseal · {env}:" in o.text]
    assert len(lines) == 1, f"expected one nbseal display for {env!r}, found {lines}"
    match = SUMMARY.match(lines[0])
    assert match, f"not a one-line summary: {lines[0]!r}"
    return match


def describe_rows(notebook: Notebook, index: int) -> dict[str, dict[str, str]]:
    """The ``#seal describe`` table of cell ``index``: environment -> column -> text."""
    table = notebook.output_area(index).locator("table.nbseal-describe")
    expect(table).to_be_visible()
    headers = table.locator("thead th").all_text_contents()
    rows = {}
    for row in table.locator("tbody tr").all():
        cells = dict(zip(headers, row.locator(":scope > td").all_text_contents(), strict=True))
        rows[cells["environment"]] = cells
    return rows


def progress_states(states: list[list[Output]], env: str) -> list[str]:
    """The distinct texts the progress display of ``env`` went through, in order."""
    texts: list[str] = []
    for state in states:
        shown = [o for o in state if f"nbseal · {env}:" in o.text]
        assert len(shown) <= 1, f"progress shown as a log, not updated in place: {state}"
        if shown and (not texts or texts[-1] != shown[0].text):
            texts.append(shown[0].text)
    return texts


def test_progress_updates_in_place_then_summary_then_result(
    notebook: Notebook, frontend: str, artifact_name: str
) -> None:
    version = BUILT_HERE[frontend]
    code = (
        "#seal pin 2025-06-01\n"
        f"#seal env t <- six=={version}\n"
        "import six\n"
        "print('six', six.__version__)"
    )
    result = f"six {version}"
    watch = notebook.watch(0)
    request = notebook.submit(0, code)

    def building_or_done() -> bool:
        if notebook.messages.reply_to(request.msg_id):
            return True
        return any("… nbseal · t:" in o.text for o in notebook.outputs(0))

    wait_until(notebook.page, building_or_done, BUILD_TIMEOUT, "the progress display")
    if not notebook.messages.reply_to(request.msg_id):
        notebook.screenshot(f"{artifact_name}-building")  # the README's "while building"
    run = notebook.finish(0, request, BUILD_TIMEOUT)
    assert run.status == "ok", run.reply.content

    # The DOM: one display, changed at least twice before the result appeared,
    # ending in the one-line summary, then the result below it.
    states = notebook.watched(watch)
    first_result = next(
        (n for n, state in enumerate(states) if any(o.text == result for o in state)), None
    )
    assert first_result is not None, f"the result never appeared: {states[-1]}"
    before = progress_states(states[:first_result], "t")
    assert len(before) >= 3, f"the progress display changed fewer than twice: {before}"
    assert all("… nbseal · t:" in text for text in before[:-1]), before
    texts = progress_states(states, "t")
    match = SUMMARY.match(texts[-1])
    assert match, f"the display did not end in a one-line summary: {texts[-1]!r}"
    assert match["how"] == "built and stored", texts[-1]
    final = notebook.outputs(0)
    assert [o.text for o in final] == [texts[-1], result], final
    assert final[0].mime == "text/html", "the progress display is not rendered as HTML"

    # The kernel side: one display_data, then update_display_data of the same id,
    # each with HTML and a text/plain fallback; the summary carries the lock.
    shown = [
        m
        for m in notebook.messages.children(request.msg_id)
        if PROGRESS_MIME in m.content.get("data", {})
    ]
    assert shown, "no progress display reached the page"
    assert shown[0].msg_type == "display_data", [m.msg_type for m in shown]
    assert all(m.msg_type == "update_display_data" for m in shown[1:]), [m.msg_type for m in shown]
    assert len(shown) >= 3, [m.msg_type for m in shown]
    ids = {m.content.get("transient", {}).get("display_id") for m in shown}
    assert len(ids) == 1, ids
    assert None not in ids, "the progress display has no display_id"
    assert all({"text/html", "text/plain"} <= set(m.content["data"]) for m in shown)
    assert LOCK_MIME in shown[-1].content["data"]


def test_describe_renders_the_environment_table(notebook: Notebook, artifact_name: str) -> None:
    defined = notebook.run_new(f"#seal env d <- {SHARED}", BUILD_TIMEOUT)
    assert defined.status == "ok", defined.reply.content
    run = notebook.run_new("#seal describe")
    assert run.status == "ok", run.reply.content
    table = notebook.output_area(run.index).locator("table.nbseal-describe")
    expect(table).to_be_visible()
    headers = table.locator("thead th").all_text_contents()
    assert headers == [
        "environment",
        "kernel",
        "state",
        "language",
        "python",
        "pin",
        "packages",
        "store key",
        "sandbox",
    ]
    row = table.locator("tbody tr", has_text="d (current)")
    expect(row).to_have_count(1)
    cells = dict(zip(headers, row.locator(":scope > td").all_text_contents(), strict=True))
    assert cells["kernel"] == "python3"
    assert cells["language"] == "python"
    assert cells["pin"] == "2025-06-01T00:00:00Z"
    assert cells["python"] == platform.python_version()  # built with the one that locked it
    assert re.fullmatch(r"[0-9a-f]{12}", cells["store key"]), cells["store key"]
    assert "sealed" in cells["sandbox"], cells["sandbox"]
    # Packages: collapsed to a count, the versions one click away.
    packages = row.locator("details")
    expect(packages.locator("summary")).to_have_text(re.compile(r"^\d+ packages$"))
    expect(packages).to_have_js_property("open", False)
    packages.locator("summary").click()
    expect(packages).to_have_js_property("open", True)
    expect(packages).to_contain_text("six==1.17.0")
    notebook.screenshot(f"{artifact_name}-expanded")


def test_malformed_directive_names_its_line(notebook: Notebook) -> None:
    run = notebook.run_new("#seal pin 2025-06-01\n#seal env\nprint('this never runs')")
    assert run.status == "error", run.reply.content
    assert run.reply.content.get("ename") == "DirectiveError", run.reply.content
    outputs = notebook.outputs(run.index)
    assert len(outputs) == 1, outputs
    shown = outputs[0]
    assert shown.mime == "application/vnd.jupyter.stderr", shown
    lines = shown.text.splitlines()
    assert lines[0].startswith("DirectiveError: line 2:"), lines
    assert "#seal env" in shown.text
    assert "hint: expected" in shown.text, "the error does not say what to write"
    # Short, and no Python stack of nbseal itself; colours rendered, not escaped.
    assert len(lines) <= 4, lines
    for stack in ("Traceback", 'File "'):
        assert stack not in shown.text, shown.text
    for escape in ("\x1b", "[31m"):
        assert escape not in shown.text, shown.text
    expect(notebook.output_area(run.index).locator(".ansi-red-fg")).to_have_text("DirectiveError")
    assert "this never runs" not in notebook.output_text(run.index)
    # Nothing broke: the next cell runs.
    after = notebook.run_new("print('the next cell ran')")
    assert after.status == "ok", after.reply.content
    notebook.expect_output(after.index, r"the next cell ran")


@pytest.mark.parametrize("directive", ["#seal help", "#seal"])
def test_help_shows_the_directive_reference(notebook: Notebook, directive: str) -> None:
    run = notebook.run_new(directive)
    assert run.status == "ok", run.reply.content
    text = notebook.output_text(run.index)
    for expected in (
        "#seal env NAME <- REQ",
        "#seal env NAME",
        "#seal pin DATE",
        "#seal describe",
        "#seal help",
        "e.g. #seal env py <- ",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"


def test_ipywidgets_slider_drives_a_dependent_output(
    notebook: Notebook, artifact_name: str
) -> None:
    code = (
        "#seal env w <- ipywidgets==8.1.5 pin=2025-06-01\n"
        "import ipywidgets as widgets\n"
        "slider = widgets.IntSlider(value=1, description='n')\n"
        "widgets.interact(lambda n: print('doubled', 2 * n), n=slider);"
    )
    run = notebook.run_new(code, BUILD_TIMEOUT)
    assert run.status == "ok", run.reply.content
    area = notebook.output_area(run.index)
    handle = area.locator(".widget-slider [role='slider']")
    shown = area.locator(".widget-output")
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^1(\.0)?$"), timeout=60_000)
    expect(shown).to_have_text(re.compile(r"^\s*doubled 2\s*$"), timeout=60_000)
    value = notebook.drag_slider(area, start=1, fraction=0.4)
    expect(shown).to_have_text(re.compile(rf"^\s*doubled {2 * value}\s*$"), timeout=60_000)
    notebook.screenshot(f"{artifact_name}-moved")
    # The kernel holds the value the browser set.
    check = notebook.run_new("print('value', slider.value)")
    notebook.expect_output(check.index, rf"^value {value}$")


def test_widgets_render_again_after_a_reload(notebook: Notebook, frontend: str) -> None:
    """As with ipykernel, a reloaded page shows the live widgets of every environment."""
    made = notebook.run_new(
        "#seal env w <- ipywidgets==8.1.5 pin=2025-06-01\n"
        "import ipywidgets as widgets\n"
        "widgets.IntSlider(value=7, description='kept')",
        BUILD_TIMEOUT,
    )
    assert made.status == "ok", made.reply.content
    slider = notebook.output_area(made.index).locator(".widget-slider [role='slider']")
    expect(slider).to_have_attribute("aria-valuenow", re.compile(r"^7(\.0)?$"), timeout=60_000)
    notebook.save(f"widgets-{frontend}.ipynb")
    notebook.reload()
    expect(slider).to_have_attribute("aria-valuenow", re.compile(r"^7(\.0)?$"), timeout=60_000)

    # Another environment becomes current; the slider's kernel still runs.
    other = notebook.run_new(f"#seal env other <- {SHARED}\nprint('elsewhere')", BUILD_TIMEOUT)
    assert other.status == "ok", other.reply.content
    notebook.save(f"widgets-{frontend}.ipynb")
    notebook.reload()
    try:
        expect(slider).to_have_attribute("aria-valuenow", re.compile(r"^7(\.0)?$"), timeout=60_000)
    except AssertionError:
        shown = notebook.output_text(made.index)
        raise AssertionError(
            f"after a reload, with another environment current, the widget cell shows: {shown!r}"
        ) from None


def test_interrupt_from_toolbar_and_restart_from_menu(
    notebook: Notebook, artifact_name: str
) -> None:
    first = notebook.run_new(f"#seal env i <- {SHARED}\nx = 41", BUILD_TIMEOUT)
    assert first.status == "ok", first.reply.content
    index = notebook.last_index()
    request = notebook.submit(
        index, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\nprint('slept')"
    )
    notebook.expect_output(index, r"sleeping", timeout=RUN_TIMEOUT)
    notebook.interrupt_from_toolbar()
    run = notebook.finish(index, request, RUN_TIMEOUT)
    assert run.status == "error", run.reply.content
    assert run.reply.content.get("ename") == "KeyboardInterrupt", run.reply.content
    notebook.expect_output(index, r"KeyboardInterrupt")
    stdout = [o.text for o in notebook.outputs(index) if o.mime.endswith("stdout")]
    assert stdout == ["sleeping"], stdout
    # The kernel survived the interrupt, with its variables.
    after = notebook.run_new("print(x + 1)")
    notebook.expect_output(after.index, r"^42$")
    notebook.screenshot(f"{artifact_name}-interrupted")

    notebook.restart_from_menu()
    # A new kernel: the environment comes back from the store, the variables do not.
    again = notebook.run_new(f"#seal env i <- {SHARED}\nprint('x' in globals())", BUILD_TIMEOUT)
    assert again.status == "ok", again.reply.content
    assert summary_of(notebook, again.index, "i")["how"] == "reused from the store"
    notebook.expect_output(again.index, r"False")


def test_save_reload_rerun_comes_from_the_store(
    notebook: Notebook, frontend: str, artifact_name: str
) -> None:
    version = STORED_HERE[frontend]
    code = (
        f"#seal env r <- six=={version} pin=2025-06-01\nimport six\nprint('six', six.__version__)"
    )
    first = notebook.run(0, code, BUILD_TIMEOUT)
    assert first.status == "ok", first.reply.content
    assert summary_of(notebook, 0, "r")["how"] == "built and stored"

    notebook.save(f"stored-{frontend}.ipynb")  # the name, if the frontend asks for one
    saved = notebook.file()
    bundles = [o.get("data", {}) for o in saved["cells"][0].get("outputs", [])]
    locks = [b[LOCK_MIME] for b in bundles if LOCK_MIME in b]
    assert len(locks) == 1, f"the saved cell holds no lock: {bundles}"
    assert locks[0]["environment"] == "r"

    notebook.reload()
    notebook.expect_output(0, r"built and stored")  # the saved outputs came back
    watch = notebook.watch(0)
    rerun = notebook.run(0, None, BUILD_TIMEOUT)
    assert rerun.status == "ok", rerun.reply.content
    notebook.expect_output(0, rf"six {re.escape(version)}")
    assert not [t for t in progress_states(notebook.watched(watch), "r") if "…" in t]
    # Checked last, so the restart below is exercised whatever this says.
    after_reload = summary_of(notebook, 0, "r")["how"]
    notebook.screenshot(f"{artifact_name}-rerun-after-reload")

    notebook.restart_from_menu()
    watch = notebook.watch(0)
    again = notebook.run(0, None, BUILD_TIMEOUT)
    assert again.status == "ok", again.reply.content
    assert summary_of(notebook, 0, "r")["how"] == "reused from the store"
    steps = progress_states(notebook.watched(watch), "r")
    assert not [t for t in steps if "…" in t], f"a stored environment showed build steps: {steps}"

    # The new kernel read the saved notebook (JPY_SESSION_NAME): its lock is
    # used while it fits, and reported as stale once the pin changes.
    stale = notebook.run_new(
        f"#seal env r <- six=={version} pin=2025-06-02\nimport six\nprint('six', six.__version__)",
        BUILD_TIMEOUT,
    )
    assert stale.status == "ok", stale.reply.content
    notebook.expect_output(stale.index, r"the lock stored in this notebook for 'r' is stale")

    assert after_reload == "kernel already running", (
        "re-running the cell after a reload (same kernel) says the environment was "
        f"{after_reload!r}, though nothing was built: the summary of the first run is shown again"
    )


def test_two_languages_in_one_notebook(notebook: Notebook) -> None:
    bash = notebook.run_new(
        "#seal env sh <- bash_kernel kernel=bash pin=2025-06-01\n"
        'echo "hello from bash ${BASH_VERSINFO[0]}"',
        BUILD_TIMEOUT,
    )
    assert bash.status == "ok", bash.reply.content
    notebook.expect_output(bash.index, r"hello from bash \d")
    python = notebook.run_new(
        f"#seal env py <- {SHARED}\nimport sys\nprint('hello from python', sys.version_info.major)",
        BUILD_TIMEOUT,
    )
    assert python.status == "ok", python.reply.content
    notebook.expect_output(python.index, r"hello from python 3")
    back = notebook.run_new('#seal env sh\necho "back in bash"')
    notebook.expect_output(back.index, r"back in bash")
    run = notebook.run_new("#seal describe")
    rows = describe_rows(notebook, run.index)
    assert rows["sh (current)"]["language"] == "bash", rows
    assert rows["py"]["language"] == "python", rows


def test_the_page_sees_only_replies_to_its_own_requests(notebook: Notebook, frontend: str) -> None:
    """The proxy's own talk with its kernels (kernel_info, shutdown) stays inside it.

    A frontend sets its kernel indicator from every status message it gets, so
    a sub-kernel's idle for the proxy's kernel_info_request shows "Idle" while
    the cell still runs.
    """
    first = notebook.run_new(f"#seal env q <- {SHARED}\nprint('first')", BUILD_TIMEOUT)
    assert first.status == "ok", first.reply.content
    # Redefining the environment makes the proxy stop one kernel and start another.
    changed = notebook.run_new(
        f"#seal env q <- six=={BUILT_HERE[frontend]} pin=2025-06-01\nprint('second')",
        BUILD_TIMEOUT,
    )
    assert changed.status == "ok", changed.reply.content
    notebook.expect_output(changed.index, r"second")
    log = notebook.messages.log
    sent = {m.msg_id for m in log if m.direction == "sent"}
    # Before the first cell, jupyter_server's own kernel_info "nudges" are answered
    # on iopub, as with any kernel; only what comes after is checked.
    start = next(n for n, m in enumerate(log) if m.msg_id == first.request.msg_id)
    foreign = [
        str(m)
        for m in log[start:]
        if m.direction == "received" and m.parent_id and m.parent_id not in sent
    ]
    assert not foreign, "messages answering requests the page never sent:\n" + "\n".join(foreign)


def test_completion_and_inspection_follow_the_environment(notebook: Notebook) -> None:
    """Tab and Shift+Tab reach the current environment's kernel, in its language."""
    page = notebook.page
    completer = page.locator(".jp-Completer")
    python = notebook.run_new(f"#seal env cp <- {SHARED}\nimport os", BUILD_TIMEOUT)
    assert python.status == "ok", python.reply.content
    index = notebook.last_index()
    notebook.set_code(index, "os.getcw")
    page.keyboard.press("Tab")
    expect(completer.locator(".jp-Completer-item", has_text="getcwdb")).to_be_visible(
        timeout=30_000
    )
    page.keyboard.press("Escape")
    notebook.set_code(index, "os.getcwd(")
    page.keyboard.press("Shift+Tab")
    tooltip = page.locator(".jp-Tooltip")
    expect(tooltip).to_contain_text("current working directory", timeout=30_000)
    page.keyboard.press("Escape")
    notebook.set_code(index, "")

    bash = notebook.run_new(
        "#seal env sh <- bash_kernel kernel=bash pin=2025-06-01\necho ready", BUILD_TIMEOUT
    )
    assert bash.status == "ok", bash.reply.content
    index = notebook.last_index()
    notebook.set_code(index, "ech")
    page.keyboard.press("Tab")
    editor = notebook.cell(index).locator(".cm-content")

    def completed() -> bool:
        # One match is inserted at once; several open the completer.
        shown = completer.locator(".jp-Completer-item", has_text="echo").count() > 0
        return shown or (editor.text_content() or "").strip() == "echo"

    wait_until(page, completed, 30, "bash's completion of 'ech'")
