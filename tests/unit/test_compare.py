"""Output normalisation and diffs for `nbseal verify` (pure)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from nbseal.compare import (
    DEFAULT_SANITIZERS,
    author_folder,
    author_folder_sanitizer,
    diff_outputs,
    figure_text,
    has_image,
    load_sanitizers,
    normal_error,
    normalise_outputs,
)
from nbseal.errors import NotebookError
from tests.bounded import stdout_within


def stream(text: str, name: str = "stdout") -> dict[str, object]:
    return {"output_type": "stream", "name": name, "text": text}


def data(bundle: dict[str, object]) -> dict[str, object]:
    return {"output_type": "display_data", "data": bundle, "metadata": {}}


def png(width: int, height: int, changed: int = 0) -> str:
    image = Image.new("RGB", (width, height), "white")
    for x in range(changed):
        image.putpixel((x, 0), (255, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_addresses_timings_and_nbseal_displays_are_normalised_away() -> None:
    first = [
        stream("<object object at 0x7f3a2c1b9e40>\n"),
        stream("CPU times: user 3 µs, sys: 0 ns, total: 3 µs\nWall time: 5.25 µs\n"),
        data({"text/plain": "✓ nbseal · py: ...", "application/vnd.nbseal.progress+json": {}}),
        stream("nbseal: environment 'py' is resolved as of 2026-11-29T02:00:00Z\n"),
    ]
    second = [
        stream("<object object at 0x7f99aa001122>\n"),
        stream("CPU times: user 9 µs, sys: 1 µs, total: 10 µs\nWall time: 11 µs\n"),
    ]
    assert normalise_outputs(first, DEFAULT_SANITIZERS) == normalise_outputs(
        second, DEFAULT_SANITIZERS
    )
    assert normalise_outputs(second, DEFAULT_SANITIZERS)[0][0] == "stream:stdout", "merged"


def test_a_warning_is_compared_without_where_it_was_raised() -> None:
    # pysindy's feature overview, run from the author's checkout, and again from
    # pysindy 1.3.0 in site-packages, whose line numbers moved
    stored = (
        "/home/brian/Documents/Dropbox (uwamath)/Brian/Research/SINDy/pysindy/pysindy/"
        "optimizers/sr3.py:266: ConvergenceWarning: SR3._reduce did not converge after 30 "
        "iterations.\n  ConvergenceWarning,\n"
    )
    fresh = (
        "/tmp/x/envs/ab12/lib/python3.6/site-packages/pysindy/optimizers/sr3.py:269: "
        "ConvergenceWarning: SR3._reduce did not converge after 30 iterations.\n"
        "  ConvergenceWarning,\n"
    )
    first, second = (
        normalise_outputs([stream(text, "stderr")], DEFAULT_SANITIZERS) for text in (stored, fresh)
    )
    assert first == second
    assert first[0][1].startswith("WARNING: ConvergenceWarning: SR3._reduce")
    # Another category or message still differs.
    other = fresh.replace("30 iterations", "31 iterations")
    assert normalise_outputs([stream(other, "stderr")], DEFAULT_SANITIZERS) != first
    # A line that only looks like a place is kept.
    kept = "ratio 3:2: NotAWarning\n"
    assert normalise_outputs([stream(kept)], DEFAULT_SANITIZERS)[0][1] == kept


def test_an_address_printed_without_its_0x_is_normalised_away() -> None:
    # iminuit 1.3's repr (a C++ object's address, printed with %x).
    first = [result("<ValueView of Minuit at 7fcf91b3ca98>")]
    second = [result("<ValueView of Minuit at 55bbe8eb0b50>")]
    assert normalise_outputs(first, DEFAULT_SANITIZERS) == normalise_outputs(
        second, DEFAULT_SANITIZERS
    )
    # A number is not an address: only hex digits between " at " and ">" are.
    other = [result("<Meeting at 20190313 in room 12>")]
    changed = [result("<Meeting at 20190314 in room 12>")]
    assert normalise_outputs(other, DEFAULT_SANITIZERS) != normalise_outputs(
        changed, DEFAULT_SANITIZERS
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # nbseal run's folder, then the kernel's, as os.getcwd() prints them
        (
            "/tmp/nbseal-run-9g5q5tcg/nbseal-4hrfjh4j/work",
            "/tmp/nbseal-run-yow72fik/nbseal-ad_r2ycg/work",
        ),
        # a JupyterLab session's, inside a path and a repr
        (
            "PosixPath('/var/tmp/x/nbseal-abcd1234/work/out.csv')",
            "PosixPath('/tmp/nbseal-zz99yy88/work/out.csv')",
        ),
    ],
)
def test_the_kernels_scratch_working_directory_is_normalised_away(first: str, second: str) -> None:
    one = normalise_outputs([stream(first + "\n")], DEFAULT_SANITIZERS)
    assert one == normalise_outputs([stream(second + "\n")], DEFAULT_SANITIZERS)
    assert "WORKDIR" in one[0][1]


@pytest.mark.parametrize(
    "other",
    [
        "/tmp/nbseal-run-9g5q5tcg/nbseal-4hrfjh4j/workshop",  # another folder
        "/home/ada/nbseal-notes/work",  # not one of nbseal's scratch names
    ],
)
def test_other_paths_that_look_alike_are_kept(other: str) -> None:
    assert "WORKDIR" not in normalise_outputs([stream(other)], DEFAULT_SANITIZERS)[0][1]


@pytest.mark.parametrize(
    ("author", "here"),
    [
        # a module's file, printed: the author's conda environment (CPython 3.6)
        # and nbseal's store (3.7)
        (
            "/Users/holmgren/miniconda3/envs/pvlibfx36/lib/python3.6/site-packages/"
            "pvlib/__init__.py\n",
            "/root/.cache/nbseal/envs/74c4cabb8574d256941031f5db7e21e5/lib/python3.7/"
            "site-packages/pvlib/__init__.py\n",
        ),
        # a module's repr, Debian's dist-packages against a venv's
        (
            "<module 'numpy' from '/usr/lib/python3/dist-packages/numpy/__init__.py'>",
            "<module 'numpy' from '/opt/venv/lib/python3.11/site-packages/numpy/__init__.py'>",
        ),
    ],
)
def test_where_packages_are_installed_is_normalised_away(author: str, here: str) -> None:
    one = normalise_outputs([stream(author)], DEFAULT_SANITIZERS)
    assert one == normalise_outputs([stream(here)], DEFAULT_SANITIZERS)
    assert "SITE-PACKAGES/" in one[0][1]


@pytest.mark.parametrize(
    "other",
    [
        "/home/ada/site-packages/notes.txt",  # a folder of that name, not an install
        "/home/ada/lib/python3.6/notes/site-packages/x",  # not directly under lib/pythonX.Y
        "/srv/lib/python3.11/site-packages-old/x",  # another folder
    ],
)
def test_site_packages_look_alikes_are_kept(other: str) -> None:
    assert normalise_outputs([stream(other)], DEFAULT_SANITIZERS)[0][1] == other


def test_a_progress_bar_compares_with_its_stored_last_state() -> None:
    # tqdm's updates as the re-run gets them (one stream output each), against
    # what JupyterLab stored of the author's run: the bar's last state.
    updates = ["\r  0%|          | 0/50 [00:00<?, ?it/s]"]
    updates += [f"\r{10 * n:3d}%|{'█' * n:10}| {5 * n}/50 [00:00<00:00, 49.04it/s]" for n in (1, 9)]
    updates += ["\r100%|██████████| 50/50 [00:01<00:00, 48.64it/s]", "\n"]
    rerun = normalise_outputs([stream(u, "stderr") for u in updates], DEFAULT_SANITIZERS)
    stored = "100%|██████████| 50/50 [00:06<00:00, 815.49it/s]\n"
    assert rerun == normalise_outputs([stream(stored, "stderr")], DEFAULT_SANITIZERS)
    # A bar that stopped elsewhere is a difference.
    stopped = "100%|██████████| 49/50 [00:06<00:00, 815.49it/s]\n"
    assert rerun != normalise_outputs([stream(stopped, "stderr")], DEFAULT_SANITIZERS)


@pytest.mark.parametrize(
    "bar",
    [
        "100%|##########| 5000/5000 [00:06<00:00, 815.49it/s]",
        " 40%|####      | 2/5 [1:02:03<1:33:04, 1861.50s/it]",
        "100%|██████████| 1.20G/1.20G [00:12<00:00, 99.8MB/s]",
        "  0%|          | 0/50 [00:00<?, ?it/s]",
    ],
)
def test_a_progress_bar_s_clock_is_normalised_away(bar: str) -> None:
    (only,) = normalise_outputs([stream(bar)], DEFAULT_SANITIZERS)
    assert "[ELAPSED<REMAINING, RATE]" in only[1]
    assert only[1].split(" [")[0] == bar.split(" [")[0]  # the count and bar stay


def test_a_long_path_like_output_is_normalised_in_one_pass() -> None:
    # A cell printing 400 KB of "/a/a/a...": the working-directory pattern, tried
    # from every "/", took minutes (hostile or not, verify must get through it).
    code = (
        "from nbseal.compare import DEFAULT_SANITIZERS, normalise_outputs\n"
        "text = '/a' * 200_000 + ' /tmp/nbseal-ab12cd34/work\\n'\n"
        "out = {'output_type': 'stream', 'name': 'stdout', 'text': text}\n"
        "print(normalise_outputs([out], DEFAULT_SANITIZERS)[0][1][-9:])\n"
    )
    assert stdout_within(code) == " WORKDIR\n\n"


def test_the_author_s_folder_is_found_where_outputs_print_it() -> None:
    # IPython's "Beyond Plain Python" and "Importing Notebooks", run by their author.
    printed = [
        "/Users/minrk/dev/ip/mine/examples/IPython Kernel\r\n",
        "importing notebook from "
        "/Users/minrk/dev/ip/mine/examples/IPython Kernel/nbpackage/nb.ipynb\n",
        "'/Users/minrk/dev/ip/mine/IPython/utils/inside_ipython.ipynb'",
    ]
    folder = author_folder(printed, "IPython Kernel")
    assert folder == "/Users/minrk/dev/ip/mine/examples/IPython Kernel"
    sanitizers = (*DEFAULT_SANITIZERS, author_folder_sanitizer(folder))
    ours = (
        "importing notebook from /tmp/nbseal-run-ab12cd34/nbseal-ef56gh78/work/nbpackage/nb.ipynb\n"
    )
    assert normalise_outputs([stream(printed[1])], sanitizers) == normalise_outputs(
        [stream(ours)], sanitizers
    )
    # A sibling whose name only starts with the folder's is not the folder.
    sibling = "/Users/minrk/dev/ip/mine/examples/IPython Kernels/x\n"
    assert normalise_outputs([stream(sibling)], sanitizers)[0][1] == sibling


@pytest.mark.parametrize(
    "printed",
    [
        ["nothing printed here"],
        ["/home/ada/notebooks-old/x.csv"],  # the name, but not as a whole component
        ["a relative notebooks/x.csv"],  # no absolute path
    ],
)
def test_no_author_folder_without_an_absolute_path_naming_it(printed: list[str]) -> None:
    assert author_folder(printed, "notebooks") is None


def test_the_author_folder_printed_most_often_wins() -> None:
    printed = ["/a/notebooks\n", "/b/notebooks/x\n", "/b/notebooks/y\n"]
    assert author_folder(printed, "notebooks") == "/b/notebooks"
    assert author_folder(printed, "") is None


def test_a_text_difference_is_a_unified_diff() -> None:
    stored = normalise_outputs([stream("a\nb\nc\n")], DEFAULT_SANITIZERS)
    fresh = normalise_outputs([stream("a\nB\nc\n")], DEFAULT_SANITIZERS)
    diff = diff_outputs(stored, fresh)
    assert diff[0] == "stream:stdout:"
    assert "-b" in diff
    assert "+B" in diff
    assert diff_outputs(stored, stored) == []


def test_html_and_json_are_compared_normalised() -> None:
    one = [data({"text/html": "<b>x</b>\n   <i>y</i>", "application/json": {"b": 1, "a": 2}})]
    two = [data({"text/html": "<b>x</b><i>y</i>", "application/json": {"a": 2, "b": 1}})]
    assert (
        diff_outputs(
            normalise_outputs(one, DEFAULT_SANITIZERS), normalise_outputs(two, DEFAULT_SANITIZERS)
        )
        == []
    )


def test_images_are_ignored_by_default_and_measured_on_request() -> None:
    stored = [data({"image/png": png(10, 10), "text/plain": "<Figure>"})]
    fresh = [data({"image/png": png(10, 10, changed=5), "text/plain": "<Figure>"})]
    plain = [normalise_outputs(o, DEFAULT_SANITIZERS) for o in (stored, fresh)]
    assert diff_outputs(*plain) == []
    compared = [normalise_outputs(o, DEFAULT_SANITIZERS, images=True) for o in (stored, fresh)]
    assert diff_outputs(*compared) == [
        "data:image/png: image differs (5 of 100 pixels differ (5.00%))"
    ]
    resized = [data({"image/png": png(20, 10), "text/plain": "<Figure>"})]
    grown = normalise_outputs(resized, DEFAULT_SANITIZERS, images=True)
    assert "size 10x10 became 20x10" in diff_outputs(compared[0], grown)[0]


def test_a_missing_output_is_named() -> None:
    stored = normalise_outputs([stream("x\n")], DEFAULT_SANITIZERS)
    diff = diff_outputs(stored, [])
    assert diff == ["outputs differ: stored ['stream:stdout'], got []"]


def test_errors_compare_name_and_value_not_the_traceback() -> None:
    one = [{"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["a"]}]
    two = [{"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["b"]}]
    assert normalise_outputs(one, ()) == normalise_outputs(two, ()) == [("error", "E: v")]


def test_sanitiser_files_in_nbval_format(tmp_path: Path) -> None:
    good = tmp_path / "good.cfg"
    good.write_text("[date]\nregex: \\d{4}-\\d{2}-\\d{2}\nreplace: DATE\n")
    (sanitizer,) = load_sanitizers(good)
    assert sanitizer.apply("on 2025-06-01.") == "on DATE."
    bad = tmp_path / "bad.cfg"
    bad.write_text("[broken]\nregex: (unclosed\n")
    with pytest.raises(NotebookError, match=r"section \[broken\].*bad regex"):
        load_sanitizers(bad)
    missing = tmp_path / "missing.cfg"
    missing.write_text("[x]\nreplace: y\n")
    with pytest.raises(NotebookError, match="has no regex"):
        load_sanitizers(missing)


def result(text: str) -> dict[str, object]:
    return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}}


@pytest.mark.parametrize(
    "text",
    [
        "<Figure size 432x288 with 1 Axes>",
        "<matplotlib.axes._subplots.AxesSubplot at 0x7f3a2c1b9e40>",
        "<Axes: >",
        "<AxesSubplot:xlabel='x', ylabel='y'>",
        "[<matplotlib.lines.Line2D at 0x7f3a2c1b9e40>]",
        "Text(0.5, 1.0, 'A title (with parentheses)')",
        "Text(0.5,1,'matplotlib 2')",
        "[Text(0, 0, 'a'), Text(1, 0, 'b')]",
        "(<Figure size 640x480 with 2 Axes>, array([<Axes: >, <Axes: >], dtype=object))",
        "<BarContainer object of 3 artists>",
    ],
)
def test_figure_text_is_matplotlib_reprs_only(text: str) -> None:
    assert figure_text(text)
    assert not figure_text(text + " and 42")


@pytest.mark.parametrize("text", ["42", "<object object at 0x7f3a2c1b9e40>", "array([1, 2])", ""])
def test_other_text_is_no_figure_text(text: str) -> None:
    assert not figure_text(text)


def test_a_figure_s_text_is_ignored_beside_an_image_only() -> None:
    stored = [
        result("Text(0.5, 1.0, 'sine')"),
        data({"image/png": png(4, 4), "text/plain": "<Figure size 432x288 with 1 Axes>"}),
    ]
    fresh = [
        result("Text(0.5, 1.0, 'sine')"),
        data({"image/png": png(4, 4), "text/plain": "<Figure size 640x480 with 1 Axes>"}),
    ]
    assert has_image(stored)
    plain = [normalise_outputs(o, DEFAULT_SANITIZERS) for o in (stored, fresh)]
    assert diff_outputs(*plain) != [], "without an image in the cell, the text is compared"
    figures = [normalise_outputs(o, DEFAULT_SANITIZERS, figures=True) for o in (stored, fresh)]
    assert diff_outputs(*figures) == []
    # The image itself still counts: a figure that is gone is a difference.
    gone = normalise_outputs([result("Text(0.5, 1.0, 'sine')")], DEFAULT_SANITIZERS, figures=True)
    assert diff_outputs(figures[0], gone) == ["outputs differ: stored ['figure'], got []"]
    # A cell that only prints such a repr, with no image on either side, is compared.
    only_text = [result("<Figure size 432x288 with 0 Axes>")]
    assert not has_image(only_text)
    other = normalise_outputs([result("<Figure size 640x480 with 0 Axes>")], DEFAULT_SANITIZERS)
    assert diff_outputs(normalise_outputs(only_text, DEFAULT_SANITIZERS), other) != []


def test_matplotlib_s_cannot_show_warning_is_ignored_beside_an_image_only() -> None:
    """pysindy's examples call fig.show(); under ipykernel 5's inline backend matplotlib
    warned that it cannot show the figure, and showed it at the cell's end all the same."""
    warning = (
        "/home/a/pysindy/examples/x.py:12: UserWarning: Matplotlib is currently using "
        "module://ipykernel.pylab.backend_inline, which is a non-GUI backend, so cannot "
        "show the figure.\n  fig.show()\n"
    )
    image = data({"image/png": png(4, 4), "text/plain": "<Figure size 432x288 with 1 Axes>"})
    stored = [stream(warning, "stderr"), image]
    fresh = [image]
    figures = [normalise_outputs(o, DEFAULT_SANITIZERS, figures=True) for o in (stored, fresh)]
    assert diff_outputs(*figures) == []
    # Other warnings on stderr stay compared, the figure's one left out around them.
    other = "x.py:3: RuntimeWarning: invalid value encountered in log\n  y = np.log(x)\n"
    both = normalise_outputs(
        [stream(other + warning, "stderr"), image], DEFAULT_SANITIZERS, figures=True
    )
    assert both[0] == ("stream:stderr", "WARNING: " + other.split(": ", 1)[1])
    # Streams on either side of it still merge, as the fresh run's do.
    split = [stream("a\n"), stream(warning, "stderr"), stream("b\n"), image]
    merged = [stream("a\nb\n"), image]
    assert normalise_outputs(split, DEFAULT_SANITIZERS, figures=True) == normalise_outputs(
        merged, DEFAULT_SANITIZERS, figures=True
    )
    # Without an image in the cell, the warning is compared like any other.
    assert (
        diff_outputs(normalise_outputs([stream(warning, "stderr")], DEFAULT_SANITIZERS), []) != []
    )


def test_an_svg_marks_a_figure_cell() -> None:
    assert has_image([data({"image/svg+xml": "<svg/>", "text/plain": "<Figure>"})])


def test_an_error_is_compared_without_the_places_it_names() -> None:
    def error(evalue: str) -> list[dict[str, object]]:
        return [{"output_type": "error", "ename": "SyntaxError", "evalue": evalue}]

    old = error("invalid syntax (<ipython-input-3-0a1b2c3d4e>, line 2)")
    new = error("invalid syntax (/tmp/ipykernel_4711/1234567.py, line 5)")
    assert normalise_outputs(old, ()) == normalise_outputs(new, ())
    moved = normal_error("FileNotFoundError", "No such file or directory: '/home/ann/p/x.csv'")
    assert moved == normal_error("FileNotFoundError", "No such file or directory: '/tmp/h/x.csv'")
    assert normal_error("ValueError", "a") != normal_error("ValueError", "b")


def test_describe_is_compared_without_the_machine_s_store_key_and_python() -> None:
    """A notebook's `#seal describe` reproduces on a machine with another 3.11.x."""

    def describe(store_key: str, python: str | None, packages: list[str]) -> dict[str, object]:
        row: dict[str, object] = {"environment": "py", "pin": "2025-06-01T00:00:00Z"}
        row |= {"packages": packages, "store key": store_key}
        if python is not None:
            row["python"] = python
        data = {"application/vnd.nbseal.describe+json": [row], "text/plain": f"key {store_key}"}
        return {"output_type": "display_data", "data": data, "metadata": {}}

    def normal(output: dict[str, object]) -> list[tuple[str, str]]:
        return normalise_outputs([output], DEFAULT_SANITIZERS)

    stored = normal(describe("1120fecd0187", None, ["six==1.16.0"]))
    here = normal(describe("0206c129f668", "3.11.2 (...)", ["six==1.16.0"]))
    assert diff_outputs(stored, here) == []
    drifted = normal(describe("0206c129f668", "3.11.2", ["six==1.17.0"]))
    assert diff_outputs(stored, drifted) != []
