"""Tools for testing ops and graphs: gradient verification and hypothesis strategies."""

from .verify_grad import GradientError, verify_grad

__all__ = ["GradientError", "verify_grad"]
