"""Writing and reading the project's files: atomically, strictly, with one error type.

Every file the project writes (fault maps, populations, resilience maps, plans,
reports, model checkpoints, CSVs) goes through :func:`atomic_write`: the bytes land in
a temporary file beside the target and are renamed over it, so a reader (or a resumed
run) never sees half a file. New files get the usual permissions (``0o666`` less the
umask), whatever their kind. Every load failure is a :class:`FileFormatError` (a
``ValueError``) whose message starts with the path.

This package imports nothing else of the project; every other package may use it.
"""

from .atomic import atomic_write
from .errors import FileFormatError
from .jsonfile import header_problem, json_clean, read_json, write_json

__all__ = ["atomic_write", "FileFormatError", "read_json", "write_json", "json_clean", "header_problem"]
