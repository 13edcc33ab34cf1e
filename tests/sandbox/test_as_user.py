"""The escape suite again, run by a regular user.

nbseal seals a root user's kernels one way (bwrap as root, no user
namespace, setpriv to an unprivileged uid) and a regular user's another (a
user namespace of the user's own). The hostile-notebook tests run as root in
CI; here the same test files run as a fresh regular user, through the same
pytest, with a store and caches of that user's own. Needs root (to create
the user), like tests/debian/test_unprivileged.py.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbseal.fsutil import remove_tree
from tests.debian.users import REPO, ensure_user, private_dir, run_as, user_env

pytestmark = pytest.mark.slow

USER = "nbseal-escape"
PASSED = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
# Every test that attacks the sandbox, from the kernel and through nbseal run.
SUITE = (
    "tests/sandbox/test_escape.py",
    "tests/sandbox/test_hostile.py",
    "tests/sandbox/test_limits.py",
    "tests/kernel/test_sealed.py",
    "tests/e2e/test_hostile.py",
)
# Skips that are right for a regular user: cgroups this user may not write, and
# pyenv's old interpreters under /root, closed to anyone else.
ROOT_ONLY = (
    "memory is capped only where cgroups allow",
    "readable by this user (as root on CI)",
)


@pytest.fixture
def home() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root (this suite already runs as a regular user)")
    user = ensure_user(USER, subids=False)
    path = private_dir(user, "nbseal-escape-")
    yield path
    remove_tree(path)


def test_the_escape_suite_holds_for_a_regular_user(home: Path) -> None:
    user = ensure_user(USER, subids=False)
    own_home, tmp = home / "home", home / "tmp"
    for path in (own_home, tmp):
        path.mkdir()
        os.chown(path, user.pw_uid, user.pw_gid)
    env = user_env(
        own_home,
        TMPDIR=str(tmp),
        NBSEAL_CACHE_DIR=str(home / "cache"),
        UV_CACHE_DIR=str(home / "uv-cache"),
        PYTHONDONTWRITEBYTECODE="1",
        # This machine's way out to the package index (a proxy, its CA), if any.
        **{k: v for k, v in os.environ.items() if k in PASSED or k.lower().endswith("_proxy")},
    )
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *SUITE]
    done = run_as(user, argv, env, cwd=REPO, timeout=1800)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    print(f"\nas {USER}: {summary}")
    # The suite really ran: only the checks that need what root alone has may skip.
    skipped = re.findall(r"SKIPPED \[\d+\] (.*)", output)
    assert all(any(reason in s for reason in ROOT_ONLY) for s in skipped), skipped
    assert passed >= 40, summary
