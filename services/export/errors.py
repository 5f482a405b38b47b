"""The one error an export raises for a problem the user can fix."""


class ExportError(ValueError):
    """The export cannot be made as configured; the message names the problem (and the field, if one is)."""
