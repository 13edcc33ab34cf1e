"""The nbseal kernel: a proxy between a Jupyter frontend and real kernels.

The proxy lives in :mod:`nbseal.kernel.proxy`; it is not imported here, so
that light modules (the kernelspec, the notebook reader) load without it.
"""

__all__: list[str] = []
