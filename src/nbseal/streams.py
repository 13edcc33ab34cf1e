"""Stream outputs as a Jupyter frontend shows and stores them.

A kernel sends a stream in pieces: a progress bar (tqdm, pip, keras) is
hundreds of ``\\r``-separated updates, each its own message. JupyterLab and
the classic Notebook show consecutive pieces of one stream as one output,
each carriage return going back to the start of its line and what follows
overwriting what was there, and save it so. ``nbseal run`` stores outputs
that way (:func:`merge_streams`) and ``nbseal verify`` compares them that way
(:func:`as_displayed`), whichever tool wrote the stored notebook.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_displayed", "merge_streams", "multiline"]


def as_displayed(text: str) -> str:
    """A stream's text as a frontend shows it.

    A carriage return goes back to the start of its line, where what follows
    overwrites what was there; a backspace at the end of a line erases the
    character before it. One pass, one step per character: a backspace
    elsewhere only moves back (a terminal's own meaning), which keeps hostile
    text from costing more.
    """
    if "\r" not in text and "\b" not in text:
        return text
    shown: list[str] = []
    for line in text.split("\n"):
        kept: list[str] = []
        at = 0
        for char in line.rstrip("\r"):
            if char == "\r":
                at = 0
            elif char == "\b":
                if at and at == len(kept):
                    kept.pop()
                at = max(at - 1, 0)
            elif at < len(kept):
                kept[at] = char
                at += 1
            else:
                kept.append(char)
                at += 1
        shown.append("".join(kept))
    return "\n".join(shown)


def multiline(value: Any) -> str:
    """Text as nbformat may store it, a string or a list of lines, as one string."""
    return "".join(value) if isinstance(value, list) else str(value)


def merge_streams(outputs: list[Any]) -> tuple[list[Any], list[int]]:
    """A finished cell's ``outputs`` as a frontend stores them.

    Consecutive pieces of one stream become one output, shown as
    :func:`as_displayed` shows it; every other output stays as it is and
    where it is. Returns the outputs and, for each one given, the index of
    the output it is now part of (nbclient finds displays to update by
    index). The first piece of each stream is changed in place.
    """
    merged: list[Any] = []
    pieces: dict[int, list[str]] = {}  # a merged stream's index -> its texts, joined once
    where: list[int] = []
    for output in outputs:
        last = merged[-1] if merged else None
        if output.get("output_type") != "stream":
            merged.append(output)
        elif (
            last is not None
            and last.get("output_type") == "stream"
            and last.get("name") == output.get("name")
        ):
            pieces[len(merged) - 1].append(multiline(output.get("text", "")))
        else:
            merged.append(output)
            pieces[len(merged) - 1] = [multiline(output.get("text", ""))]
        where.append(len(merged) - 1)
    for index, texts in pieces.items():
        merged[index]["text"] = as_displayed("".join(texts))
    return merged, where
