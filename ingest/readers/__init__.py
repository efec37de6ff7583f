"""Turn one input file into a :class:`ParsedDocument` (text per page plus a title).

The type is detected from the content (magic bytes, markup sniffing), and the file's extension must agree
with it: a text file named ``.pdf`` or a PDF named ``.docx`` is refused, naming both (a file with another or
no extension is read only if its content is plain text). The extension then decides between Markdown and
plain text. Every per-file problem is raised as :class:`IngestError` with a one-line message meant for the
person who uploaded the file.

One module per job: ``sniffing`` (the kind of file), ``decoding`` (bytes to text), ``cleanup`` (text fixes
and titles shared by all readers), a module per format (``pdf``, ``html``, ``word``, ``egov_xml``,
``plain_text``) and ``registry`` (the entry point that picks the reader).
"""

from ingest.readers.html import MAX_HTML_DEPTH, MAX_HTML_TAGS
from ingest.readers.registry import check_size, read_document
from ingest.readers.word import MAX_PACKING_RATIO, MAX_UNPACKED_BYTES

__all__ = [
    "MAX_HTML_DEPTH",
    "MAX_HTML_TAGS",
    "MAX_PACKING_RATIO",
    "MAX_UNPACKED_BYTES",
    "check_size",
    "read_document",
]
