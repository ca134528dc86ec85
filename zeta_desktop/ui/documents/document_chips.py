"""The collections a conversation asks against, as chips over the prompt box."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton, QWidget

from zeta_desktop.core.chat.api import CollectionInfo
from zeta_desktop.ui.style import set_small_text

CHIP_STYLE = (
    "QToolButton { border: 1px solid #93c5fd; border-radius: 9px; padding: 1px 8px;"
    " background: #eff6ff; color: #1e3a8a; }"
)


class DocumentChips(QWidget):
    sig_changed = Signal(list)
    """The user attached or removed a collection: the ids now attached."""
    sig_manage = Signal()
    """Open the documents window (add folders, see progress)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._collections: dict[str, CollectionInfo] = {}
        self._attached: list[str] = []
        self._chips: dict[str, QToolButton] = {}
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 2, 0, 2)
        self._row.setSpacing(6)
        self.add_button = QToolButton()
        self.add_button.setText("Documents")
        self.add_button.setToolTip("Ask this conversation's questions against document collections")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.add_button)
        self.menu.aboutToShow.connect(self._fill_menu)
        self.add_button.setMenu(self.menu)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        set_small_text(self.status, "#6b7280")
        self._row.addWidget(self.add_button)
        self._row.addStretch(1)
        self._row.addWidget(self.status)

    # -- what the controller calls ---------------------------------------------------

    def set_collections(self, infos: list[CollectionInfo]) -> None:
        names = [(i.id, i.name) for i in self._collections.values()]
        self._collections = {info.id: info for info in infos}
        if names != [(i.id, i.name) for i in infos]:  # counts change often; chips only so
            self._show()

    def set_attached(self, collection_ids: list[str] | tuple[str, ...]) -> None:
        self._attached = list(collection_ids)
        self._show()

    def attached(self) -> list[str]:
        return list(self._attached)

    def chip_texts(self) -> list[str]:
        return [chip.text() for chip in self._chips.values()]

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    # -- inside --------------------------------------------------------------------------

    def _show(self) -> None:
        for chip in self._chips.values():
            self._row.removeWidget(chip)
            chip.deleteLater()
        self._chips.clear()
        for index, collection_id in enumerate(self._attached):
            info = self._collections.get(collection_id)
            chip = QToolButton()
            chip.setStyleSheet(CHIP_STYLE)
            chip.setText(f"{info.name if info else 'a removed collection'}  ✕")
            chip.setToolTip("Questions here are answered from this collection's passages; "
                            "click to stop using it")
            chip.clicked.connect(lambda _c=False, cid=collection_id: self._detach(cid))
            self._row.insertWidget(1 + index, chip)
            self._chips[collection_id] = chip

    @Slot()
    def _fill_menu(self) -> None:
        self.menu.clear()
        for info in self._collections.values():
            action = self.menu.addAction(f"{info.name}  ({info.files} files)")
            action.setCheckable(True)
            action.setChecked(info.id in self._attached)
            action.toggled.connect(lambda on, cid=info.id: self._toggle(cid, on))
        if self._collections:
            self.menu.addSeparator()
        self.menu.addAction("Add or manage collections…", self.sig_manage.emit)

    def _toggle(self, collection_id: str, on: bool) -> None:
        if on and collection_id not in self._attached:
            self._attached.append(collection_id)
        elif not on and collection_id in self._attached:
            self._attached.remove(collection_id)
        self._show()
        self.sig_changed.emit(list(self._attached))

    def _detach(self, collection_id: str) -> None:
        self._toggle(collection_id, False)
