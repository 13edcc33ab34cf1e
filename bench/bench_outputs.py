"""Cost of the output policy: sealed outputs against ``#seal allow javascript``.

Two nbseal kernels run side by side in the same run, one with the policy on
(the default) and one with ``#seal allow javascript`` (outputs relayed as
they are); each workload alternates between them so the machine's noise
hits both alike. Workloads: a cell that displays 1,000 HTML tables (each
cleaned by the policy) and one that prints 50 MB (streams are not filtered,
so this measures that the policy costs nothing where it has nothing to do).

    python bench/bench_outputs.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_relay import run, start
from nbseal.environments import realize
from nbseal.plan import default_environment
from nbseal.progress import Progress
from nbseal.store import EnvironmentStore

TABLE = (
    "<table><thead><tr><th></th><th>a</th><th>b</th></tr></thead><tbody>"
    + "".join(f"<tr><th>{i}</th><td>{i * 1.5}</td><td>x{i}</td></tr>" for i in range(20))
    + "</tbody></table>"
)
HTML_1000 = (
    "from IPython.display import HTML, display\n"
    f"table = HTML({TABLE!r})\n"
    "for _ in range(1000):\n    display(table)\n"
)
PRINT_50MB = "import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 1_000_000)\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    # Built before either kernel starts, so neither start waits for a build.
    asyncio.run(realize(default_environment(), EnvironmentStore(), Progress("default")))
    kernels = {kind: start("nbseal", "") for kind in ("sealed", "allow javascript")}
    try:
        run(kernels["allow javascript"][1], "#seal allow javascript")
        times: dict[str, dict[str, list[float]]] = {
            kind: {"html_1000_s": [], "print_50mb_s": []} for kind in kernels
        }
        for repeat in range(args.repeats):
            # Each goes first in turn, so neither always runs on a warmer machine.
            order = list(kernels.items())[:: 1 if repeat % 2 else -1]
            for kind, (_, kc) in order:
                seconds, shown = run(kc, HTML_1000)
                assert shown == 1000, shown
                times[kind]["html_1000_s"].append(seconds)
                seconds, got = run(kc, PRINT_50MB)
                assert got == 50_000_000, got
                times[kind]["print_50mb_s"].append(seconds)
    finally:
        for km, kc in kernels.values():
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    print(
        f"{'workload':<16}{'allow js':>10}{'sealed':>10}{'ratio':>8}   (median of {args.repeats})"
    )
    for key in ("html_1000_s", "print_50mb_s"):
        granted = statistics.median(times["allow javascript"][key])
        sealed = statistics.median(times["sealed"][key])
        print(f"{key:<16}{granted:>9.3f}s{sealed:>9.3f}s{sealed / granted:>7.2f}x")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
