"""Whether the ``torch`` extra is installed, and the one error for what needs it.

The plain install (``pip install st-plugins``) has neither torch nor transformers: inference runs on the
graph runtime, ``similarity`` / ``util`` compute in numpy. Training, the torch engine and the torch export
need the extra; each raises :func:`torch_missing` naming it.
"""

from __future__ import annotations

import importlib.util
import sys

from st_plugins.errors import MissingDependencyError

__all__ = ["TORCH_EXTRA", "torch_installed", "torch_missing"]

#: How to install the extra (the README says how to take the CPU wheel of torch first).
TORCH_EXTRA = 'pip install "st-plugins[torch]" (the CPU wheel of torch first: see the README)'


def torch_installed() -> bool:
    """True when torch can be imported (it is not imported to find out)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None
    return importlib.util.find_spec("torch") is not None


def torch_missing(need: str, module: str = "torch") -> MissingDependencyError:
    """The error for ``need`` (what needs the extra, and why) when ``module`` is not installed.

    Example:
        >>> print(torch_missing("Training needs torch"))
        Training needs torch, and torch is not installed. Install the torch extra: pip install "st-plugins[torch]" (the CPU wheel of torch first: see the README).
    """
    return MissingDependencyError(f"{need}, and {module} is not installed. Install the torch extra: {TORCH_EXTRA}.")
