"""The nbseal kernel: a proxy between a Jupyter frontend and real kernels."""

from nbseal.kernel.proxy import ProxyConfig, ProxyKernel

__all__ = ["ProxyConfig", "ProxyKernel"]
