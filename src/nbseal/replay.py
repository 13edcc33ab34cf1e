"""What the author typed at a notebook's prompts, as its outputs recorded it. Pure.

A frontend keeps what a user types into an ``input()`` box among the cell's
outputs: JupyterLab as a stream named ``stdin`` holding the value, the classic
Notebook inside ``stdout``, right after the prompt (``Name? Ada``). IPython's
debugger asks the same way (``ipdb> up``). ``nbseal verify`` answers each
request of the re-run from there, in order, and stores the same echo the
author's frontend stored, so the cell can be compared. A request with nothing
recorded for it (no answer left, another prompt, a password) gets end of file,
as a program reading a file would: ``input()`` raises EOFError and a debugger
quits, where a cell would otherwise wait for a frontend that never answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nbseal.streams import multiline

__all__ = ["END_OF_FILE", "Answer", "RecordedInput"]

# The reply ipykernel turns into EOFError (ipykernel.kernelbase._input_request).
END_OF_FILE = "\x04"


@dataclass(frozen=True)
class Answer:
    """The reply to one input request, and the output a frontend stores for it."""

    value: str
    echo: dict[str, Any] | None = None

    @property
    def recorded(self) -> bool:
        return self.echo is not None


_NOTHING = Answer(END_OF_FILE)


class _Transcript:
    """One cell's recorded input: JupyterLab's ``stdin`` lines, the classic Notebook's echoes."""

    def __init__(self, outputs: Iterable[Mapping[str, Any]]) -> None:
        streams = [o for o in outputs if o.get("output_type") == "stream"]
        self.typed = [
            line
            for o in streams
            if o.get("name") == "stdin"
            for line in multiline(o.get("text", "")).splitlines()
        ]
        self.stdout = "".join(
            multiline(o.get("text", "")) for o in streams if o.get("name") == "stdout"
        )
        self.cursor = 0  # how far into stdout the echoes have been read

    def answer(self, prompt: str, password: bool) -> Answer:
        if password:
            return _NOTHING  # a frontend never stores a password
        if self.typed:
            value = self.typed.pop(0)
            return Answer(value, {"output_type": "stream", "name": "stdin", "text": value + "\n"})
        if not prompt:
            return _NOTHING  # an echo without its prompt cannot be told from output
        start = self.stdout.find(prompt, self.cursor)
        end = self.stdout.find("\n", start + len(prompt)) if start >= 0 else -1
        if end < 0:
            return _NOTHING
        value = self.stdout[start + len(prompt) : end]
        self.cursor = end + 1
        echo = {"output_type": "stream", "name": "stdout", "text": f"{prompt}{value}\n"}
        return Answer(value, echo)


class RecordedInput:
    """Answers to a re-run's input requests, read from the stored notebook's outputs."""

    def __init__(self, cells: Mapping[int, Iterable[Mapping[str, Any]]]) -> None:
        self._cells = {index: _Transcript(outputs) for index, outputs in cells.items()}

    @classmethod
    def of_notebook(cls, notebook: Any) -> RecordedInput:
        """From every code cell of ``notebook`` (keys: 1-based cell numbers, as runs count)."""
        return cls(
            {
                index: list(cell.get("outputs", []))
                for index, cell in enumerate(notebook.get("cells", []), start=1)
                if cell.get("cell_type") == "code"
            }
        )

    def answer(self, cell: int, prompt: str, password: bool = False) -> Answer:
        """The next recorded answer of ``cell`` to ``prompt``; end of file when there is none."""
        transcript = self._cells.get(cell)
        if transcript is None:
            return _NOTHING
        return transcript.answer(prompt, password)
