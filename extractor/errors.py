"""One exception hierarchy; every error says which document and what a person can do about it."""

from __future__ import annotations


class ExtractorError(Exception):
    """Base of every error extractor raises on purpose."""


class ConfigError(ExtractorError):
    """Bad flags, config file or schema: the run cannot start (exit code 2)."""


class DocumentError(ExtractorError):
    """A document could not be turned into text.

    `status` is the row status it deserves; `sha256` is the hash of its bytes when they were read.
    """

    def __init__(self, message: str, *, status: str = "failed", sha256: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.sha256 = sha256


class ExtractionError(ExtractorError):
    """The model call for one document failed for good (after the retry policy gave up).

    `error_type` names the underlying failure (RateLimitError, ValidationError, ...) for the row.
    """

    def __init__(self, message: str, *, error_type: str = "ExtractionError") -> None:
        super().__init__(message)
        self.error_type = error_type


class AuthError(ExtractorError):
    """The endpoint refused our credentials (401/403): no point sending the other documents."""


class JournalError(ConfigError):
    """The journal cannot be opened as asked: it does not exist yet, or another version of extractor wrote it
    (exit code 2, like a bad flag: the message says what to run)."""
