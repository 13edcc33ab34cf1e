"""Kernels from the package index besides ipykernel, each in its own sealed environment."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from tests.kernel.helpers import BASE_PYTHON_UNDER_ROOT, collect, execute, running_kernel

pytestmark = pytest.mark.usefixtures("default_env")


@pytest.fixture(scope="module")
def kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    with running_kernel() as pair:
        yield pair


def test_bash_kernel_runs_sealed_and_its_language_follows(kernel) -> None:
    _, kc = kernel
    bash = execute(
        kc,
        "#seal pin 2025-06-01\n#seal env sh <- bash_kernel kernel=bash\n"
        "echo $((6 * 7)); ls /root 2>&1 | head -1",
        timeout=300,
    )
    assert bash.status == "ok", bash.reply["content"]
    assert "42\n" in bash.stdout
    # Sealed like every kernel: /root is traversable only, or not there at all.
    hidden = "Permission denied" if BASE_PYTHON_UNDER_ROOT else "No such file or directory"
    assert hidden in bash.stdout
    kc.kernel_info()
    info = kc.get_shell_msg(timeout=10)["content"]
    assert info["language_info"]["name"] == "bash"
    assert info["implementation"] == "nbseal"


def test_a_kernel_package_runs_its_kernel_without_kernel_option(kernel) -> None:
    """`#seal env scm <- calysto_scheme` runs Scheme, though ipykernel comes with it (issue 16)."""
    _, kc = kernel
    scheme = execute(kc, "#seal env scm2 <- calysto_scheme pin=2025-06-01\n(* 6 7)", timeout=300)
    assert scheme.status == "ok", scheme.reply["content"]
    (result,) = scheme.of_type("execute_result")
    assert result["content"]["data"]["text/plain"] == "42"
    bash = execute(kc, "#seal env sh2 <- bash_kernel pin=2025-06-01\necho $((6 * 7))", timeout=300)
    assert bash.stdout == "42\n"


def test_calysto_scheme_and_switching_back_and_forth(kernel) -> None:
    _, kc = kernel
    scheme = execute(
        kc,
        "#seal env scm <- calysto_scheme kernel=calysto_scheme pin=2025-06-01\n(* 6 7)",
        timeout=300,
    )
    assert scheme.status == "ok", scheme.reply["content"]
    (result,) = scheme.of_type("execute_result")
    assert result["content"]["data"]["text/plain"] == "42"
    again = execute(kc, "#seal env sh\necho still $((1 + 1))")
    assert again.stdout == "still 2\n"
    described = execute(kc, "#seal describe").of_type("display_data")[0]["content"]["data"]
    rows = {
        row["environment"].split()[0]: row
        for row in described["application/vnd.nbseal.describe+json"]
    }
    assert rows["sh"]["kernel"] == "bash"
    assert rows["sh"]["language"] == "bash"
    assert rows["scm"]["kernel"] == "calysto_scheme"
    assert rows["scm"]["language"] == "scheme"


def test_a_bash_cell_is_interrupted_by_signal(kernel) -> None:
    # bash_kernel has no interrupt_request: SIGINT goes to its own pid in the sandbox.
    km, kc = kernel
    execute(kc, "#seal env sh\nMARK=kept")
    msg_id = kc.execute("sleep 30; echo never")
    time.sleep(1.5)
    km.interrupt_kernel()
    result = collect(kc, msg_id, timeout=30)
    assert "never" not in result.stdout
    after = execute(kc, "echo $MARK")
    assert after.stdout == "kept\n", "the same kernel survived its interrupt"


def test_kernel_name_must_exist_in_the_environment(kernel) -> None:
    _, kc = kernel
    bad = execute(
        kc, "#seal env nope <- bash_kernel kernel=zsh pin=2025-06-01\necho x", timeout=300
    )
    assert bad.reply["content"]["ename"] == "KernelStartError"
    assert "kernels found: bash" in "\n".join(bad.reply["content"]["traceback"])
