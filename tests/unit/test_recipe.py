"""Launch recipes (sandbox/recipe.py) and the head start's trust in them (sandbox/headstart.py).

No sandbox starts here: these are the data, the checks and the pipes. The
head start against real kernels is in tests/e2e/test_headstart.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from nbseal.sandbox import headstart
from nbseal.sandbox.recipe import (
    CGROUP_PROCS,
    INFO_FD,
    RUNTIME,
    RUNTIME_PARENT,
    ConnectionSpec,
    LaunchRecipe,
    RecipeError,
    pipe_token,
    placed,
    prepare,
    tokenised,
)

BWRAP = "/usr/bin/bwrap"


def _recipe(**changes: object) -> LaunchRecipe:
    argv = (
        BWRAP,
        "--seccomp",
        pipe_token(0),
        "--unshare-pid",
        "--die-with-parent",
        "--clearenv",
        "--perms",
        "0111",
        "--dir",
        RUNTIME_PARENT,
        "--perms",
        "0444",
        "--ro-bind-data",
        pipe_token(1),
        "/etc/passwd",
        "--bind",
        f"{RUNTIME}/k1",
        f"{RUNTIME}/k1",
        "--info-fd",
        INFO_FD,
        "--",
        "python",
        "-f",
        f"{RUNTIME}/k1/connection.json",
    )
    recipe = LaunchRecipe(
        argv=argv,
        pipes=(b"\x01\x02seccomp", b"nbseal:x:1000:1000::/home/nbseal:/bin/sh\n"),
        cwd=f"{RUNTIME}/work",
        log=f"{RUNTIME}/k1/kernel.log",
        folders=(f"{RUNTIME}/k1",),
        owner=None,
        cgroup=None,
        connection=ConnectionSpec(f"{RUNTIME}/k1/connection.json", f"{RUNTIME}/k1/s", "py", "x"),
    )
    return replace(recipe, **changes)  # type: ignore[arg-type]


def test_a_recipe_survives_its_json_form() -> None:
    recipe = _recipe()
    assert LaunchRecipe.from_json(json.loads(json.dumps(recipe.to_json()))) == recipe


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"argv": ("/bin/sh", "-c", "touch /tmp/x")}, "the command is not bwrap"),
        ({"argv": ("bwrap", "--seccomp", pipe_token(0))}, "the command is not bwrap"),
        ({"argv": (BWRAP, "--unshare-pid", "--clearenv", "--die-with-parent")}, "--seccomp"),
        ({"pipes": (b"seccomp",)}, "the pipes do not match"),
        ({"cwd": "/home/user"}, "is not inside the runtime folder"),
        ({"folders": (f"{RUNTIME}/../../etc",)}, "is not inside the runtime folder"),
        ({"log": f"{RUNTIME}/../x"}, "is not inside the runtime folder"),
    ],
)
def test_a_recipe_that_would_not_start_a_sealed_kernel_is_refused(
    changes: dict[str, object], why: str
) -> None:
    data = _recipe().to_json()
    data.update({k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()})
    if "pipes" in changes:
        data["pipes"] = ["c2VjY29tcA=="]
    with pytest.raises(RecipeError, match=why):
        LaunchRecipe.from_json(data)


def test_a_file_that_is_not_a_recipe_is_refused() -> None:
    for data in ({}, {"format": 2}, {"format": 1, "argv": "bwrap"}, []):
        with pytest.raises(RecipeError):
            LaunchRecipe.from_json(data)


def test_tokens_stand_for_the_runtime_folder_and_a_per_run_parent() -> None:
    runtime = Path("/tmp/nbseal-run-abc/nbseal-xyz")
    assert tokenised(f"{runtime}/k1/s", runtime) == f"{RUNTIME}/k1/s"
    assert tokenised("/tmp/nbseal-run-abc", runtime, parent=True) == RUNTIME_PARENT
    assert tokenised("/tmp/nbseal-run-abc", runtime) == "/tmp/nbseal-run-abc"
    # Only the parent itself: a path that merely starts with it is not the parent.
    assert tokenised("/tmp/nbseal-run-abcd", runtime, parent=True) == "/tmp/nbseal-run-abcd"
    other = Path("/tmp/nbseal-run-def/nbseal-uvw")
    assert placed(RUNTIME_PARENT, other) == "/tmp/nbseal-run-def"
    assert placed(f"{RUNTIME}/k1", other) == f"{other}/k1"


def test_prepare_makes_the_folders_and_pipes_of_one_start(tmp_path: Path) -> None:
    runtime = tmp_path / "run" / "nbseal-1"
    prepared = prepare(_recipe(), runtime)
    try:
        assert (runtime / "k1").is_dir()
        assert (runtime / "work").is_dir()
        assert (runtime / "k1").stat().st_mode & 0o777 == 0o700
        argv = prepared.argv
        assert RUNTIME not in " ".join(argv)
        assert "\x00" not in "".join(argv)
        assert argv[argv.index("--dir") + 1] == str(runtime.parent)
        assert argv[-1] == f"{runtime}/k1/connection.json"
        assert prepared.cwd == str(runtime / "work")
        seccomp = int(argv[argv.index("--seccomp") + 1])
        passwd = int(argv[argv.index("--ro-bind-data") + 1])
        info = int(argv[argv.index("--info-fd") + 1])
        assert set(prepared.pass_fds) == {seccomp, passwd, info}
        assert os.read(seccomp, 100) == b"\x01\x02seccomp"
        assert os.read(passwd, 100).startswith(b"nbseal:x:")
        os.write(info, b"{}")
    finally:
        prepared.started()
    assert os.read(prepared.info_read, 10) == b"{}", "the info pipe's read end stays open"
    os.close(prepared.info_read)
    for fd in prepared.pass_fds:
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)


def test_a_cgroup_that_cannot_be_made_leaves_the_start_uncapped(tmp_path: Path) -> None:
    """A read-only cgroup file system (a container): the wrapper goes, the start stays."""
    from nbseal.sandbox.limits import MemoryCgroup
    from nbseal.sandbox.recipe import CgroupSpec

    wrapped = tuple(MemoryCgroup.wrap_procs(CGROUP_PROCS, list(_recipe().argv)))
    missing = CgroupSpec(str(tmp_path / "no" / "such"), "memory.max", None, 1 << 30)
    prepared = prepare(_recipe(argv=wrapped, cgroup=missing), tmp_path / "nbseal-1")
    prepared.abandon()
    assert prepared.cgroup is None
    assert prepared.argv[0] == BWRAP


def _write(path: Path, recipe: LaunchRecipe, mode: int = 0o600) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps(recipe.to_json()))
    path.chmod(mode)


def test_the_head_start_reads_only_a_recipe_no_one_else_may_write(tmp_path: Path) -> None:
    path = tmp_path / "head-start" / "r.json"
    assert headstart._read(path) is None, "no recipe yet"
    _write(path, _recipe())
    assert headstart._read(path) == _recipe()
    path.chmod(0o620)
    with pytest.raises(RecipeError, match="may be written by others"):
        headstart._read(path)
    path.chmod(0o600)
    path.parent.chmod(0o777)
    with pytest.raises(RecipeError, match="may be written by others"):
        headstart._read(path)
    path.parent.chmod(0o700)
    link = tmp_path / "head-start" / "link.json"
    link.symlink_to(path)
    with pytest.raises(RecipeError):
        headstart._read(link)
    path.write_text("x" * (headstart.MAX_BYTES + 1))
    with pytest.raises(RecipeError, match="larger than any recipe"):
        headstart._read(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")
def test_the_head_start_reads_no_recipe_of_another_user(tmp_path: Path) -> None:
    path = tmp_path / "head-start" / "r.json"
    _write(path, _recipe())
    os.chown(path, 65534, 65534)
    with pytest.raises(RecipeError, match="belongs to uid 65534"):
        headstart._read(path)


def test_recipes_are_kept_per_notebook_folder_and_starter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBSEAL_CACHE_DIR", str(tmp_path))
    one = headstart.recipe_file("/a/nb.ipynb", "/a", run=True)
    assert one.parent == tmp_path / "head-start"
    assert one == headstart.recipe_file("/a/nb.ipynb", "/a", run=True)
    others = {
        headstart.recipe_file("/a/other.ipynb", "/a", run=True),
        headstart.recipe_file("/a/nb.ipynb", "/b", run=True),
        headstart.recipe_file("/a/nb.ipynb", "/a", run=False),
    }
    assert one not in others
    assert len(others) == 3


def test_env_gc_forgets_recipes_unused_or_binding_a_removed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBSEAL_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "head-start"
    env = tmp_path / "envs" / "abc"
    env.mkdir(parents=True)
    binding = _recipe(argv=(*_recipe().argv, "--ro-bind", str(env), str(env)))
    kept, old, gone = folder / "kept.json", folder / "old.json", folder / "gone.json"
    for path in (kept, old, gone):
        _write(path, binding)
    os.utime(old, (0, 0))
    env2 = tmp_path / "envs" / "removed"
    gone.write_text(
        json.dumps(_recipe(argv=(*_recipe().argv, "--bind", str(env2), "/x")).to_json())
    )
    assert headstart.collect_garbage(86400) == 2
    assert [p.name for p in folder.iterdir()] == ["kept.json"]
    assert headstart.collect_garbage(86400) == 0
