"""Relay overhead for a TCP-only kernel: xeus-python direct, behind tcp_relay.py, and in nbseal.

Three kernels of the same xeus-python environment run side by side, with
requests alternating between them so that the machine's noise hits all alike:

* ``direct``: xeus-python on TCP, as Jupyter starts it (no sandbox, no proxy);
* ``relay``: the same behind ``nbseal/sandbox/tcp_relay.py``, reached over ipc
  (no sandbox, no proxy): the relay's own cost;
* ``nbseal``: the nbseal kernel, sealed: proxy + sandbox + relay.

Prints p50/p99 round-trip latency of ``pass`` (request to idle) and the median
time of a 20 MB print, with ratios to ``direct``.

    python bench/bench_xeus.py [--rounds 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from nbseal.environments import realize
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress
from nbseal.runner.manager import InMemoryKernelSpecManager
from nbseal.sandbox.launch import relay_script
from nbseal.store import EnvironmentStore

sys.path.insert(0, str(Path(__file__).parent))
from bench_relay import alternating_latencies, percentiles_ms, run

PIN = "2026-11-01"
DECLARE = f"#seal env xpy <- xeus-python kernel=xpython pin={PIN}\n1+1"
PRINT_20MB = "import sys\nfor _ in range(20):\n    sys.stdout.write('x' * 1_000_000)\n"


class _Specs(KernelSpecManager):
    argv: list[str] = []

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(argv=self.argv, display_name=kernel_name, language="python")


def start(kind: str, python: str, scratch: Path) -> tuple[KernelManager, BlockingKernelClient]:
    xeus = [python, "-m", "xpython_launcher", "-f"]
    if kind == "nbseal":
        km = KernelManager(kernel_name="nbseal", kernel_spec_manager=InMemoryKernelSpecManager())
    else:
        specs = _Specs()
        if kind == "direct":
            specs.argv = [*xeus, "{connection_file}"]
            km = KernelManager(kernel_name=kind, kernel_spec_manager=specs)
        else:
            tcp = str(scratch / "tcp.json")
            specs.argv = [
                python,
                str(relay_script()),
                "--ipc-connection",
                "{connection_file}",
                "--tcp-connection",
                tcp,
                "--xeus-python-interrupt",
                "--",
                *xeus,
                tcp,
            ]
            km = KernelManager(
                kernel_name=kind, kernel_spec_manager=specs, transport="ipc", ip=str(scratch / "k")
            )
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    if kind == "nbseal":
        run(kc, DECLARE)  # builds (or reuses) the environment and starts xeus
    return km, kc


def measure(python: str, rounds: int, repeats: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="nbseal-bench-") as tmp:
        kernels = {}
        for kind in ("direct", "relay", "nbseal"):
            (Path(tmp) / kind).mkdir()
            kernels[kind] = start(kind, python, Path(tmp) / kind)
        try:
            latencies = alternating_latencies(kernels, "pass", rounds)
            big: dict[str, list[float]] = {kind: [] for kind in kernels}
            for _ in range(repeats):
                for kind, (_, kc) in kernels.items():
                    seconds, got = run(kc, PRINT_20MB)
                    assert got == 20_000_000, got
                    big[kind].append(seconds)
        finally:
            for km, kc in kernels.values():
                kc.stop_channels()
                km.shutdown_kernel(now=True)
    result = {}
    for kind in kernels:
        result[kind] = {
            **percentiles_ms(latencies[kind]),
            "print_20mb_s": statistics.median(big[kind]),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the 20 MB print")
    args = parser.parse_args()
    spec = EnvironmentSpec("xpy", ("xeus-python",), f"{PIN}T00:00:00Z", kernel="xpython")
    built = asyncio.run(realize(spec, EnvironmentStore(), Progress("xpy")))
    print(f"xeus-python environment {built.path}", file=sys.stderr)
    all_ = measure(str(built.path / "bin" / "python"), args.rounds, args.repeats)
    direct = all_["direct"]
    print(
        f"{'metric':<14}{'direct':>9}{'relay':>9}{'nbseal':>9}{'relay/direct':>14}{'nbseal/direct':>15}"
    )
    for key in direct:
        d, r, n = direct[key], all_["relay"][key], all_["nbseal"][key]
        print(f"{key:<14}{d:>9.3f}{r:>9.3f}{n:>9.3f}{r / d:>13.2f}x{n / d:>14.2f}x")


if __name__ == "__main__":
    main()
