"""Issue 16's figures on the corpus of real notebooks (tests/corpus/MANIFEST.toml).

For each notebook: notebooks that get an environment, notebooks that run
without error, and cells with text output whose outputs reproduce (the
definitions are in tests/corpus/measure.py's docstring).

Plain mode (the default) is the baseline the issue compares against, what a
user without nbseal does: copy the project folder, ``python -m venv``, ``pip
install -r`` its requirements file when it has one pip can read (a conda
``environment.yml`` is recorded, not used), ``pip install ipykernel``, and run
the notebook with nbclient (working directory: the notebook's folder,
``--timeout`` seconds per cell, ``allow_errors=True``). ``--nbseal`` does what
a user of nbseal does instead: set the notebook's mtime to its last commit,
``nbseal adopt NB``, then ``nbseal verify NB --json``. ``--needs`` is a
reference, not a baseline: plain, but installing what the manifest's
``needs`` says each notebook needs (read off it by hand), today's releases.

The notebooks come out of their projects' source distributions (pip
downloads them by the pinned hash). Everything lives in one temporary folder,
pip's cache and (``--nbseal``) nbseal's store and uv's cache included, removed
at the end. Notebooks run one at a time.

    python bench/corpus_baseline.py [--nbseal | --needs] [--only SLUG ...] [--timeout 60]
                                    [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus.corpus import SdistCache, load_manifest  # noqa: E402
from tests.corpus.measure import (  # noqa: E402
    Figures,
    adopt_available,
    measure_nbseal,
    measure_plain,
)

from nbseal.fsutil import remove_tree  # noqa: E402


def _table(rows: list[Figures]) -> str:
    header = (
        f"{'notebook':30} {'env':>4} {'runs':>5} {'text':>5} {'repr':>5} {'secs':>7} {'adopt':>6}"
    )
    lines = [f"{header}  first problem"]
    for row in rows:
        lines.append(
            f"{row.slug:30} {'yes' if row.environment else 'no':>4} "
            f"{'yes' if row.runs else 'no':>5} {row.text_cells:>5} {row.reproduced:>5} "
            f"{row.seconds:>7.1f} {row.adopt_seconds:>6.1f}  {row.note[:110]}"
        )
    return "\n".join(lines)


def _totals(rows: list[Figures]) -> dict[str, Any]:
    cells = sum(r.text_cells for r in rows)
    reproduced = sum(r.reproduced for r in rows)
    return {
        "notebooks": len(rows),
        "environment": sum(r.environment for r in rows),
        "runs": sum(r.runs for r in rows),
        "text_cells": cells,
        "reproduced": reproduced,
        "reproduced_share": round(reproduced / cells, 3) if cells else 0.0,
        "fully_reproduced": sum(r.text_cells == r.reproduced and r.runs for r in rows),
        "seconds": round(sum(r.seconds for r in rows), 1),
        "adopt_seconds_max": max((r.adopt_seconds for r in rows), default=0.0),
        "adopt_seconds_median": sorted(r.adopt_seconds for r in rows)[len(rows) // 2]
        if rows
        else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nbseal", action="store_true", help="nbseal adopt + verify")
    parser.add_argument(
        "--needs",
        action="store_true",
        help="plain, but pip install what the manifest says each notebook needs (a reference)",
    )
    parser.add_argument("--only", nargs="+", metavar="SLUG", help="these notebooks only")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per cell")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    entries = load_manifest()
    if args.only:
        unknown = set(args.only) - {e.slug for e in entries}
        if unknown:
            parser.error(f"no such notebook in the manifest: {', '.join(sorted(unknown))}")
        entries = [e for e in entries if e.slug in args.only]

    scratch = Path(tempfile.mkdtemp(prefix="nbseal-corpus-"))
    env = dict(os.environ)
    if args.nbseal:
        env["NBSEAL_CACHE_DIR"] = str(scratch / "nbseal-cache")
        env["UV_CACHE_DIR"] = str(scratch / "uv-cache")
    env["PIP_CACHE_DIR"] = str(scratch / "pip-cache")
    try:
        if args.nbseal and not adopt_available(env):
            print(
                "corpus_baseline: `nbseal adopt --help` failed: this nbseal has no adopt "
                "command yet, so --nbseal cannot run. Run without --nbseal for the baseline.",
                file=sys.stderr,
            )
            return 2
        cache = SdistCache(scratch / "sdists")
        rows: list[Figures] = []
        reports: dict[str, Any] = {}
        for entry in entries:
            workdir = scratch / "work" / entry.slug
            workdir.mkdir(parents=True)
            print(f"{entry.slug} ...", file=sys.stderr, flush=True)
            if args.nbseal:
                figures, reports[entry.slug] = measure_nbseal(
                    entry, cache, workdir, env=env, cell_timeout=args.timeout
                )
            else:
                figures = measure_plain(
                    entry,
                    cache,
                    workdir,
                    pip_cache=scratch / "pip-cache",
                    cell_timeout=args.timeout,
                    needs=args.needs,
                )
            print(
                f"  env={figures.environment} runs={figures.runs} "
                f"reproduced {figures.reproduced}/{figures.text_cells} in {figures.seconds} s",
                file=sys.stderr,
                flush=True,
            )
            rows.append(figures)
            remove_tree(workdir)
    finally:
        remove_tree(scratch)

    mode = "nbseal adopt + verify" if args.nbseal else "plain venv + pip install -r + nbclient"
    if args.needs and not args.nbseal:
        mode = "plain venv + pip install of the manifest's needs (today's releases) + nbclient"
    totals = _totals(rows)
    print(f"mode: {mode}")
    print(_table(rows))
    print(
        f"totals: {totals['environment']}/{totals['notebooks']} got an environment, "
        f"{totals['runs']}/{totals['notebooks']} ran without error, "
        f"{totals['reproduced']}/{totals['text_cells']} cells with text output reproduced "
        f"({100 * totals['reproduced_share']:.0f}%), "
        f"{totals['fully_reproduced']} notebooks fully; {totals['seconds']} s"
    )
    if args.nbseal:
        print(
            f"nbseal adopt: median {totals['adopt_seconds_median']} s, "
            f"at most {totals['adopt_seconds_max']} s per notebook"
        )
    if args.json:
        document = {
            "mode": mode,
            "python": sys.version.split()[0],
            "notebooks": [r.to_json() for r in rows],
            "totals": totals,
            "reports": reports,
        }
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
