"""One exception hierarchy; every error says which document or setting and what a person can do about it.

Exit codes live here, with the errors that cause them: the CLI maps any `ExtractorError` to its
`exit_code` in one place.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every document ok or skipped
    SOME_FAILED = 1  # the run finished; some documents failed
    USAGE = 2  # bad flags, config or schema; or the server refused the credentials
    LOCKED = 3  # another run holds the output folder
    COST_LIMIT = 4  # documents were left for the next run by --max-cost
    INTERRUPTED = 130  # SIGINT/SIGTERM; finished documents are kept


class ExtractorError(Exception):
    """Base of every error extractor raises on purpose."""

    exit_code: ExitCode = ExitCode.SOME_FAILED


class ConfigError(ExtractorError):
    """Bad flags, config file or schema: the run cannot start."""

    exit_code = ExitCode.USAGE


class RunLocked(ExtractorError):
    """Another run holds the lock on this output folder."""

    exit_code = ExitCode.LOCKED


class Interrupted(ExtractorError):
    """The run was cancelled before in-flight documents finished; finished ones are in the journal."""

    exit_code = ExitCode.INTERRUPTED


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


class RunStop(ExtractorError):
    """The server cannot serve any document: the run stops, the documents not attempted get `RunStopped`
    rows. `error_type` names the cause for the row of the document that found it."""

    exit_code = ExitCode.USAGE
    error_type = "RunStop"


class AuthError(RunStop):
    """The endpoint refused our credentials (401/403): no point sending the other documents."""

    error_type = "AuthError"


class ServerUnreachable(RunStop):
    """Connections to the server keep failing (refused, no such host, TLS), with nothing answered in
    between: no point sending the other documents."""

    def __init__(self, message: str, *, error_type: str = "ConnectionRefused") -> None:
        super().__init__(message)
        self.error_type = error_type


class JournalError(ConfigError):
    """The journal cannot be opened as asked: it does not exist yet, or another version of extractor wrote it
    (exit code 2, like a bad flag: the message says what to run)."""
