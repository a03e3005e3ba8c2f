"""The one root of the kit's own errors: bad input from a user (a file, an option, a model) that the kit refuses
with a one-line message. Front ends (the CLI, the pytest plugin) catch :class:`ConformanceProblem` and print
``str(problem)``, never a traceback."""

from __future__ import annotations


class ConformanceProblem(ValueError):
    """Something the user gave cannot be used; ``str()`` is one line naming the file or option and what is wrong."""
