"""The forms each directive takes, as error messages and ``#seal help`` show them."""

from __future__ import annotations

__all__ = ["FORMS", "GUIX_FORMS", "HELP_TEXT"]

FORMS = {
    "env": "`#seal env NAME <- REQUIREMENT... [python=X.Y|X.Y.Z|auto] [kernel=NAME] [pin=DATE]"
    " [build=source]`"
    " or `#seal env NAME`",
    "pin": "`#seal pin YYYY-MM-DD` or `#seal pin YYYY-MM-DDTHH:MM:SSZ`",
    "data": "`#seal data NAME <- URL sha256:HEX` (or sha256-BASE64, or a Guix nix-base32 hash)",
    "describe": "`#seal describe`",
    "help": "`#seal help`",
    "allow": "`#seal allow network` or `#seal allow javascript`",
    "share": "`#seal share PATH [ro|rw]`",
    "limit": "`#seal limit [processes=N] [memory=SIZE] [tmp=SIZE]` (SIZE: e.g. 512M, 4G)",
}

# Guix-Jupyter's forms (guix-kernel, gitlab.inria.fr/guix-hpc/guix-kernel).
GUIX_FORMS = {
    "environment": "`;;guix environment NAME <- PACKAGE...` or `;;guix environment NAME`",
    "pin": "`;;guix pin COMMIT` (a Guix commit, 7 to 40 hex digits, or a tag such as v1.4.0)",
    "download": "`;;guix download URL HASH` (HASH: the nix-base32 SHA-256 `guix download` "
    "prints, or sha256:HEX)",
    "describe": "`;;guix describe`",
}

HELP_TEXT = """\
nbseal directives: lines at the top of a cell, before any code.

  #seal env NAME <- REQ...   define environment NAME from PEP 508 requirements
                             options: python=X.Y (or X.Y.Z, or auto)  kernel=NAME  pin=DATE
                               python=auto (the Python current at the pin,
                               where uv can fetch it)
                               build=source (compile what has no wheel
                               at the pin, instead of falling forward)
                             e.g. #seal env py <- numpy==2.* pandas
                                  #seal env sh <- bash_kernel kernel=bash
                                  #seal env r <- deb:r-base-core deb:r-cran-irkernel kernel=ir
  #seal env NAME             switch to an environment defined earlier
  #seal pin DATE             resolve as the package index stood then
                             e.g. #seal pin 2025-06-01
  #seal data NAME <- URL sha256:HEX
                             fetch once, verify, mount read-only as NAME
                             e.g. #seal data iris.csv <- https://example.org/iris.csv sha256:3b7d...
  #seal allow network        let this notebook's kernels reach the network
  #seal allow javascript     show outputs that run code in the page (scripts,
                             Plotly, Bokeh, Vega, custom widgets) as they are
  #seal share PATH [ro|rw]   bind one host path into the sandbox
                             e.g. #seal share results rw
  #seal limit KEY=VALUE...   change the sandbox's caps (processes=1024,
                             memory=8G, tmp=2G per scratch tmpfs by default)
                             e.g. #seal limit memory=16G processes=4096
  #seal describe             show environments, pins, kernels and versions
  #seal help                 this text

A PEP 723 block (# /// script ... # ///) declares the default environment.
Code after the directive lines runs in the current environment.
Docs: docs/directives.md (a page per directive), docs/first-notebook.md.

Guix-Jupyter notebooks (environments need `guix` on this machine):
  ;;guix environment NAME <- PKG...   define NAME from Guix packages
                                      e.g. ;;guix environment py <- python python-ipykernel
  ;;guix environment NAME             switch to an environment defined earlier
  ;;guix pin COMMIT                   later Guix environments use Guix at COMMIT
  ;;guix download URL HASH            like #seal data, named after the URL's file
  ;;guix describe                     the same as #seal describe"""
