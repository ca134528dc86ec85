"""Real files of every kind a collection reads, written by the tests."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

from fpdf import FPDF

MARKDOWN = """# Field guide

## Herons

The grey heron stands motionless in shallow water and spears fish with its bill.

It nests in colonies called heronries, high in tall trees.

## Kingfishers

The kingfisher dives from a perch and carries its catch back to beat it against a branch.
"""

CODE = '''import math

RATE = 0.2


def area_of_circle(radius: float) -> float:
    """The area of a circle of the given radius."""
    return math.pi * radius ** 2


@staticmethod
def perimeter_of_square(side: float) -> float:
    return 4 * side


class Account:
    """A bank account that keeps its balance in cents."""

    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, cents: int) -> None:
        self.balance += cents
'''

TEXT = ("The lighthouse keeper lit the lamp at dusk every evening.\n\n"
        "Supplies came by boat from the mainland once a fortnight.\n")

PDF_PAGES = [
    "Quarterly report. Revenue grew by twelve percent in the northern region.",
    "Outlook. The board expects the new warehouse in Rotterdam to open in spring.",
]

HTML = """<html><head><title>t</title><style>p { color: red }</style>
<script>alert("never indexed")</script></head><body>
<h1>Tea brewing</h1><p>Green tea wants water at eighty degrees, not boiling.</p>
<h2>Black tea</h2><p>Black tea steeps for four minutes in boiling water.</p>
</body></html>"""


def write_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path, paragraphs: list[tuple[str, str]]) -> Path:
    """(style, text) paragraphs; style "Heading1" makes a heading."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(
        f'<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>'
        if style else f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
        for style, text in paragraphs)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/'
            '2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
            '</Types>'))
        archive.writestr("word/document.xml",
                         f'<?xml version="1.0"?><w:document xmlns:w="{w}"><w:body>{body}'
                         "</w:body></w:document>")
    return path


def write_collection(folder: Path) -> Path:
    """Markdown, code, text, a real two-page PDF, HTML, DOCX; a corrupt PDF
    and a binary file with a text suffix (both must be listed, not indexed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "birds.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "src").mkdir(exist_ok=True)
    (folder / "src" / "geometry.py").write_text(CODE, encoding="utf-8")
    (folder / "lighthouse.txt").write_text(TEXT, encoding="utf-8")
    write_pdf(folder / "report.pdf", PDF_PAGES)
    (folder / "tea.html").write_text(HTML, encoding="utf-8")
    write_docx(folder / "minutes.docx", [
        ("Heading1", "Meeting minutes"),
        ("", "The committee approved the new bicycle shed."),
        ("Heading1", "Actions"),
        ("", "Maria will order the bicycle racks by Friday."),
    ])
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <</Type /Catalog>> garbage\n")
    rng = random.Random(7)
    (folder / "noise.txt").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    # Hidden and dependency folders are never read.
    (folder / ".git").mkdir(exist_ok=True)
    (folder / ".git" / "notes.md").write_text("# secret\n\nnever indexed\n")
    return folder
