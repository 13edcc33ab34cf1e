"""Relay overhead: the nbseal proxy against the same ipykernel started directly.

Both kernels run the same ipykernel from nbseal's default environment, in the
same run, so the ratio isolates the proxy. Prints p50/p99 round-trip latency
of ``1+1`` and throughput for a 50 MB print and for 10,000 display messages.

    python bench/bench_relay.py [--rounds 300]
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
from nbseal.kernel.kernelspec import InMemoryKernelSpecManager
from nbseal.plan import default_environment
from nbseal.progress import Progress
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
    kc.get_shell_msg(timeout=60)
    return time.perf_counter() - started, received


def measure(kind: str, python: str, rounds: int) -> dict[str, float]:
    km, kc = start(kind, python)
    try:
        for _ in range(20):
            run(kc, "1+1")
        latencies = sorted(run(kc, "1+1")[0] for _ in range(rounds))
        big, got = run(kc, PRINT_50MB)
        assert got == 50_000_000, got
        many, shown = run(kc, DISPLAY_10K)
        assert shown == 10_000, shown
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "print_50mb_s": big,
        "display_10k_s": many,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    built = asyncio.run(realize(default_environment(), EnvironmentStore(), Progress("default")))
    direct = measure("direct", str(built.python), args.rounds)
    proxy = measure("nbseal", str(built.python), args.rounds)
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
