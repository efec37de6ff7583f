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

    def pdf_path(self, sha256: str, source: str) -> Path | None:
        """The kept file of a PDF version (None when the version is not a kept PDF)."""
        path = self._path(sha256, source)
        return path if path.suffix == ".pdf" and path.is_file() else None

    def pdf_page(self, sha256: str, source: str, page: int) -> bytes | None:
        """One page of a kept PDF as a PDF of its own, its text and drawing only: none of the document's
        JavaScript, actions, annotations or embedded files (None when not a kept PDF)."""
        from pypdf import PdfReader, PdfWriter

        path = self.pdf_path(sha256, source)
        if path is None:
            return None
        reader = PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("")
        if not 1 <= page <= len(reader.pages):
            return None
        source = reader.pages[page - 1]
        for key in ("/Annots", "/AA"):  # links, form fields and their actions (JavaScript) stay behind:
            source.pop(key, None)  # removed before the page is copied, which copies all it refers to
        writer = PdfWriter()
        writer.add_page(source)
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()
