"""Relay overhead: the nbseal proxy against the same ipykernel started directly.

Both kernels run the same ipykernel from nbseal's default environment, in the
same run, side by side, with requests alternating between them so that the
machine's noise hits both alike; the ratio isolates the proxy (and, since
the nbseal kernel runs sealed, the sandbox). Prints p50/p99 round-trip
latency of ``1+1`` and the median time of a 50 MB print and of 10,000
display messages.

    python bench/bench_relay.py [--rounds 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from nbseal.environments import realize
from nbseal.plan import default_environment
from nbseal.progress import Progress
from nbseal.runner.manager import InMemoryKernelSpecManager
from nbseal.store import EnvironmentStore

PRINT_50MB = "import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 1_000_000)\n"
DISPLAY_10K = "from IPython.display import display\nfor i in range(10_000):\n    display(i)\n"


class _DirectSpecs(KernelSpecManager):
    python: str = ""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        argv = [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        return KernelSpec(argv=argv, display_name="direct", language="python", resource_dir="")


def start(kind: str, python: str) -> tuple[KernelManager, BlockingKernelClient]:
    if kind == "direct":
        specs: KernelSpecManager = _DirectSpecs()
        specs.python = python  # type: ignore[attr-defined]
        km = KernelManager(kernel_name="direct", kernel_spec_manager=specs)
    else:
        km = KernelManager(kernel_name="nbseal", kernel_spec_manager=InMemoryKernelSpecManager())
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


def run(kc: BlockingKernelClient, code: str) -> tuple[float, int]:
    """Seconds from request to idle, and output bytes received."""
    started = time.perf_counter()
    msg_id = kc.execute(code)
    received = 0
    while True:
        msg = kc.get_iopub_msg(timeout=300)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        content: dict[str, Any] = msg["content"]
        if msg["msg_type"] == "stream":
            received += len(content["text"])
        elif msg["msg_type"] == "display_data":
            received += 1
        elif msg["msg_type"] == "status" and content["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    return time.perf_counter() - started, received


Clients = dict[str, tuple[KernelManager, BlockingKernelClient]]


def alternating_latencies(kernels: Clients, code: str, rounds: int) -> dict[str, list[float]]:
    """Seconds per ``code`` in each kernel, requests alternating after 20 warm-ups each."""
    latencies: dict[str, list[float]] = {kind: [] for kind in kernels}
    for _ in range(20):
        for _, kc in kernels.values():
            run(kc, code)
    for _ in range(rounds):
        for kind, (_, kc) in kernels.items():
            latencies[kind].append(run(kc, code)[0])
    return latencies


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
    }


def measure(python: str, rounds: int, repeats: int) -> dict[str, dict[str, float]]:
    """Both kernels run side by side; requests alternate, so noise hits both alike."""
    kernels = {kind: start(kind, python) for kind in ("direct", "nbseal")}
    try:
        latencies = alternating_latencies(kernels, "1+1", rounds)
        big: dict[str, list[float]] = {kind: [] for kind in kernels}
        many: dict[str, list[float]] = {kind: [] for kind in kernels}
        for _ in range(repeats):
            for kind, (_, kc) in kernels.items():
                seconds, got = run(kc, PRINT_50MB)
                assert got == 50_000_000, got
                big[kind].append(seconds)
                seconds, shown = run(kc, DISPLAY_10K)
                assert shown == 10_000, shown
                many[kind].append(seconds)
    finally:
        for km, kc in kernels.values():
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    result = {}
    for kind in kernels:
        result[kind] = {
            **percentiles_ms(latencies[kind]),
            "print_50mb_s": statistics.median(big[kind]),
            "display_10k_s": statistics.median(many[kind]),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each throughput test")
    args = parser.parse_args()
    built = asyncio.run(realize(default_environment(), EnvironmentStore(), Progress("default")))
    both = measure(str(built.python), args.rounds, args.repeats)
    direct, proxy = both["direct"], both["nbseal"]
    print(f"{'metric':<16}{'direct':>10}{'nbseal':>10}{'ratio':>8}{'overhead':>12}")
    for key in direct:
        d, p = direct[key], proxy[key]
        unit = "ms" if key.endswith("ms") else "s"
        print(f"{key:<16}{d:>10.3f}{p:>10.3f}{p / d:>7.2f}x{p - d:>+10.3f} {unit}")
    print(
        f"throughput vs direct: 50 MB print {direct['print_50mb_s'] / proxy['print_50mb_s']:.2f}x, "
        f"10k displays {direct['display_10k_s'] / proxy['display_10k_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
