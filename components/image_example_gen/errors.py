"""The one exception ingestion raises for inputs it cannot use at all.

It lives in its own module so the readers (sources, arrays) and the executor
can all raise it without importing each other; `sources` re-exports it, which
is where callers (the CLI) import it from.
"""


class IngestInputError(ValueError):
    """The input as a whole is unusable; the message is one actionable line."""
