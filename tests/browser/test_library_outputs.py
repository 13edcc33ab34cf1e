"""What still works sealed: common libraries' outputs in JupyterLab 4 and Notebook 7.

One environment (built once, shared by both frontends through the browser
store) holds matplotlib, pandas, sympy, Altair, Plotly, Bokeh, folium and
ipywidgets. One notebook runs a cell per library output sealed, another the
same cells with ``#seal allow javascript``; each cell's DOM is checked
against what docs/security.md ("Sealed outputs") says it shows. The page is
offline, as on the test machines (requests leaving the Jupyter server are
aborted and listed in ``<test>.offline.txt``), so what needs a CDN is seen
failing here whatever the machine's network. Every cell is photographed
(``<test>-<cell>.png``) and summarised (``<test>.dom.json``) under
``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.ui import BUILD_TIMEOUT, Notebook, Run, artifact

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1500)]

ENV = (
    "#seal env libs <- matplotlib pandas jinja2 sympy altair plotly nbformat bokeh folium"
    " ipywidgets==8.1.5 pin=2025-06-01"
)
SETUP = f"""{ENV}
import altair as alt, folium, ipywidgets as widgets, matplotlib.pyplot as plt, pandas as pd
import plotly.express as px, plotly.io as pio, sympy
from bokeh.io import output_notebook, show
from bokeh.plotting import figure
from bokeh.resources import INLINE
from IPython.display import display
df = pd.DataFrame({{'a': range(1, 11), 'b': [3, 9, 4, 8, 1, 7, 2, 10, 5, 6]}})
print('renderers', pio.renderers.default, alt.renderers.active)"""

# One cell per library output, run in this order.
CELLS = {
    "matplotlib-png": (
        "plt.figure(figsize=(4, 3))\nplt.plot(df.a, df.b, 'o', color='red', markersize=12)\n"
        "plt.show()"
    ),
    # Markers only: in the SVG they are <use href="#marker">, which the policy must keep.
    "matplotlib-svg": (
        "%config InlineBackend.figure_formats = ['svg']\n"
        "plt.figure(figsize=(4, 3))\nplt.plot(df.a, df.b, 'o', color='red', markersize=12)\n"
        "plt.show()\n%config InlineBackend.figure_formats = ['png']"
    ),
    "pandas-dataframe": "df",
    "pandas-styler-highlight": "df.style.highlight_max(color='yellow')",
    "pandas-styler-gradient": "df.style.background_gradient(cmap='Blues')",
    "sympy-latex": (
        "sympy.init_printing()\nx = sympy.Symbol('x')\n"
        "sympy.Integral(sympy.sqrt(x) / (1 + x**2), x)"
    ),
    "altair-default": "chart = alt.Chart(df).mark_point().encode(x='a', y='b')\nchart",
    "altair-mimetype": "alt.renderers.enable('mimetype')\nchart",
    "plotly-default": "fig = px.scatter(df, x='a', y='b')\nfig.show()",
    "plotly-notebook": "fig.show(renderer='notebook')",
    "bokeh-load": "output_notebook(resources=INLINE)",
    "bokeh-show": "p = figure(width=400, height=250)\np.scatter(df.a, df.b, size=10)\nshow(p)",
    "folium": "folium.Map(location=[48.85, 2.35], zoom_start=5)",
    "ipywidgets": (
        "slider = widgets.IntSlider(value=3, min=1, max=10, description='rows')\n"
        "def head(n):\n"
        "    print('rows', n)\n"
        "    display(df.head(n))\n"
        "widgets.interact(head, n=slider);"
    ),
}

WITHHELD = "output withheld from the page"
SCRIPTS_REMOVED = "scripts and frames were removed from this output"
PLOTLY = "application/vnd.plotly.v1+json"

# Counts of what each cell's outputs hold, through open shadow roots (Bokeh
# draws in them): the artifact that says what rendered, beside the screenshot.
_SUMMARY_JS = """
(area) => {
  const all = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      all.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  const outputs = Array.from(
    area.querySelectorAll(':scope > .jp-OutputArea-child > .jp-OutputArea-output'));
  outputs.forEach(walk);
  const count = (selector) => all.filter((el) => el.matches(selector)).length;
  return {
    mimes: outputs.map((o) => o.getAttribute('data-mime-type') || ''),
    text: (area.innerText || '').trim().slice(0, 300),
    counts: Object.fromEntries(['img', 'svg', 'canvas', 'iframe', 'table', 'mjx-container',
      '.vega-embed', '.js-plotly-plot', '.main-svg', '[class^="bk-"]', 'script']
      .map((s) => [s, count(s)]).filter(([, n]) => n)),
  };
}
"""

# An image's size and how many of its pixels are the plots' red.
_RED_PIXELS_JS = """
async (img) => {
  await img.decode().catch(() => {});
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let red = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] > 200 && data[i + 1] < 80 && data[i + 2] < 80 && data[i + 3] > 200) red++;
  }
  return {width: img.naturalWidth, height: img.naturalHeight, red};
}
"""

TRANSPARENT = "rgba(0, 0, 0, 0)"
YELLOW = "rgb(255, 255, 0)"


def background(cell: Locator) -> str:
    return str(cell.evaluate("(el) => getComputedStyle(el).backgroundColor"))


def red_image(area: Locator, selector: str) -> None:
    image = area.locator(selector)
    expect(image).to_have_count(1)
    expect(image).to_be_visible()
    drawn = image.evaluate(_RED_PIXELS_JS)
    assert drawn["width"] > 100, drawn
    assert drawn["height"] > 100, drawn
    # Ten markers of 12 points: thousands of red pixels; none if they were lost.
    assert drawn["red"] > 1000, f"the markers are missing: {drawn}"


def withheld(area: Locator, *mimes: str) -> None:
    expect(area).to_contain_text(f"{WITHHELD} ({', '.join(mimes)})")


def nothing_drawn(area: Locator) -> None:
    shown = area.locator(".jp-OutputArea-output")
    for selector in ("canvas", "svg", "iframe", ".vega-embed", ".main-svg", "script"):
        expect(shown.locator(selector)).to_have_count(0)


# -- what each cell shows: sealed, and with the grant ---------------------------
def check_matplotlib_png(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    red_image(area, ".jp-RenderedImage img[src^='data:image/png']")


def check_matplotlib_svg(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    # Both frontends show SVG as an <img> of a data: URL (so nothing in it runs anyway).
    expect(area.locator("[data-mime-type='image/svg+xml']")).to_have_count(1)
    red_image(area, ".jp-RenderedSVG img[src^='data:image/svg+xml']")


def check_pandas_dataframe(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    table = area.locator("table.dataframe")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(10)
    # pandas' own <style> applied: header cells right-aligned.
    header = table.locator("thead th").nth(1)
    assert header.evaluate("(el) => getComputedStyle(el).textAlign") == "right"


def check_pandas_styler_highlight(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    table = area.locator("table[id^='T_']")
    expect(table).to_be_visible()
    # Column maxima: a = 10 (row 9), b = 10 (row 7); the Styler's <style> colours them by id.
    assert background(table.locator("td[id$='_row9_col0']")) == YELLOW
    assert background(table.locator("td[id$='_row7_col1']")) == YELLOW
    assert background(table.locator("td[id$='_row0_col0']")) == TRANSPARENT


def check_pandas_styler_gradient(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    table = area.locator("table[id^='T_']")
    expect(table).to_be_visible()
    low = background(table.locator("td[id$='_row4_col1']"))  # b = 1
    high = background(table.locator("td[id$='_row7_col1']"))  # b = 10
    assert TRANSPARENT not in (low, high), (low, high)
    assert high == "rgb(8, 48, 107)", high  # the end of matplotlib's Blues
    assert low != high


def check_sympy_latex(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    expect(area.locator("[data-mime-type='text/latex']")).to_have_count(1)
    expect(area.locator("mjx-container").first).to_be_visible(timeout=30_000)
    assert "\\displaystyle" not in (area.inner_text() or "")


def check_altair_default(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    # Altair 5's default renderer is HTML that loads Vega from cdn.jsdelivr.net.
    expect(area.locator("[data-mime-type='text/html']")).to_have_count(1)
    if granted:
        expect(area).to_contain_text("Error loading script", timeout=30_000)  # offline
    else:
        expect(area).to_contain_text(SCRIPTS_REMOVED)
    expect(area.locator(".vega-embed canvas, .vega-embed svg")).to_have_count(0)


def check_altair_mimetype(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    if granted:
        drawn = area.locator(".vega-embed canvas, .vega-embed svg").first
        expect(drawn).to_be_visible(timeout=30_000)
    else:
        withheld(area, "application/vnd.vegalite.v5+json")


def check_plotly_default(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    if granted:
        # The page got the bundle but has no renderer for it, and shows nothing:
        # the renderer is the jupyterlab-plotly extension, which the plotly
        # package installs in the Jupyter server's environment, not here.
        bundles = [
            m.content.get("data", {}) for m in notebook.messages.children(run.request.msg_id)
        ]
        assert any(PLOTLY in data for data in bundles), bundles
        expect(area.locator(".jp-OutputArea-output")).to_have_count(0)
    else:
        withheld(area, PLOTLY)


def check_plotly_notebook(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    if granted:
        points = area.locator(".js-plotly-plot .scatterlayer .point")
        expect(points).to_have_count(10, timeout=60_000)
    else:
        # The figure's <div> is left, empty, after the note; plotly.js itself
        # (4.6 MB of inline script) is an output of its own, withheld.
        expect(area).to_contain_text(SCRIPTS_REMOVED)
        expect(area.locator(".plotly-graph-div")).to_have_count(1)
        expect(area.locator(".js-plotly-plot .point")).to_have_count(0)


def check_bokeh_load(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    if granted:
        expect(area).to_contain_text(re.compile(r"BokehJS [\d.]+ successfully loaded"))
    else:
        withheld(area, "application/javascript", "application/vnd.bokehjs_load.v0+json")


def check_bokeh_show(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    if granted:
        expect(area.locator("canvas").first).to_be_visible(timeout=30_000)
    else:
        withheld(area, "application/javascript", "application/vnd.bokehjs_exec.v0+json")


def check_folium(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    if granted:
        expect(area.locator("iframe")).to_have_count(1)
        inside = area.frame_locator("iframe")
        expect(inside.locator(".folium-map")).to_have_count(1)
        # Leaflet comes from cdn.jsdelivr.net: offline, the map stays empty.
        expect(inside.locator(".leaflet-container")).to_have_count(0)
    else:
        expect(area).to_contain_text(SCRIPTS_REMOVED)
        expect(area).to_contain_text("Make this Notebook Trusted to load map")
        expect(area.locator("iframe")).to_have_count(0)


def check_ipywidgets(notebook: Notebook, run: Run, granted: bool) -> None:
    area = notebook.output_area(run.index)
    handle = area.locator(".widget-slider [role='slider']")
    shown = area.locator(".widget-output")
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^3(\.0)?$"), timeout=60_000)
    expect(shown).to_contain_text("rows 3", timeout=60_000)
    expect(shown.locator("table.dataframe tbody tr")).to_have_count(3)
    value = notebook.drag_slider(area, start=3, fraction=0.6)
    expect(shown).to_contain_text(f"rows {value}", timeout=60_000)
    expect(shown.locator("table.dataframe tbody tr")).to_have_count(value)


CHECKS: dict[str, Callable[[Notebook, Run, bool], None]] = {
    "matplotlib-png": check_matplotlib_png,
    "matplotlib-svg": check_matplotlib_svg,
    "pandas-dataframe": check_pandas_dataframe,
    "pandas-styler-highlight": check_pandas_styler_highlight,
    "pandas-styler-gradient": check_pandas_styler_gradient,
    "sympy-latex": check_sympy_latex,
    "altair-default": check_altair_default,
    "altair-mimetype": check_altair_mimetype,
    "plotly-default": check_plotly_default,
    "plotly-notebook": check_plotly_notebook,
    "bokeh-load": check_bokeh_load,
    "bokeh-show": check_bokeh_show,
    "folium": check_folium,
    "ipywidgets": check_ipywidgets,
}
# Sealed, these draw nothing: no canvas, svg, iframe or script reaches the page.
DRAW_NOTHING_SEALED = (
    "altair-default",
    "altair-mimetype",
    "plotly-default",
    "plotly-notebook",
    "bokeh-load",
    "bokeh-show",
    "folium",
)


@pytest.mark.parametrize("grant", ["sealed", "allow-javascript"])
def test_library_outputs(notebook: Notebook, grant: str, artifact_name: str) -> None:
    granted = grant == "allow-javascript"
    started = time.monotonic()
    base = notebook.server.base
    offline: list[str] = []

    def abort(route: Any) -> None:
        offline.append(route.request.url)
        route.abort()

    notebook.page.context.route(lambda url: not url.startswith(base), abort)

    setup = ("#seal allow javascript\n" if granted else "") + SETUP
    ready = notebook.run_new(setup, BUILD_TIMEOUT)
    assert ready.status == "ok", ready.reply.content
    # After the environment's summary line, on the same text line in the DOM.
    notebook.expect_output(ready.index, r"renderers plotly_mimetype default$")

    problems: list[str] = []
    indexes: dict[str, int] = {}
    summary: dict[str, Any] = {}
    for key, code in CELLS.items():
        try:
            run = notebook.run_new(code)
        except AssertionError as exc:  # the cell never finished: the rest cannot run
            notebook.screenshot(f"{artifact_name}-{key}-STUCK")
            raise AssertionError(f"{key}: the cell did not finish: {exc}") from None
        indexes[key] = run.index
        area = notebook.output_area(run.index)
        try:
            assert run.status == "ok", run.reply.content
            CHECKS[key](notebook, run, granted)
        except AssertionError as exc:
            problems.append(f"{key}: {exc}")
        summary[key] = area.evaluate(_SUMMARY_JS)
        notebook.cell(run.index).screenshot(path=str(artifact(f"{artifact_name}-{key}.png")))

    if not granted:
        # Late scripts would have drawn by now; sealed, there are none.
        notebook.page.wait_for_timeout(2000)
        for key in DRAW_NOTHING_SEALED:
            try:
                nothing_drawn(notebook.output_area(indexes[key]))
            except AssertionError as exc:
                problems.append(f"{key}: drew something sealed: {exc}")

    artifact(f"{artifact_name}.dom.json").write_text(json.dumps(summary, indent=1))
    artifact(f"{artifact_name}.offline.txt").write_text(
        "\n".join(sorted({re.sub(r"\?.*", "", url) for url in offline})) + "\n"
    )
    print(f"{artifact_name}: {time.monotonic() - started:.0f} s")
    assert not problems, "\n".join(problems)
