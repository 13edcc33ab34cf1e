"""Shift+Enter to output in the DOM: nbseal against plain ipykernel, in one JupyterLab.

One JupyterLab server, one Chromium, two notebooks side by side: one with the
nbseal kernel (its environment already in the store and its kernel running),
one with the plain ``python3`` ipykernel kernel. Each round types the same
cell, ``print('<marker>')``, into each notebook in alternating order and
measures inside the page, with ``performance.now()``, from the Shift+Enter
keydown to the moment the marker appears in that cell's output area (a
MutationObserver on the output area, so no polling interval is added).

Run: ``python bench/bench_browser.py --rounds 30`` (needs Debian's chromium and
the ``test`` extra: playwright, jupyterlab). Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402
from tests.browser.ui import (  # noqa: E402
    BUILD_TIMEOUT,
    CHROMIUM,
    CHROMIUM_ARGS,
    KERNEL_DISPLAY_NAME,
    JupyterServer,
    KernelMessages,
    Notebook,
    open_new_notebook,
    start_server,
    stop_server,
)

from nbseal.kernel.kernelspec import install_kernelspec  # noqa: E402

NBSEAL = ("nbseal", KERNEL_DISPLAY_NAME)
PYTHON3 = ("python3", "Python 3 (ipykernel)")
# An environment defined in the first cell, then used by every timed cell.
DEFINE = "#seal env py <- six==1.17.0 pin=2025-06-01\nimport six"

_ARM = """
([area, marker]) => {
  window.__nbsealBench = {start: null, end: null};
  const state = window.__nbsealBench;
  // Not {once: true}: the Shift key's own keydown comes first.
  const onKey = (event) => {
    if (event.key === "Enter" && event.shiftKey && state.start === null) {
      state.start = performance.now();
      document.removeEventListener("keydown", onKey, {capture: true});
    }
  };
  document.addEventListener("keydown", onKey, {capture: true});
  const seen = () => area.textContent.includes(marker);
  const observer = new MutationObserver(() => {
    if (state.end === null && seen()) { state.end = performance.now(); observer.disconnect(); }
  });
  observer.observe(area, {subtree: true, childList: true, characterData: true});
}
"""


def time_cell(notebook: Notebook, index: int) -> float:
    """Milliseconds from Shift+Enter on cell ``index`` to its marker in the DOM."""
    page: Page = notebook.page
    page.bring_to_front()  # a background tab's timers are throttled
    marker = f"m-{uuid.uuid4().hex[:12]}"
    notebook.set_code(index, f"print('{marker}')")
    area = notebook.output_area(index).element_handle()
    page.evaluate(_ARM, [area, marker])
    page.keyboard.press("Shift+Enter")
    page.wait_for_function("() => window.__nbsealBench.end !== null", timeout=60_000)
    start, end = page.evaluate("() => [window.__nbsealBench.start, window.__nbsealBench.end]")
    # Shift+Enter moved the focus to the cell below; the next round types into this one again.
    return float(end) - float(start)


def open_notebook(
    browser: Browser, server: JupyterServer, workspace: str, kernel: tuple[str, str]
) -> Notebook:
    """A new notebook in a browser context of its own (its own message log)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    messages = KernelMessages()
    context.on("page", messages.attach)
    return open_new_notebook(context, server, messages, workspace, kernel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nbseal-bench-browser-"))
    install_kernelspec(prefix=str(work))
    os.environ["JUPYTER_PATH"] = str(work / "share" / "jupyter")
    cache = Path(os.environ.get("NBSEAL_CACHE_DIR", work / "cache"))
    server = start_server("lab", work / "home", cache)
    timings: dict[str, list[float]] = {"nbseal": [], "ipykernel": []}
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            sealed = open_notebook(browser, server, "bench-nbseal", NBSEAL)
            plain = open_notebook(browser, server, "bench-ipykernel", PYTHON3)
            defined = sealed.run(0, DEFINE, BUILD_TIMEOUT)
            assert defined.status == "ok", defined.reply.content
            plain.run(0, "import sys")
            notebooks = {"nbseal": sealed, "ipykernel": plain}
            for notebook in notebooks.values():
                time_cell(notebook, 1)  # untimed warm-up of each
            for round_ in range(args.rounds):
                order = list(notebooks) if round_ % 2 == 0 else list(reversed(notebooks))
                for name in order:
                    timings[name].append(time_cell(notebooks[name], 1))
            browser.close()
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)

    nbseal = statistics.median(timings["nbseal"])
    plain_ms = statistics.median(timings["ipykernel"])
    print(f"rounds: {args.rounds} (alternating, in-page performance.now())")
    for name, values in timings.items():
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(f"{name:10s} median {statistics.median(values):7.1f} ms   p90 {p90:7.1f} ms")
    print(f"ratio nbseal / ipykernel (median): {nbseal / plain_ms:.2f}x  (target < 1.2x)")


if __name__ == "__main__":
    main()
