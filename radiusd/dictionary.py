"""The RADIUS dictionary shipped with the package: the top-level `dictionaries/`, installed as radiusd.dictionaries."""

from __future__ import annotations

import functools
import importlib.resources

from pyrad.dictionary import Dictionary

__all__ = ["load_dictionary"]


@functools.cache
def load_dictionary() -> Dictionary:
    """Parse the packaged dictionary once per process."""
    resource = importlib.resources.files("radiusd.dictionaries").joinpath("dictionary")
    with importlib.resources.as_file(resource) as path:
        return Dictionary(str(path))
