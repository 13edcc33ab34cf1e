from __future__ import annotations

from nbseal.lock import Lock

PYLOCK = """\
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "Six"
version = "1.16.0"
"""


def _lock(pylock: str = PYLOCK, python: str = "3.11.7") -> Lock:
    return Lock("uv", ("six",), python, "linux-x86_64", "2025-01-01T00:00:00Z", pylock)


def test_key_ignores_comments_and_requirements() -> None:
    a = _lock()
    b = Lock(
        "uv",
        ("six==1.16.0",),
        "3.11.7",
        "linux-x86_64",
        "2024-01-01T00:00:00Z",
        "# made by uv in /tmp/xyz\n" + PYLOCK,
    )
    assert a.key == b.key


def test_key_changes_with_content_and_python() -> None:
    assert _lock().key != _lock(PYLOCK.replace("1.16.0", "1.17.0")).key
    assert _lock().key != _lock(python="3.12.1").key


def test_round_trip_and_versions() -> None:
    lock = _lock()
    again = Lock.from_json(lock.to_json())
    assert again == lock
    assert again.version_of("six") == "1.16.0"
    assert [p.name for p in again.packages()] == ["Six"]
