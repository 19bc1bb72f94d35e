"""Finding files in a drop folder: a stable `doc_id` for each (its path relative to the folder) and the
sha256 of its bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from extractor.documents.model import SourceFile
from extractor.errors import DocumentError

MAX_FILE_BYTES = 64 * 1024 * 1024


def discover(input_dir: Path) -> list[SourceFile]:
    """Every non-hidden regular file below `input_dir`, recursively, in a stable order."""
    if not input_dir.is_dir():
        raise DocumentError(f"input folder {input_dir} does not exist or is not a folder")
    found: list[SourceFile] = []
    for path in sorted(input_dir.rglob("*")):
        rel = path.relative_to(input_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            found.append(SourceFile(path=path, doc_id=rel.as_posix()))
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Files without an extension that are never documents to extract (they sit in drop folders by accident).
NOT_DOCUMENTS = frozenset({"README", "LICENSE", "LICENCE", "COPYING", "NOTICE", "CHANGELOG", "AUTHORS",
                           "MAKEFILE", "DOCKERFILE", "MANIFEST", "THUMBS.DB", "DESKTOP.INI"})


