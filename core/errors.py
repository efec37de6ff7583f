"""Errors the product reports to users as one readable line."""


class CQAError(Exception):
    """An expected failure with a message meant for the person at the keyboard."""


class ModelUnavailable(CQAError):
    """A model file is missing, incomplete or has the wrong checksum."""


class IngestError(CQAError):
    """One input file could not be ingested (the run continues with the others)."""


class AccessDenied(CQAError):
    """The signed-in user may not do this."""
