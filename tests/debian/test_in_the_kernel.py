"""A Debian environment (R from Debian packages) next to a Python one, in one notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel.helpers import execute, running_kernel

pytestmark = pytest.mark.usefixtures("default_env", "mmdebstrap")


def test_r_from_debian_packages_runs_sealed_beside_python() -> None:
    with running_kernel() as (_, kc):
        r = execute(
            kc,
            "#seal pin 2026-11-01\n#seal env r <- deb:r-base-core deb:r-cran-irkernel kernel=ir\n"
            "cat(sum(1:10))",
            timeout=900,
        )
        assert r.status == "ok", r.reply["content"]
        assert r.stdout.endswith("55")
        shown = [m["content"]["data"] for m in r.outputs if "data" in m["content"]]
        lock = shown[-1]["application/vnd.nbseal.lock+json"]["lock"]
        assert lock["backend"] == "deb"
        assert 'name = "r-base-core"' in lock["pylock"]
        kc.kernel_info()
        assert kc.get_shell_msg(timeout=10)["content"]["language_info"]["name"] == "R"
        # The tree's own /etc, not the host's; none of the host's files.
        here = str(Path(__file__).resolve())
        sealed = execute(kc, f"cat(file.exists('{here}'), file.exists('/etc/debian_version'))")
        assert sealed.stdout == "FALSE TRUE"
        python = execute(
            kc,
            "#seal env py <- six pin=2025-06-01\nimport six; print(six.__version__)",
            timeout=300,
        )
        assert python.stdout.strip().endswith("1.17.0")
        back = execute(kc, "#seal env r\ncat(R.version$major)")
        assert back.stdout == "4"
        described = execute(kc, "#seal describe").of_type("display_data")[0]["content"]["data"]
        rows = {
            row["environment"].split()[0]: row
            for row in described["application/vnd.nbseal.describe+json"]
        }
        assert rows["r"]["kernel"] == "ir"
        assert any(p.startswith("r-base-core==") for p in rows["r"]["packages"])
        # The suite and the mirror the tree came from.
        assert f" {rows['r']['debian']['suite']} " in rows["r"]["debian"]["sources"][0]
        assert rows["r"]["debian"]["mirror"].startswith("http")
        assert rows["r"]["source"].startswith(f"Debian {rows['r']['debian']['suite']} ")
        assert "source" not in rows["py"]
