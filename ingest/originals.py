"""Every ingested file is kept, by content hash, so any version's pages can be shown later."""

from __future__ import annotations

import io
import shutil
from pathlib import Path


class Originals:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, sha256: str, source: str) -> Path:
        return self.folder / f"{sha256}{Path(source).suffix.lower()}"

    def keep(self, path: Path, sha256: str) -> None:
        target = self._path(sha256, path.name)
        if not target.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".partial")
            shutil.copyfile(path, tmp)
            tmp.replace(target)

    def pdf_page(self, sha256: str, source: str, page: int) -> bytes | None:
        """One page of a kept PDF as a PDF of its own (None when not a kept PDF)."""
        from pypdf import PdfReader, PdfWriter

        path = self._path(sha256, source)
        if path.suffix != ".pdf" or not path.is_file():
            return None
        reader = PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("")
        if not 1 <= page <= len(reader.pages):
            return None
        writer = PdfWriter()
        writer.add_page(reader.pages[page - 1])
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()
