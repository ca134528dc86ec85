"""The menu entry opens what the app opens: each file kind `zeta-desktop FILE`
takes has its MIME type declared, GGUF's from the app's own type."""

from __future__ import annotations

import configparser
import mimetypes
import xml.etree.ElementTree as ET
from pathlib import Path

from zeta_desktop.ui.open_files import CONVERSATION_SUFFIXES, DOCUMENT_SUFFIXES

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
APP_ID = "io.github.zeta_desktop.ZetaDesktop"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(RESOURCES / f"{APP_ID}.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_the_entry_hands_files_and_declares_every_kind_the_app_opens() -> None:
    entry = desktop_entry()
    assert entry["Exec"] == "zeta-desktop %F"
    declared = set(filter(None, entry["MimeType"].split(";")))
    for suffix in DOCUMENT_SUFFIXES | CONVERSATION_SUFFIXES:
        kind, _encoding = mimetypes.guess_type(f"file{suffix}", strict=False)
        assert kind in declared, f"{suffix} ({kind}) is opened but not declared"
    assert "application/x-gguf" in declared


def test_gguf_files_get_the_type_by_name_and_by_their_magic() -> None:
    tree = ET.parse(RESOURCES / f"{APP_ID}.mime.xml")
    (kind,) = tree.getroot().findall(f"{MIME_NS}mime-type")
    assert kind.get("type") == "application/x-gguf"
    assert [g.get("pattern") for g in kind.findall(f"{MIME_NS}glob")] == ["*.gguf"]
    match = kind.find(f"{MIME_NS}magic/{MIME_NS}match")
    assert match is not None and (match.get("offset"), match.get("value")) == ("0", "GGUF")
