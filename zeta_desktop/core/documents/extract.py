"""Text out of the files a user adds to a collection, with where each piece sits.

Each reader returns `Section`s: a run of text with its page (PDF) or its
first line (everything else), and for prose the heading it sits under. A file
that cannot be read raises `UnreadableError` with a reason meant for the user;
the indexer lists it and goes on with the rest.

Formats: plain text, Markdown, source code, PDF (pypdf), HTML (the standard
library's parser, scripts and styles dropped) and DOCX (its XML read with
zipfile: paragraphs and heading styles; no library needed).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

MAX_FILE_BYTES = 50 * 1024 * 1024  # past this a file is listed, not read

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx", ".rst"}
TEXT_SUFFIXES = {".txt", ".text", ".log", ".csv", ".tsv", ".org", ".tex", ".adoc", ""}
CODE_SUFFIXES = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".c", ".h", ".cc", ".cpp", ".hpp",
    ".cxx", ".rs", ".go", ".java", ".kt", ".kts", ".scala", ".swift", ".rb", ".php", ".cs",
    ".lua", ".sh", ".bash", ".zsh", ".sql", ".r", ".jl", ".m", ".pl", ".hs", ".ex", ".exs",
    ".dart", ".zig", ".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".cmake", ".mk",
}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUPPORTED_SUFFIXES = (
    MARKDOWN_SUFFIXES | TEXT_SUFFIXES | CODE_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
) - {""}
NAMED_TEXT_FILES = {"makefile", "dockerfile", "readme", "license", "changelog"}


class UnreadableError(Exception):
    """The file cannot be indexed; the message says why, for the user."""


@dataclass(frozen=True)
class Section:
    text: str
    line_start: int | None = None  # 1-based, inclusive
    line_end: int | None = None
    page: int | None = None  # 1-based
    heading: str = ""


@dataclass(frozen=True)
class Extracted:
    kind: str  # "text", "markdown", "code", "pdf", "html", "docx"
    sections: list[Section]


def kind_of(path: Path) -> str | None:
    """The reader for a file by its name; None: not a kind the app indexes."""
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix == ".pdf":
        return "pdf"
    if suffix == ".docx":
        return "docx"
    if suffix in TEXT_SUFFIXES and (suffix or path.name.lower() in NAMED_TEXT_FILES):
        return "text"
    return None


def extract(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Extracted:
    kind = kind_of(path)
    if kind is None:
        raise UnreadableError(f"not a kind of file the app reads ({path.suffix or 'no suffix'})")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnreadableError(
                f"too large ({size / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB)"
            )
        data = path.read_bytes()
    except PermissionError:
        raise UnreadableError("permission denied") from None
    except OSError as exc:
        raise UnreadableError(f"cannot be read ({exc.strerror or exc})") from None
    if kind == "pdf":
        return Extracted(kind, _pdf_sections(path))
    if kind == "docx":
        return Extracted(kind, _docx_sections(data))
    text = _decode(data)
    if kind == "html":
        return Extracted(kind, _html_sections(text))
    if kind == "markdown":
        return Extracted(kind, _markdown_sections(text))
    return Extracted(kind, [Section(text, 1, text.count("\n") + 1)] if text.strip() else [])


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnreadableError("binary content (not text)")
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else (
        "utf-8-sig",
    ):
        try:
            return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            continue
    # Not UTF-8: legacy text mostly decodes as cp1252; anything with many
    # control characters is binary with a text suffix.
    text = data.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text[:8192] if ord(ch) < 9 or 13 < ord(ch) < 32)
    if controls > 0.01 * min(len(text), 8192):
        raise UnreadableError("binary content (not text)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _markdown_sections(text: str) -> list[Section]:
    """One section per heading's body, with the heading path (## under #); the
    heading line itself is not in the text (each chunk carries it as its heading)."""
    sections: list[Section] = []
    trail: list[str] = []
    start = 1
    lines: list[str] = []
    in_fence = False

    def close(end: int) -> None:
        body = "\n".join(lines)
        if body.strip():
            sections.append(Section(body, start, end, heading=" › ".join(trail)))

    for number, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            close(number - 1)
            level = len(match.group(1))
            trail = [*trail[: level - 1], match.group(2)]
            start, lines = number + 1, []
            continue
        lines.append(line)
    close(text.count("\n") + 1)
    return sections


def _pdf_sections(path: Path) -> list[Section]:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many "encrypted" PDFs open with no password
            except Exception:
                opened = PasswordType.NOT_DECRYPTED
            if not opened:
                raise UnreadableError("the PDF is encrypted (a password is needed)")
        sections = []
        for number, page in enumerate(reader.pages, 1):
            text = (page.extract_text() or "").strip()
            if text:
                sections.append(Section(text, page=number))
    except UnreadableError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, IndexError) as exc:
        raise UnreadableError(f"a broken PDF ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise UnreadableError(f"a broken PDF ({type(exc).__name__}: {exc})") from None
    if not sections:
        raise UnreadableError("the PDF holds no text (scanned pages need OCR, which is not done)")
    return sections


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _docx_sections(data: bytes) -> list[Section]:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if archive.getinfo("word/document.xml").file_size > MAX_FILE_BYTES * 4:
                raise UnreadableError("its text unpacks to over 200 MB (not read)")
            xml = archive.read("word/document.xml")
        root = ElementTree.fromstring(xml)
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise UnreadableError(f"a broken DOCX ({exc})") from None
    sections: list[Section] = []
    heading = ""
    paragraphs: list[str] = []

    def close() -> None:
        # A DOCX has no lines (its page breaks are the reader's): the heading places it.
        if paragraphs:
            sections.append(Section("\n\n".join(paragraphs), heading=heading))

    for paragraph in root.iter(f"{_W}p"):
        text = "".join(node.text or "" for node in paragraph.iter(f"{_W}t")).strip()
        if not text:
            continue
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        style_name = style.get(f"{_W}val", "") if style is not None else ""
        if style_name.lower().startswith(("heading", "title")):
            close()
            heading, paragraphs = text, []
            continue
        paragraphs.append(text)
    close()
    return sections


class _HtmlText(HTMLParser):
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "section", "article", "pre", "blockquote",
              "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "header", "footer"})
    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n" if tag != "br" else "\n")
            if tag[0] == "h" and tag[1:].isdigit():
                self.parts.append("#" * int(tag[1:]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_sections(text: str) -> list[Section]:
    """The page's text as Markdown-like prose (headings kept), then split as Markdown."""
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    flat = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    flat = re.sub(r"\n\s*\n\s*", "\n\n", flat).strip()
    # Lines of the text taken out are not the page's lines: a citation names
    # the heading instead.
    return [Section(s.text, heading=s.heading) for s in _markdown_sections(flat)]
