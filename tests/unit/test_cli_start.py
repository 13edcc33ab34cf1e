"""What the nbseal command imports before it does anything."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import nbseal.cli
import nbformat
from nbseal.runner import run_notebook
nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
nbformat.validate(nb)  # jsonschema still validates notebooks
print(sys.modules.get("rfc3987_syntax", "absent"))
"""


def test_the_command_does_not_import_the_iri_grammar_jsonschema_would_load() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "None", done.stdout + done.stderr
