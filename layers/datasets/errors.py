"""The exception raised for every problem with a data set file, a download or a lookup."""

from __future__ import annotations


class DatasetError(ValueError):
    """A data set file is missing, corrupt or malformed, or could not be downloaded."""
