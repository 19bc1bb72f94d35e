"""One exception hierarchy; every error says which document or setting and what a person can do about it.

Exit codes live here, with the errors that cause them: the CLI maps any `ExtractorError` to its
`exit_code` in one place.
"""

from __future__ import annotations

import errno
import sqlite3
from enum import IntEnum
from pathlib import Path


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


class ExperimentStopped(ExtractorError):
    """An experiment's variant could not run as named (its server stopped the run): it is not measured."""

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


class ContextExceeded(ExtractionError):
    """The server refused a request as longer than the model's context (OpenAI's `context_length_exceeded`, the
    same words from llama.cpp, vLLM, Ollama): the document is split and its parts asked instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_type="ContextLengthExceeded")


class RunStop(ExtractorError):
    """The server cannot serve any document: the run stops, the documents not attempted get `RunStopped`
    rows. `error_type` names the cause for the row of the document that found it."""

    exit_code = ExitCode.USAGE
    error_type = "RunStop"


class BatchNotCreated(ExtractionError):
    """The provider answered that it did not create the batch (its Batch API refused the upload or the
    create): nothing waits, the documents are submitted or sent again."""


class AuthError(RunStop):
    """The endpoint refused our credentials (401/403): no point sending the other documents."""

    error_type = "AuthError"


class ModelUnavailable(RunStop):
    """The server does not serve the model asked for (HTTP 404 naming the model): every document would fail the
    same way, and an experiment must not record a model that never ran."""

    error_type = "ModelUnavailable"


class ServerUnreachable(RunStop):
    """Connections to the server keep failing (refused, no such host, TLS), with nothing answered in
    between: no point sending the other documents."""

    def __init__(self, message: str, *, error_type: str = "ConnectionRefused") -> None:
        super().__init__(message)
        self.error_type = error_type


class JournalError(ConfigError):
    """The journal cannot be opened as asked: it does not exist yet, or another version of extractor wrote it
    (exit code 2, like a bad flag: the message says what to run)."""


class ExportRefused(ExtractorError):
    """An export would replace a spreadsheet that holds a person's edits not imported yet (or a file that is
    not an extractor export): nothing was written; import the edits first or pass --overwrite."""

    exit_code = ExitCode.USAGE


class OutputError(ExtractorError):
    """The output folder cannot be written (disk full, read-only, no permission): the run stops at once;
    everything committed before is kept, and the next run resumes without paying for it again."""

    exit_code = ExitCode.USAGE


_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, then run again",
    errno.EDQUOT: "the disk quota is used up: free some space, then run again",
    errno.EROFS: "the file system is read-only: choose another folder with --output (or output_dir)",
    errno.EACCES: "permission denied: make the folder writable, or choose another with --output",
    errno.EPERM: "permission denied: make the folder writable, or choose another with --output",
}
_SQLITE_ERRNO = {"database or disk is full": errno.ENOSPC, "readonly database": errno.EROFS,
                 "unable to open database file": errno.EACCES}


def output_error(exc: BaseException, path: Path) -> OutputError | None:
    """The OutputError a failed write deserves (naming the file and what to do), or None when the failure
    is not about the disk or its permissions."""
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if isinstance(exc, sqlite3.OperationalError):
        code = next((c for text, c in _SQLITE_ERRNO.items() if text in str(exc).lower()), None)
    if code not in _ADVICE:
        return None
    return OutputError(f"cannot write {path}: {_ADVICE[code]}; documents finished before are kept and "
                       "will not be paid for again")
