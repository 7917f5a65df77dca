"""Domain errors of the object-store interface.

Every store implementation raises only these (anything else is a bug). The filesystem maps
them to errno values in one table (``osfs.errors``).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error a store raises."""


class NotFound(StoreError):
    """The object does not exist (or is deleted and deleted ones were not asked for)."""


class BucketNotFound(StoreError):
    """The bucket (its backing stream) does not exist."""


class BadName(StoreError):
    """A bucket or object name that the protocol does not allow."""


class NameTooLong(BadName):
    """An object name too long for its meta subject (the server's subject length limit)."""


class TooLarge(StoreError):
    """The object exceeds the bucket's max object size; nothing was published."""


class NoSpace(StoreError):
    """The bucket or the account is full; the previous version is intact."""


class Sealed(StoreError):
    """The bucket is sealed (or a mirror) and accepts no writes."""


class Corrupt(StoreError):
    """Data or meta failed a check: digest mismatch, missing chunks, malformed meta."""


class Unavailable(StoreError):
    """The server could not be reached or did not answer in time."""


class Conflict(StoreError):
    """The operation conflicts with the current state (name exists, link to a link, ...)."""


class StaleRevision(StoreError):
    """A conditional publish was refused: the subject moved on from the revision it expected
    (another writer published first). Retried by the store; seen only when retries run out."""


class ObjectReplaced(StoreError):
    """The version being read was replaced or deleted while it was read.

    ``current`` is the meta as re-read (None if the object is gone).
    """

    def __init__(self, message: str, current: object | None = None) -> None:
        super().__init__(message)
        self.current = current
