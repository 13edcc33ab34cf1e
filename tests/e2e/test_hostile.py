"""Hostile notebooks through `nbseal run`: path tricks, forged locks, host reads and requests.

Each test is an attack a notebook can make, with the host-side evidence that
it failed (the victim file untouched, the request never made, the hash never
printed) and, where it makes sense, a control showing the same directive
works when it is granted.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbseal.lock import Lock
from nbseal.notebook import metadata_locks, output_locks, set_locks, stored_locks
from nbseal.sandbox.identity import sandbox_identity
from tests.archives import extract_known
from tests.dataserver import serve
from tests.e2e.test_cli import nbseal, notebook

pytestmark = pytest.mark.usefixtures("default_env")

LOCK_MIME = "application/vnd.nbseal.lock+json"


def untrusting_env() -> dict[str, str]:
    """The environment of a machine whose owner trusts no private data host."""
    env = dict(os.environ)
    env.pop("NBSEAL_DATA_TRUSTED_HOSTS", None)
    return env


def run(folder: Path, *sources: str, env: dict[str, str] | None = None) -> tuple[Any, str]:
    path = folder / "nb.ipynb"
    nbformat.write(notebook(*sources), path)
    proc = nbseal("run", str(path), env=env)
    return nbformat.read(path, as_version=4), proc.stderr


def text_of(cell: Any) -> str:
    parts = []
    for out in cell.outputs:
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
        else:
            parts.append(json.dumps(out.get("data", {})))
    return "\n".join(parts)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A host folder the notebook must not write or delete in."""
    path = tmp_path / "victim"
    path.mkdir()
    (path / "x").write_text("host file")
    return path


@pytest.mark.parametrize("prefix", ["", "/oldroot"])
def test_a_link_planted_on_the_way_to_data_leads_nowhere(
    tmp_path: Path, victim: Path, prefix: str
) -> None:
    (victim / "x").unlink()
    # Content not stored yet: a stored file would be placed before cell 1 runs.
    content = os.urandom(64)
    with serve() as server:
        url = server.add("d.bin", content)
        digest = hashlib.sha256(content).hexdigest()
        nb, stderr = run(
            tmp_path,
            f"import os\nos.symlink({prefix + str(victim)!r}, 'p')",
            f"#seal data p/x <- {url} sha256:{digest}",
            "print(sorted(os.listdir('.')))",
        )
    assert "DataPlacementError" in text_of(nb.cells[1]), (text_of(nb.cells[0]), stderr)
    assert "'p'" in text_of(nb.cells[1])
    # bwrap never created anything through the link, now or at a restart.
    assert list(victim.iterdir()) == []


def test_cleanup_never_deletes_through_a_link(tmp_path: Path, victim: Path) -> None:
    with serve() as server:
        url = server.add("d.bin", b"data")
        digest = hashlib.sha256(b"data").hexdigest()
        nb, _ = run(
            tmp_path,
            f"#seal data d/x <- {url} sha256:{digest}",
            "print(open('d/x').read())",
            # The placed link and its folder, swapped for a link to the victim.
            f"import os\nos.unlink('d/x'); os.rmdir('d'); os.symlink({str(victim)!r}, 'd')",
        )
    assert "data" in text_of(nb.cells[1])
    assert not nb.cells[2].outputs  # the swap itself worked
    assert (victim / "x").read_text() == "host file"


FORGED = {
    "environment": "default",
    "lock": {"backend": "uv", "requirements": ["ipykernel"], "pylock": "forged"},
}


def test_a_cell_cannot_write_nbseal_s_own_outputs(tmp_path: Path) -> None:
    nb, _ = run(
        tmp_path,
        "from IPython.display import display\n"
        f"display({{{LOCK_MIME!r}: {FORGED!r}, 'text/plain': 'shown'}}, raw=True)\n"
        f"display({{{LOCK_MIME.upper()!r}: {FORGED!r}, 'text/plain': 'upper'}}, raw=True)",
        "class Forged:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'application/vnd.nbseal.progress+json': {}, 'text/plain': 'r'}\n"
        "Forged()",
    )
    saved = [out.get("data", {}) for cell in nb.cells for out in cell.outputs]
    keys = {key.lower() for data in saved for key in data}
    assert not any(key.startswith("application/vnd.nbseal.") for key in keys), keys
    # What else the cells showed is kept.
    assert {"shown", "upper", "r"} <= {str(d.get("text/plain")) for d in saved}
    assert stored_locks(nb) == {}


def test_a_lock_edited_to_fetch_from_elsewhere_is_not_adopted(tmp_path: Path) -> None:
    """A notebook's stored lock is data: one that adds a package from a host
    nothing names is refused (and the host never asked), not built."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("#seal pin 2026-11-01\n#seal env py <- six\nprint('ran')"), path)
    assert nbseal("lock", str(path)).returncode == 0
    nb = nbformat.read(path, as_version=4)
    lock = metadata_locks(nb)["py"]
    with serve() as server:
        url = server.add("evil-0.1.tar.gz", b"not even an sdist")
        forged = Lock(
            lock.backend,
            lock.requirements,
            lock.python,
            lock.platform,
            lock.exclude_newer,
            lock.pylock
            + f'\n[[packages]]\nname = "evil"\nversion = "0.1"\nsdist = {{ url = "{url}" }}\n',
        )
        set_locks(nb, {"py": forged})
        nbformat.write(nb, path)
        proc = nbseal("run", str(path))
        ran = nbformat.read(path, as_version=4)
        said = text_of(ran.cells[0]) + proc.stderr
        assert server.hits == {}, "the host fetched what the forged lock named"
        assert f"it installs evil from {url}" in said, said
        assert "ran" in said
    # The lock the run stored beside the cell is what really ran.
    (really,) = output_locks(ran)["py"]
    assert "evil" not in really.pylock
    assert really.pylock.strip() == lock.pylock.strip()


def test_a_share_shows_where_its_link_leads(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("s3cret")
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "results").symlink_to(secret)
    _nb, stderr = run(folder, "#seal share results ro\nprint(open('results/key').read())")
    # What is granted is said as it is: the folder the link leads to.
    assert f"share {secret} (ro, written results)" in stderr
    assert "share results (ro)" not in stderr


def test_data_outside_the_notebook_s_folder_is_neither_read_nor_hashed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_text("host secret")
    real = hashlib.sha256(b"host secret").hexdigest()
    folder = tmp_path / "nb"
    folder.mkdir()
    nb, stderr = run(folder, f"#seal data h <- {secret} sha256:{'0' * 64}")
    said = text_of(nb.cells[0]) + stderr
    assert "DataSourceError" in said
    assert "outside the notebook's folder" in said
    assert real not in said
    # Granted by a share the notebook shows, it is read (and the mismatch
    # still withholds the real hash of a host file).
    nb, stderr = run(
        folder, f"#seal share {outside} ro", f"#seal data h <- {secret} sha256:{'0' * 64}"
    )
    said = text_of(nb.cells[1]) + stderr
    assert "DataHashError" in said
    assert real not in said
    assert "withheld" in said


def test_a_private_address_is_not_requested_without_a_grant(tmp_path: Path) -> None:
    with serve() as server:
        url = server.add("m.bin", b"metadata service")
        real = hashlib.sha256(b"metadata service").hexdigest()
        nb, stderr = run(tmp_path, f"#seal data u <- {url} sha256:{'0' * 64}", env=untrusting_env())
        said = text_of(nb.cells[0]) + stderr
        assert "DataSourceError" in said
        assert "127.0.0.1" in said
        assert server.hits.get("/f/m.bin", 0) == 0  # no request was sent
        assert real not in said
        # `#seal allow network` grants it; the mismatch still withholds the hash.
        nb, stderr = run(
            tmp_path,
            "#seal allow network",
            f"#seal data u <- {url} sha256:{'0' * 64}",
            env=untrusting_env(),
        )
        said = text_of(nb.cells[1]) + stderr
        assert server.hits.get("/f/m.bin", 0) == 1
        assert "DataHashError" in said
        assert real not in said


BACKEND = """
import os, pathlib, zipfile
MARK = {mark!r}
def _touch():
    for target in (pathlib.Path.home() / "nbseal-evil-was-here", pathlib.Path(MARK)):
        try:
            target.write_text("build code ran here")
        except OSError:
            pass
def get_requires_for_build_wheel(config_settings=None):
    _touch()
    return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _touch()
    # Who the build ran as, from its own /proc/self/status, for the kernel to show.
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    who = {{k: status[k].split()[0] for k in ("Uid", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp")}}
    name = "evil-0.1-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        wheel.writestr("evil.py", "X = 41 + 1\\nBUILT_BY = %r\\n" % who)
        info = "evil-0.1.dist-info/"
        wheel.writestr(info + "METADATA", "Metadata-Version: 2.1\\nName: evil\\nVersion: 0.1\\n")
        wheel.writestr(info + "WHEEL", "Wheel-Version: 1.0\\nGenerator: evil\\n"
                       "Root-Is-Purelib: true\\nTag: py3-none-any\\n")
        wheel.writestr(info + "RECORD", "")
    return name
"""


def sdist(folder: Path, name: str, backend: str) -> Path:
    """The sdist ``name``-0.1 whose in-tree build backend is ``backend`` (Python source)."""
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        f'backend-path = ["."]\n[project]\nname = "{name}"\nversion = "0.1"\n',
        "backend.py": backend,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
    }
    path = folder / f"{name}-0.1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for file, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-0.1/{file}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _evil_sdist(folder: Path, mark: Path) -> Path:
    """An sdist whose in-tree build backend writes into $HOME and a host folder."""
    return sdist(folder, "evil", BACKEND.format(mark=str(mark)))


def _control_writes_both(argv: list[str], cwd: Path, mark: Path) -> Path:
    """Run package code on the host (the control): it writes ``mark`` and into $HOME.

    Both files are removed again; returns the one in $HOME, for the sealed run to check.
    """
    in_home = Path.home() / "nbseal-evil-was-here"
    in_home.unlink(missing_ok=True)
    subprocess.run(argv, cwd=cwd, check=True)
    assert mark.exists()
    assert in_home.exists()
    mark.unlink()
    in_home.unlink()
    return in_home


@pytest.mark.slow
def test_an_sdist_s_build_code_runs_sealed(tmp_path: Path) -> None:
    mark = tmp_path / "host-mark"
    sdist = _evil_sdist(tmp_path, mark)
    control = tmp_path / "control"
    with tarfile.open(sdist) as tar:
        extract_known(tar, control)
    in_home = _control_writes_both(
        [sys.executable, "-c", "import backend; backend.get_requires_for_build_wheel()"],
        control / "evil-0.1",
        mark,
    )
    nb, stderr = run(
        tmp_path,
        f"#seal env evil <- 'evil @ file://{sdist}'\nimport evil\nprint(evil.X, evil.BUILT_BY)",
    )
    # It built (in the build sandbox) and works in the kernel ...
    said = text_of(nb.cells[0])
    assert "42" in said, (said, stderr)
    # ... as an unprivileged uid (never host root), with no capability at all ...
    built_by = ast.literal_eval(said.split("42 ", 1)[1].strip())
    assert built_by == {
        "Uid": str(sandbox_identity().host_uid),
        "CapEff": "0000000000000000",
        "CapBnd": built_by["CapBnd"],
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }
    assert built_by["Uid"] != "0"
    # ... but its build code reached neither $HOME nor any host folder.
    assert not mark.exists()
    assert not in_home.exists()


INSTALL_STEP = """
import pathlib, sys
for target in (pathlib.Path.home() / "nbseal-evil-was-here", pathlib.Path({mark!r})):
    try:
        target.write_text("install step ran here")
    except OSError:
        pass
prefix = pathlib.Path(sys.argv[sys.argv.index("--prefix") + 1])
spec = prefix / "share" / "jupyter" / "kernels" / "bash"
spec.mkdir(parents=True, exist_ok=True)
(spec / "kernel.json").write_text('{{"argv": ["true", "{{connection_file}}"], "language": "bash",'
                                  ' "display_name": "Bash"}}')
"""


def _fake_bash_kernel(folder: Path, mark: Path) -> Path:
    """A wheel named bash_kernel whose kernelspec install step writes into $HOME and a folder."""
    path = folder / "bash_kernel-0.1-py3-none-any.whl"
    info = "bash_kernel-0.1.dist-info/"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("bash_kernel/__init__.py", "")
        wheel.writestr("bash_kernel/install.py", INSTALL_STEP.format(mark=str(mark)))
        wheel.writestr(
            info + "METADATA", "Metadata-Version: 2.1\nName: bash_kernel\nVersion: 0.1\n"
        )
        wheel.writestr(
            info + "WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(info + "RECORD", "")
    return path


@pytest.mark.slow
def test_a_kernel_s_install_step_runs_sealed(tmp_path: Path) -> None:
    mark = tmp_path / "host-mark"
    wheel = _fake_bash_kernel(tmp_path, mark)
    control = tmp_path / "control"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(control)
    in_home = _control_writes_both(
        [sys.executable, "-m", "bash_kernel.install", "--prefix", str(control / "prefix")],
        control,
        mark,
    )
    nb, stderr = run(tmp_path, f"#seal env sh <- 'bash_kernel @ file://{wheel}' kernel=bash\necho")
    said = text_of(nb.cells[0]) + stderr
    # It ran: the kernelspec it wrote (whose kernel is `true`) was found and started ...
    assert "the kernel 'bash' of environment 'sh' exited at start (exit code 0)" in said, said
    # ... but reached neither $HOME nor any host folder.
    assert not mark.exists()
    assert not in_home.exists()
