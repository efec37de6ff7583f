"""One PDFium call at a time in this process.

PDFium is not thread-safe: no two of its calls may run at once, not even on different documents; doing so can
crash or corrupt the process (pypdfium2's documentation, "Incompatibility with Threading"). The app can read a
PDF for one session's ingest, on the ingest's read-ahead thread, while it renders a cited page for another
session. Every use of PDFium here (the text reader, the OCR page renderer, the page viewer) holds ``PDFIUM`` and
closes what it opened before letting go, so no document is left for the garbage collector to close on some other
thread. Tesseract and text post-processing run outside it.
"""

from __future__ import annotations

import threading

PDFIUM = threading.RLock()
