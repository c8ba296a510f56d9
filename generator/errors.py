"""The one exception type a user sees as a one-line message."""


class AtlasError(Exception):
    """A problem with the user's input or environment, shown without a traceback."""
