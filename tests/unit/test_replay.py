"""Answers to input requests, read from what frontends stored (nbseal.replay)."""

from __future__ import annotations

from typing import Any

from nbseal.replay import END_OF_FILE, RecordedInput


def _stream(name: str, text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def _notebook(*outputs: list[dict[str, Any]]) -> dict[str, Any]:
    cells: list[dict[str, Any]] = [{"cell_type": "markdown", "source": "# title"}]
    cells += [{"cell_type": "code", "source": "", "outputs": list(o)} for o in outputs]
    return {"cells": cells}


def test_the_classic_notebook_s_echo_after_the_prompt_is_the_answer() -> None:
    # IPython's "Beyond Plain Python", saved by the classic Notebook.
    recorded = RecordedInput.of_notebook(
        _notebook([_stream("stdout", "Are you enjoying this tutorial? yes\nenjoy is: yes\n")])
    )
    answer = recorded.answer(2, "Are you enjoying this tutorial? ")
    assert answer.value == "yes"
    assert answer.echo == _stream("stdout", "Are you enjoying this tutorial? yes\n")
    # Nothing more was typed there: end of file, not the same answer again.
    assert recorded.answer(2, "Are you enjoying this tutorial? ").value == END_OF_FILE


def test_jupyterlab_s_stdin_stream_gives_the_answers_in_order() -> None:
    recorded = RecordedInput.of_notebook(
        _notebook(
            [
                _stream("stdout", "before\n"),
                _stream("stdin", "Ada\n"),
                _stream("stdin", "36\n"),
                _stream("stdout", "Ada is 36\n"),
            ]
        )
    )
    first, second = recorded.answer(2, "Name? "), recorded.answer(2, "Age? ")
    assert (first.value, second.value) == ("Ada", "36")
    assert first.echo == _stream("stdin", "Ada\n")
    assert recorded.answer(2, "More? ") == recorded.answer(2, "")
    assert not recorded.answer(2, "More? ").recorded


def test_a_debugger_session_is_replayed_command_by_command() -> None:
    transcript = "> mod.py(3)f()\nipdb> up\n> mod.py(6)g()\nipdb> q\n"
    recorded = RecordedInput.of_notebook(_notebook([_stream("stdout", transcript)]))
    assert [recorded.answer(2, "ipdb> ").value for _ in range(3)] == ["up", "q", END_OF_FILE]


def test_passwords_other_cells_and_unknown_prompts_get_end_of_file() -> None:
    recorded = RecordedInput.of_notebook(
        _notebook([_stream("stdout", "Password: secret\n")], [_stream("stdout", "Name? Ada\n")])
    )
    assert recorded.answer(2, "Password: ", password=True).value == END_OF_FILE
    assert recorded.answer(2, "Token: ").value == END_OF_FILE
    assert recorded.answer(1, "Name? ").value == END_OF_FILE  # a markdown cell
    assert recorded.answer(9, "Name? ").value == END_OF_FILE  # no such cell
    assert recorded.answer(3, "Name? ").value == "Ada"  # each cell keeps its own


def test_an_empty_prompt_is_not_guessed_from_output() -> None:
    recorded = RecordedInput.of_notebook(_notebook([_stream("stdout", "42\n")]))
    assert recorded.answer(2, "").value == END_OF_FILE
