"""Exceptions of the ledger package.

    LedgerError
     +-- NotFoundError        a row named by the caller does not exist (or is not visible to them)
     +-- ConflictError        the change would break a uniqueness or state rule
     +-- AuditChainError      raised by callers that require a verified chain
"""


class LedgerError(Exception):
    """Base of every ledger error."""


class NotFoundError(LedgerError):
    """The named row does not exist."""


class ConflictError(LedgerError):
    """The change would break a uniqueness or state rule."""


class AuditChainError(LedgerError):
    """The audit chain does not verify."""
