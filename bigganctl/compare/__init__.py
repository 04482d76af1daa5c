"""Compare bigganctl results against a baseline (``bigganctl compare``): read any result
file (:func:`load`), set tolerances (:func:`tolerances`), and :func:`compare`."""

from .core import KIND, ProtocolMismatch, compare, parse_noise
from .results import Result, load
from .tolerance import DEFAULTS, Tolerance, parse_tolerance, tolerances

__all__ = ["KIND", "DEFAULTS", "ProtocolMismatch", "Result", "Tolerance", "compare", "load", "parse_noise",
           "parse_tolerance", "tolerances"]
