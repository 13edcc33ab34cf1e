"""The corpus of real notebooks: its manifest, and a user's copy of each notebook.

No notebook of the corpus is stored in this repository. Each comes out of a
source distribution that its project published on the package index: the
file of that release whose SHA-256 is the one written in MANIFEST.toml, found
in the index's project page (PEP 691) and checked again once downloaded. Not
``pip download``: it prepares an sdist's metadata by running its build, and
old setup.py files no longer run on today's Python (sktime 0.4.3 imports
``pkg_resources``). The archive holds the project's licence next to its
notebooks, as the repository did at that release.

``materialise`` lays out what a user has after unpacking (or cloning) the
project: the entry's ``root`` folder of the archive, with the notebook at its
place inside it, so relative paths (``../images/x.png``, a ``data/`` folder, a
``requirements.txt`` two folders up) resolve as they did for the author. The
notebook's modification time is set to its last commit, as a fresh clone
would not, but as the author's working copy did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from nbseal._toml import tomllib
from nbseal.compare import DEFAULT_SANITIZERS, normalise_outputs
from tests.archives import extract_known

__all__ = [
    "MANIFEST",
    "Entry",
    "SdistCache",
    "load_manifest",
    "set_mtime",
    "text_cells",
]

MANIFEST = Path(__file__).resolve().parent / "MANIFEST.toml"
ARCHIVE_SUFFIXES = (".tar.gz",)


@dataclass(frozen=True)
class Entry:
    """One notebook of the corpus, as MANIFEST.toml describes it."""

    slug: str
    repo: str  # owner/name of the public repository the notebook comes from
    commit: str  # the release's commit in that repository
    path: str  # the notebook's path in the repository and in the archive
    licence: str  # SPDX identifier
    licence_file: str  # the licence's path in the archive
    last_commit: str  # ISO 8601: the notebook's last commit (or its date in the archive)
    sdist: str  # NAME==VERSION on the package index
    sdist_sha256: str
    root: str  # the archive's folder a user works in ("." for all of it)
    requirements: str  # the project's requirements file for it, "" when none
    needs: tuple[str, ...]  # the distributions it needs, read off the notebook by hand
    notes: str
    expect_runs: bool
    expect_reproduced: int
    # Where no CPython older than this one is on the machine (python=auto has
    # nothing to take), what runs on this Python alone; None: the same as above.
    expect_runs_here: bool | None = None
    expect_reproduced_here: int | None = None
    # In the suite's default run (a sample of the corpus that keeps CI short);
    # NBSEAL_CORPUS=all runs every notebook.
    ci: bool = False

    def expectations(self, older_python: bool) -> tuple[bool, int]:
        """(runs, cells reproduced) expected, with or without an older CPython here."""
        if older_python:
            return self.expect_runs, self.expect_reproduced
        runs = self.expect_runs if self.expect_runs_here is None else self.expect_runs_here
        if self.expect_reproduced_here is None:
            return runs, self.expect_reproduced
        return runs, self.expect_reproduced_here

    @property
    def last_commit_time(self) -> float:
        return dt.datetime.fromisoformat(self.last_commit).timestamp()

    def notebook_in(self, folder: Path) -> Path:
        """Where the notebook lies once ``root`` was copied to ``folder``."""
        return folder / Path(self.path).relative_to(self.root)

    def requirements_in(self, folder: Path) -> Path | None:
        if not self.requirements:
            return None
        return folder / Path(self.requirements).relative_to(self.root)


def load_manifest(path: Path = MANIFEST) -> list[Entry]:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    sdists: dict[str, str] = data["sdists"]
    entries = []
    for raw in data["notebook"]:
        fields: dict[str, Any] = dict(raw)
        fields.setdefault("requirements", "")
        fields["needs"] = tuple(fields.get("needs", ()))
        fields["sdist_sha256"] = sdists[fields["sdist"]]
        entries.append(Entry(**fields))
    slugs = [e.slug for e in entries]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"{path}: slugs repeat")
    return entries


class SdistCache:
    """Source distributions downloaded once (hash-checked) and unpacked into ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._unpacked: dict[str, Path] = {}

    def _download(self, spec: str, sha256: str) -> Path:
        target = self.folder / "archives" / spec.replace("==", "-")
        target.mkdir(parents=True, exist_ok=True)
        found = [p for p in target.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES)]
        if found:
            return found[0]
        name, version = spec.split("==")
        filename, url = _index_file(name, version, sha256)
        with urllib.request.urlopen(url, timeout=600) as response:
            data = response.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"{filename} from {url} does not have the SHA-256 {sha256}")
        partial = target / f".{filename}.part"
        partial.write_bytes(data)
        partial.rename(target / filename)
        return target / filename

    def unpacked(self, spec: str, sha256: str) -> Path:
        """The archive's top folder, unpacked (once)."""
        if spec not in self._unpacked:
            archive = self._download(spec, sha256)
            destination = Path(tempfile.mkdtemp(prefix="unpacked-", dir=self.folder))
            with tarfile.open(archive) as tar:
                extract_known(tar, destination)
            (top,) = destination.iterdir()
            self._unpacked[spec] = top
        return self._unpacked[spec]

    def materialise(self, entry: Entry, folder: Path) -> Path:
        """Copy the entry's ``root`` into ``folder``; the notebook's path there, mtime set."""
        top = self.unpacked(entry.sdist, entry.sdist_sha256)
        shutil.copytree(top / entry.root, folder, dirs_exist_ok=True)
        notebook = entry.notebook_in(folder)
        if not notebook.is_file():
            raise FileNotFoundError(f"{entry.slug}: no {entry.path} in {entry.sdist}")
        set_mtime(notebook, entry.last_commit_time)
        return notebook


def _index_file(name: str, version: str, sha256: str) -> tuple[str, str]:
    """(filename, URL) of the file of ``name`` ``version`` with that SHA-256, from the index."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(
        f"{index}/{name.lower()}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        page = json.load(response)
    for file in page.get("files", []):
        if file.get("hashes", {}).get("sha256") == sha256:
            filename = str(file["filename"])
            if not filename.endswith(ARCHIVE_SUFFIXES) or version not in filename:
                break
            return filename, urllib.parse.urljoin(request.full_url, str(file["url"]))
    raise RuntimeError(
        f"the index {index} has no source archive of {name} {version} with the SHA-256 {sha256}"
    )


def set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def text_cells(notebook: Any) -> dict[int, list[tuple[str, str]]]:
    """Code cells with text output (1-based index among all cells), outputs normalised.

    Text is what nbseal verify compares by default: streams, errors and every
    non-image MIME type of results and displays, after its default sanitisers.
    """
    found = {}
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        outputs = normalise_outputs(list(cell.get("outputs", [])), DEFAULT_SANITIZERS)
        if outputs:
            found[index] = outputs
    return found


def read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
