"""A stand-in `guix` for tests: Guix is not installed where they run.

The script logs its arguments (one JSON list per line) and answers the few
commands nbseal runs as Guix would; `guix shell` runs the command after
`--` directly (no container), after making `--root` a link to a fake profile.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

FULL = "c2d0f6d4e6d43a4ae0a6ea56cb6b9f8e3d0e7a7c"
CHANNELS = """(list (channel
        (name 'guix)
        (url "https://git.savannah.gnu.org/git/guix.git")
        (branch "master")
        (commit
          "{commit}")
        (introduction
          (make-channel-introduction
            "9edb3f66fd807b096b48283debdcddccfea34bad"
            (openpgp-fingerprint
              "BBB0 2DDF 2CEA F6A8 0D1D  E643 A2A0 6DF2 A33A 54FA")))))
"""

FAKE_GUIX = r'''#!{python}
"""A stand-in for `guix`: logs argv, answers the few commands nbseal runs."""
import json, os, sys

argv = sys.argv[1:]
with open(os.environ["FAKE_GUIX_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\n")
commit = "{default}"
if argv[0] == "time-machine":
    for arg in argv[: argv.index("--")]:
        if arg.startswith("--commit="):
            commit = arg.split("=", 1)[1]
    argv = argv[argv.index("--") + 1 :]
if commit == "deadbee":
    sys.exit("guix time-machine: error: Git error: object not found - no match for id")
if argv[:2] == ["describe", "--format=channels"]:
    print({channels!r}.format(commit=commit.ljust(40, "0")), end="")
elif argv[:2] == ["shell", "--export-manifest"]:
    print(";; What follows is a \"manifest\" equivalent to the command line you gave.")
    print("(specifications->manifest\n  (list " + " ".join(json.dumps(p) for p in argv[2:]) + "))")
elif argv[0] == "show":
    for name in argv[1:]:
        if name == "no-such-package":
            sys.exit("guix show: error: no-such-package: package not found")
        base = name.split("@")[0]
        for version in ("3.11.11", "3.10.7"):
            print(f"name: {{base}}\nversion: {{version}}\noutputs:\n+ out: everything\n"
                  "description: A package\n+ with a long description: yes\n")
elif argv[0] == "shell" and any(a.startswith("--root=") for a in argv):
    sys.stderr.write("building profile with 2 packages...\n")
    if os.environ.get("FAKE_GUIX_FAIL"):
        sys.exit("guix shell: error: build of `/gnu/store/xyz-python.drv' failed")
    root = next(a.split("=", 1)[1] for a in argv if a.startswith("--root="))
    if os.path.lexists(root):
        os.unlink(root)
    os.symlink(os.environ["FAKE_GUIX_PROFILE"], root)
    command = argv[argv.index("--") + 1 :]
    os.execvp(command[0], command)
elif argv[0] == "shell":
    # `guix shell --container ...`: no container here, just the command.
    command = argv[argv.index("--") + 1 :]
    os.execvp(command[0], command)
else:
    sys.exit("fake guix: unexpected " + " ".join(argv))
'''


def install_fake_guix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_argv: Sequence[str]
) -> Path:
    """Put `guix` on PATH, with a profile whose kernel runs ``kernel_argv``; returns its log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    guix = bin_dir / "guix"
    guix.write_text(FAKE_GUIX.format(python=sys.executable, default=FULL, channels=CHANNELS))
    guix.chmod(guix.stat().st_mode | stat.S_IXUSR)
    profile = tmp_path / "gnu" / "store" / "abc-profile"
    kernel = profile / "share" / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps({"argv": list(kernel_argv), "display_name": "Python 3", "language": "python"})
    )
    log = tmp_path / "guix.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GUIX_LOG", str(log))
    monkeypatch.setenv("FAKE_GUIX_PROFILE", str(profile))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
