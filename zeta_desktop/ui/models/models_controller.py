"""The role cards' side of the window: which model each role runs, its live
numbers, and the picker and settings that change them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QDialog, QLabel, QWidget

from zeta_desktop.core.chat.api import ChatApi, RoleStateChanged, read_info, suggested_role
from zeta_desktop.core.settings import RoleConfig
from zeta_desktop.ui.models.role_panel import RolePanel
from zeta_desktop.ui.tasks import TaskManager

STATS_REFRESH_MS = 500


class ModelsController(QObject):
    def __init__(
        self,
        api: ChatApi,
        panel: RolePanel,
        banner: QLabel,
        tasks: TaskManager,
        notice: Callable[..., None],
        show_status: Callable[[str], None],
        on_chat_roles: Callable[[list[str]], None],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.api = api
        self.panel = panel
        self.banner = banner
        self.tasks = tasks
        self._notice = notice
        self._show_status = show_status
        self._on_chat_roles = on_chat_roles
        self._parent = parent
        self.model_picker: QDialog | None = None  # the last one opened (tests look at them)
        self.role_settings: QDialog | None = None
        panel.sig_choose_model.connect(self.choose_model)
        panel.sig_settings.connect(self.edit_role_settings)
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_REFRESH_MS)
        self._stats_timer.timeout.connect(self.refresh_stats)

    def start(self) -> None:
        self._stats_timer.start()

    def stop(self) -> None:
        self._stats_timer.stop()

    def on_role_state(self, event: RoleStateChanged) -> None:
        self.panel.on_role_state(event.role, event.state.value, event.detail)

    def refresh_labels(self) -> None:
        """Each card's model, the status bar's summary and the demo banner."""
        parts = []
        roles = self.api.roles()
        for role in roles:
            for replica in role.replicas:
                if replica.key in self.panel.cards:
                    self.panel.cards[replica.key].set_model(replica.label, replica.url)
                    parts.append(f"{replica.key}: {replica.label}")
            card = self.panel.cards.get(role.name)
            if card is None or not role.local:
                continue
            if not role.model_path:
                card.set_model("no model file", "")
                parts.append(f"{role.name}: none")
                continue
            card.set_model(role.model_label, role.model_path)
            parts.append(f"{role.name}: {Path(role.model_path).name}")
        self._show_status("   ·   ".join(parts))
        self._on_chat_roles(self.api.chat_roles())
        self._show_banner([r.name for r in roles if r.demo and r.demo_chats],
                          [r.name for r in roles if r.demo and not r.demo_chats])

    def _show_banner(self, chat_demo: list[str], embed_demo: list[str]) -> None:
        if not chat_demo and not embed_demo:
            self.banner.hide()
            return
        said = []
        if chat_demo:
            said.append(f"{', '.join(chat_demo)} {'use' if len(chat_demo) > 1 else 'uses'} "
                        "the small SmolLM2-135M demo model")
        if embed_demo:
            said.append(f"{', '.join(embed_demo)} {'use' if len(embed_demo) > 1 else 'uses'} "
                        "all-MiniLM-L6-v2, which embeds and never chats")
        self.banner.setText(
            f"Demo mode: {'; '.join(said)}. Point a role at your own GGUF file with its "
            "“Choose GGUF…” button, run with --coder/--embedder/--reasoner PATH, "
            f"or set roles.<role>.model_path in {self.api.config_path}."
        )
        self.banner.show()

    @Slot()
    def refresh_stats(self) -> None:
        telemetry = self.api.telemetry
        for role, signals in telemetry.snapshot().models.items():
            card = self.panel.cards.get(role)
            if card is None:
                continue
            card.set_stats(signals, telemetry.recent_tokens_per_s(role))
            memory = self.api.memory(role)
            if memory is not None:
                card.set_memory(memory.estimate_bytes, memory.note, memory.allocated_bytes or 0,
                                memory.placement)

    # -- changing a role's model or settings --------------------------------------------

    @Slot(str)
    def choose_model(self, role: str, opened: Path | None = None) -> None:
        """The model picker: what discovery finds, the role's best fit (or the
        file the user opened) selected."""
        from zeta_desktop.ui.models.model_picker import ModelPicker

        config = self.api.config.roles[role]
        picker = ModelPicker(
            role, wants_embedding=config.can_embed and not config.can_chat,
            n_ctx=config.n_ctx, n_gpu_layers=config.n_gpu_layers, tasks=self.tasks,
            folders=self.api.model_folders, on_folder_added=self._remember_folder,
            opened=opened, parent=self._parent,
        )
        picker.sig_chosen.connect(lambda chosen_role, path: self.set_role_model(chosen_role, path))
        picker.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.model_picker = picker
        picker.show()
        picker.start_scan()

    def open_model_file(self, path: Path) -> None:
        """A .gguf opened with the app: its header is read in the background,
        then the picker opens on it for the role it suits (nothing loads
        until the user chooses Load). An unreadable file is said in the chat."""

        def opened(info: Any) -> None:  # GGUFInfo
            if info.error:
                self._notice(f"Could not open {path}: {info.error}.")
                return
            role = self._role_for(suggested_role(info, path.name), info.is_embedding)
            if role is None:
                self._notice(f"Could not open {path}: no role here can run it.")
                return
            self._notice(f"Opened {path.name}: it suits the {role} role. Choose Load in the "
                         "picker to run it there.", "#4b5563")
            self.choose_model(role, opened=path)

        self.tasks.run_in_background(lambda: read_info(path), opened,
                                     lambda exc: self._notice(f"Could not open {path}: {exc}"))

    def _role_for(self, suggested: str, embeds: bool) -> str | None:
        """The suggested role if this app has it; else the first role that can
        run the model's kind (embeddings, or chat)."""
        roles = self.api.config.roles
        if suggested in roles:
            return suggested
        return next((name for name, config in roles.items()
                     if (config.can_embed if embeds else config.can_chat)), None)

    def _remember_folder(self, folder: str) -> None:
        problem = self.api.remember_model_folder(folder)
        if problem:
            self._notice(problem)

    @Slot(str)
    def edit_role_settings(self, role: str) -> None:
        from zeta_desktop.ui.models.role_settings import RoleSettingsDialog

        dialog = RoleSettingsDialog(role, self.api.config.roles[role], parent=self._parent)
        dialog.sig_apply.connect(self.apply_role_settings)
        dialog.sig_pick_model.connect(self.choose_model)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.role_settings = dialog
        dialog.show()

    def apply_role_settings(self, role: str, config: RoleConfig) -> None:
        """Reload the role with these settings beside the old model, which keeps
        answering until the new one is ready; saved once it is."""
        self._notice(f"Reloading {role} with its new settings; it keeps answering meanwhile.",
                     "#4b5563")

        def done(result: tuple[str, str]) -> None:
            kept_because, save_problem = result
            if kept_because:
                self._notice(f"Kept {role} as it was: {kept_because}")
                return
            if save_problem:
                self._notice(save_problem)
            self.refresh_labels()
            self._notice(f"{role} reloaded with its new settings.", "#15803d")

        self.tasks.run_in_background(
            lambda: self.api.apply_role_settings(role, config), done,
            lambda exc: self._notice(f"Could not reload {role}: {exc}"),
        )

    def set_role_model(self, role: str, path: str) -> None:
        """Load another file for a role and remember it in the config file.

        The old worker may still be loading (a join of minutes): the swap runs
        in the background and the window keeps answering.
        """
        problem = self.api.set_role_model(role, path)
        if problem:
            self._notice(problem)
        if role in self.panel.cards:
            self.panel.cards[role].set_model(Path(path).name, path)
        self.tasks.run_in_background(
            lambda: self.api.reload_role(role), lambda _r: self.refresh_labels(),
            lambda exc: self._notice(f"Could not switch {role} to {path}: {exc}"),
        )
