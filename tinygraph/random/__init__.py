"""Counter-based random numbers (Philox-4x32-10) identical on every backend."""

from .streams import RandomStreams

__all__ = ["RandomStreams"]
