"""The database layer's error."""

from core.errors import CQAError


class DatabaseError(CQAError):
    """A database cannot be opened or migrated as asked."""
