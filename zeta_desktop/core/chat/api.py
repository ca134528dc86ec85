"""The one door into the core, for the window and any other client.

`open_chat()` composes the core (the history store, the session over its
models) and returns a `ChatApi`: the session's verbs, and its events
(core/chat/events.py) for whoever subscribes. A client imports this module,
`core.settings` and `core.conversation.model`, and nothing else of the core;
an import-linter contract holds ui/ to it. The read-only types a client
shows (a routing decision, a model's signals, a search hit) are re-exported
here, so that the door names the whole vocabulary.

Verbs that wait (loading a model, reloading a role) block: a GUI runs them
through its background helper. Everything else returns at once.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from zeta_desktop.core.chat.events import (
    Alert,
    AnswerText,
    DocumentsSearched,
    RoleStateChanged,
    SessionEvent,
    Subscriber,
    TurnEnded,
    TurnEvent,
    TurnRetried,
    TurnRouted,
    TurnStarted,
)
from zeta_desktop.core.chat.session import ChatSession, EngineLoader, default_history_path
from zeta_desktop.core.chat.turn import AnswerOptions
from zeta_desktop.core.chat.turn_feeds import TurnFeed
from zeta_desktop.core.chat.turn_runner import Turn, TurnStatus
from zeta_desktop.core.config import LoadedConfig, save_or_say, user_data_dir
from zeta_desktop.core.conversation import exchange
from zeta_desktop.core.conversation.answer_parts import Code, Part, answer_parts, split_thinking
from zeta_desktop.core.conversation.model import Conversation, Message
from zeta_desktop.core.documents.grounding import Source
from zeta_desktop.core.documents.index_db import CollectionInfo
from zeta_desktop.core.documents.library import DocumentLibrary, MessageHit, Progress
from zeta_desktop.core.engines.base import ChatMessage, EngineError, NoRoleAvailableError
from zeta_desktop.core.engines.build_info import build_info
from zeta_desktop.core.fleet.worker import ChatStats, WorkerState, estimate_prompt_tokens
from zeta_desktop.core.models.discovery import Found, Place, default_places, scan
from zeta_desktop.core.models.gguf_info import read_info
from zeta_desktop.core.models.memory import estimate, mib
from zeta_desktop.core.models.suits import suggested_role
from zeta_desktop.core.resources import resource_path
from zeta_desktop.core.routing.router import Adjustment, Decision, explain
from zeta_desktop.core.routing.telemetry import ModelSignals, Telemetry
from zeta_desktop.core.settings import AppConfig, RoleConfig, ServerConfig, Thresholds
from zeta_desktop.core.settings.router import ThresholdChanges
from zeta_desktop.core.store.history import UNDO_S, HistoryStore, SearchHit

__all__ = [
    "UNDO_S",
    "Adjustment",
    "Alert",
    "AnswerOptions",
    "AnswerText",
    "ChatApi",
    "ChatMessage",
    "ChatStats",
    "Code",
    "CollectionInfo",
    "Conversation",
    "Decision",
    "DocumentLibrary",
    "DocumentsSearched",
    "EngineError",
    "EngineLoader",
    "Found",
    "HistoryStore",
    "LoadedConfig",
    "MemoryReading",
    "Message",
    "MessageHit",
    "ModelSignals",
    "NoRoleAvailableError",
    "Part",
    "Place",
    "PreviewRow",
    "Progress",
    "ReplicaView",
    "RoleStateChanged",
    "RoleView",
    "SearchHit",
    "SentTurn",
    "ServedModel",
    "SessionEvent",
    "Source",
    "Subscriber",
    "Telemetry",
    "Turn",
    "TurnEnded",
    "TurnEvent",
    "TurnFeed",
    "TurnRetried",
    "TurnRouted",
    "TurnStarted",
    "TurnStatus",
    "WorkerState",
    "answer_parts",
    "default_places",
    "estimate",
    "estimate_prompt_tokens",
    "exchange",
    "mib",
    "open_chat",
    "read_info",
    "resource_path",
    "scan",
    "split_thinking",
    "suggested_role",
    "user_data_dir",
]


@dataclass(frozen=True)
class SentTurn:
    """A prompt on its way: its turn, and the two messages it added."""

    turn_id: int
    question: Message
    answer: Message


@dataclass(frozen=True)
class ReplicaView:
    key: str  # `coder`, or `coder#2` for a role's second server
    label: str
    url: str


@dataclass(frozen=True)
class RoleView:
    """What a client shows of one role: its model and whether it chats."""

    name: str
    can_chat: bool
    local: bool  # reads a GGUF file here (else its replicas are servers)
    model_label: str  # "" with no model file
    model_path: str
    demo: bool  # the bundled demo model
    demo_chats: bool  # the demo model of this role chats (the demo embedder does not)
    replicas: tuple[ReplicaView, ...]


@dataclass(frozen=True)
class MemoryReading:
    """A loaded role's memory: what was planned for it and what it took."""

    estimate_bytes: int
    note: str
    allocated_bytes: int | None
    # The llama.cpp build's backend ("cpu", "cuda", ...), and the layers it put
    # on the GPU as its load said: (on the GPU, of); None when it said nothing.
    backend: str = "cpu"
    offloaded_layers: tuple[int, int] | None = None

    @property
    def placement(self) -> str:
        """Where the layers run, for the role card: "CPU", "CUDA 25/25 layers"."""
        if self.offloaded_layers is None or self.offloaded_layers[0] == 0:
            return "CPU"
        on_gpu, of = self.offloaded_layers
        return f"{self.backend.upper()} {on_gpu}/{of} layers"


@dataclass(frozen=True)
class ServedModel:
    """A name a client may ask for: `auto` (the router), a role, or a role's model."""

    id: str
    role: str | None  # None: `auto`, the router's choice
    chats: bool
    embeds: bool


@dataclass(frozen=True)
class PreviewRow:
    """Where a recent prompt would go now, beside where it went."""

    prompt: str
    kind: str
    role: str  # "—" when no model could take it now
    why: str
    full_reason: str
    sent_to: str
    client: str = ""  # "" typed in the window; else the API client that sent it


class ChatApi:
    """The session's verbs and events; one per window (or server)."""

    def __init__(self, session: ChatSession, loaded: LoadedConfig | None = None) -> None:
        # The composed core, for the CLI, tests and benchmarks that look
        # inside; a client speaks only through the verbs below.
        self.session = session
        self._loaded = loaded  # what is saved; the session's config may carry one-run overrides
        self._save_lock = threading.Lock()
        self._alerts_lock = threading.Lock()
        self._held_alerts: list[str] | None = []  # None once a client has subscribed
        self.history: HistoryStore | None = session.store  # None: nothing is kept
        self.documents: DocumentLibrary | None = session.library
        self.telemetry: Telemetry = session.telemetry  # live readings, for plots

    # -- events and lifecycle ---------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        """Every event from now on, on the thread that published it; alerts
        raised before the first client subscribed come first."""
        self.session.events.subscribe(subscriber)
        with self._alerts_lock:
            held, self._held_alerts = self._held_alerts, None
        for text in held or []:
            subscriber(Alert(text))

    def alert(self, text: str) -> None:
        """A problem that outlives a conversation (the history file could not
        be written): kept until a client subscribes, so none is lost."""
        with self._alerts_lock:
            if self._held_alerts is not None:
                self._held_alerts.append(text)
                return
        self.session.events.publish(Alert(text))

    def start(self) -> None:
        self.session.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self.session.wait_loaded(timeout)

    def shutdown(self) -> None:
        """Stop the models, then close the history: an answer's last words are saved first."""
        self.stop_models()
        self.close_history()

    def stop_models(self) -> None:
        self.session.shutdown()

    def close_history(self) -> None:
        if self.history is not None:
            self.history.close()

    def self_test(self, say: Callable[[str], None]) -> int:
        """Ask every model for an answer (or an embedding) through its worker; 0 if all did."""
        from zeta_desktop.core.self_test import run_self_test

        return run_self_test(self.session, say)

    @property
    def config(self) -> AppConfig:
        return self.session.config

    @property
    def config_path(self) -> Path | None:
        return self._loaded.path if self._loaded is not None else None

    def setting_problems(self) -> list[str]:
        """What the config file got wrong, and endpoints that are not safe."""
        problems = [f"Settings: {p}" for p in (self._loaded.problems if self._loaded else [])]
        return problems + [f"Security: {w}" for w in self.session.endpoint_warnings()]

    # -- conversations ----------------------------------------------------------------

    @property
    def conversation(self) -> Conversation:
        """The one shown: new prompts go there."""
        return self.session.conversation

    def conversation_by_id(self, conversation_id: str) -> Conversation | None:
        """A conversation open in this session (shown, or still answering)."""
        return self.session.conversation_by_id(conversation_id)

    def show(self, conversation: Conversation) -> Conversation:
        return self.session.show(conversation)

    def new_conversation(self) -> Conversation:
        return self.session.new_conversation()

    def busy_conversations(self) -> set[str]:
        return self.session.busy_conversations()

    def set_system_prompt(self, text: str, conversation: Conversation | None = None) -> None:
        self.session.set_system_prompt(text, conversation)

    def select_branch(self, message_id: str) -> None:
        self.session.select_branch(message_id)

    def set_collections(self, collection_ids: Collection[str]) -> None:
        """The document collections the shown conversation's questions are asked against."""
        self.session.set_collections(collection_ids)

    # -- turns ------------------------------------------------------------------------

    def send(self, prompt: str, role: str | None = None) -> SentTurn:
        """Queue a prompt under the shown branch; `role` skips the router."""
        conversation = self.session.conversation
        return self._sent(conversation, self.session.send(prompt, role=role))

    def edit(self, message_id: str, text: str, role: str | None = None) -> SentTurn:
        """A new version of a prompt, answered again; the old one stays as a branch."""
        conversation = self.session.conversation
        return self._sent(conversation, self.session.edit_and_resend(message_id, text, role))

    def regenerate(self, answer_id: str, role: str | None = None) -> SentTurn:
        """Another answer to the same prompt, through the router or `role`."""
        conversation = self.session.conversation
        return self._sent(conversation, self.session.regenerate(answer_id, role))

    def _sent(self, conversation: Conversation, turn_id: int) -> SentTurn:
        """The turn and the prompt and answer it added (the end of its branch)."""
        *_earlier, question, answer = conversation.path(self.session.turn(turn_id).answer_id)
        return SentTurn(turn_id, question, answer)

    def stop(self, turn_id: int | None = None) -> None:
        """Stop one answer, or every answer still coming that the window asked
        for (an API client's answers stop only when it goes away)."""
        if turn_id is not None:
            self.session.stop(turn_id)
            return
        for turn in self.session.turns:
            if turn.status.active and not turn.from_client:
                self.session.stop(turn.turn_id)

    def stop_conversation(self, conversation_id: str) -> None:
        self.session.stop_conversation(conversation_id)

    def turn(self, turn_id: int) -> Turn:
        return self.session.turn(turn_id)

    @property
    def turns(self) -> list[Turn]:
        return self.session.turns

    def is_answering(self, message_id: str) -> bool:
        """A turn of this session is still writing this answer."""
        turn = self.session.turn_for_message(message_id)
        return turn is not None and turn.status.active

    def has_turn(self, message_id: str) -> bool:
        """This session wrote (or is writing) this answer."""
        return self.session.turn_for_message(message_id) is not None

    def decision_text(self, message_id: str) -> str:
        """The full routing decision of an answer, this session's or a saved one."""
        turn = self.session.turn_for_message(message_id)
        if turn is not None and turn.decision is not None:
            return explain(turn.decision, turn.attempts)
        message = self.session.conversation.get(message_id)
        if message is not None and message.meta.decision_text:
            return message.meta.decision_text
        return "not routed yet"

    # -- a client's requests (the OpenAI-compatible server) ---------------------------

    def ask(self, messages: list[ChatMessage], feed: TurnFeed, *, role: str | None = None,
            options: AnswerOptions | None = None, client: str = "api",
            keep: bool = False) -> int:
        """Answer a client's messages (the last one the user's), routed unless
        `role` is named; `feed` hears the turn's events, on worker threads.
        `keep`: saved in the history as a conversation titled by the client."""
        return self.session.send_request(messages, feed, role=role, options=options,
                                         client=client, keep=keep)

    def catalog(self) -> list[ServedModel]:
        """`auto`, each role, and each role's model file (a file two roles
        share names the first of them)."""
        roles = self.session.roles
        served = [ServedModel("auto", None, bool(self.chat_roles()), False)]
        served += [ServedModel(name, name, self.session.can_chat(name),
                               self.session.can_embed(name)) for name in roles]
        seen = {model.id for model in served}
        for name, runtime in roles.items():
            ids = ([runtime.source.display_name] if runtime.source is not None
                   else [r.endpoint.model for r in runtime.replicas
                         if r.endpoint is not None])
            for model_id in ids:
                if model_id and model_id not in seen:
                    seen.add(model_id)
                    served.append(ServedModel(model_id, name, self.session.can_chat(name),
                                              self.session.can_embed(name)))
        return served

    def largest_context(self) -> int | None:
        """The most tokens any chat model here holds; None when a server's
        is not known (it says so itself when a prompt is too long)."""
        sizes = []
        for name in self.chat_roles():
            runtime = self.session.roles[name]
            if not runtime.config.uses_local_model:
                return None
            sizes.append(runtime.config.n_ctx)
        return max(sizes, default=None)

    def client_of(self, turn_id: int) -> str:
        """Who sent a turn: '' for the window, else its API client ("api: curl/8.5")."""
        return self.session.turn(turn_id).client

    def ended_too_long(self, turn_id: int) -> bool:
        """The turn failed because no model's context holds its prompt."""
        try:
            return self.session.turn(turn_id).too_long
        except KeyError:  # long forgotten (the ledger keeps the newest turns)
            return False

    def client_turns_active(self) -> int:
        """Clients' turns not yet answered (routing, queued or streaming)."""
        return sum(1 for t in self.session.turns if t.from_client and t.status.active)

    def embed(self, texts: list[str], timeout: float | None = None) -> list[list[float]]:
        """One vector per text, from the embedding role's model (blocks)."""
        return self.session.embed(texts, timeout)

    def embed_role(self) -> str | None:
        return self.session.fleet.embed_role()

    def count_tokens(self, role: str, texts: list[str],
                     timeout: float | None = None) -> list[int]:
        """Token counts in `role`'s tokenizer, on its worker (an estimate for a server)."""
        return self.session.fleet.count_tokens_on(role, texts, timeout)

    def save_server_settings(self, settings: ServerConfig) -> str:
        """The local server's settings (the window's Server switch), for this
        run and saved; a problem saving them, or ''."""
        self.session.config.server = copy.deepcopy(settings)
        saved_copy = copy.deepcopy(settings)
        return self._save(lambda saved: setattr(saved, "server", saved_copy))

    # -- roles and models -------------------------------------------------------------

    def roles(self) -> list[RoleView]:
        views = []
        for name, runtime in self.session.roles.items():
            source = runtime.source
            replicas = tuple(
                ReplicaView(r.key, r.endpoint.label, r.endpoint.base_url)
                for r in runtime.replicas if r.endpoint is not None
            )
            views.append(RoleView(
                name=name, can_chat=self.session.can_chat(name),
                local=runtime.config.uses_local_model,
                model_label=source.display_name if source is not None else "",
                model_path=str(source.path) if source is not None else "",
                demo=source is not None and source.is_demo,
                demo_chats=source is not None and source.is_demo and source.can_chat,
                replicas=replicas,
            ))
        return views

    def chat_roles(self) -> list[str]:
        """The roles a prompt can be sent to."""
        return [name for name in self.session.roles if self.session.can_chat(name)]

    def endpoints(self) -> list[str]:
        """Every model's key, a role's replicas each apart (the plots draw each)."""
        return list(self.session.fleet.endpoints)

    def memory(self, role: str) -> MemoryReading | None:
        plan = self.session.fleet.plans.get(role)
        if plan is None:
            return None
        worker = self.session.fleet.worker(role)
        return MemoryReading(plan.estimate.total_bytes, plan.message, worker.allocated_bytes,
                             build_info().backend, worker.offloaded_layers)

    def set_role_model(self, role: str, path: str) -> str:
        """Point a role at another file, saved at once; `reload_role` loads it.
        Returns a problem saving the choice, or ''."""
        problem = self._save(lambda saved: setattr(saved.roles[role], "model_path", path))
        self.session.config.roles[role].model_path = path
        return problem

    def reload_role(self, role: str) -> None:
        """Load the role's model as its settings now say; blocks until the old
        worker has let go (a join of minutes while it is still loading)."""
        self.session.replace_role(role, self.session.config.roles[role])

    def apply_role_settings(self, role: str, role_config: RoleConfig) -> tuple[str, str]:
        """Reload a role with new settings beside the old model, which keeps
        answering until the new one is ready; blocks until then. Returns why
        it was kept as it was ('' when reloaded) and a problem saving the new
        settings ('' when saved); they are saved only once they load."""
        kept_because = self.session.replace_role_hot(role, role_config)
        if kept_because:
            return kept_because, ""
        saved_copy = copy.deepcopy(role_config)
        return "", self._save(lambda saved: saved.roles.__setitem__(role, saved_copy))

    def remember_model_folder(self, folder: str) -> str:
        """A folder the model picker searches from now on."""
        def add(saved: AppConfig) -> None:
            if folder not in saved.model_folders:
                saved.model_folders.append(folder)
        return self._save(add)

    @property
    def model_folders(self) -> list[str]:
        return list(self._loaded.config.model_folders) if self._loaded else []

    def _save(self, change: Callable[[AppConfig], None]) -> str:
        """Change what is saved (not this run's overrides) and write it; a problem, or ''."""
        if self._loaded is None:
            return ""
        with self._save_lock:
            change(self._loaded.config)
            return save_or_say(self._loaded.config, self._loaded.path)

    # -- the router -------------------------------------------------------------------

    @property
    def thresholds(self) -> Thresholds:
        return self.session.router.thresholds

    @property
    def policy(self) -> str:
        return self.session.router.policy

    def set_policy(self, policy: str) -> None:
        self.session.router.policy = policy

    def update_thresholds(self, **changes: Unpack[ThresholdChanges]) -> None:
        self.session.router.update_thresholds(**changes)

    def reset_router(self) -> None:
        """Default thresholds, and forget what the user's role choices taught it."""
        self.session.router.set_thresholds(Thresholds())
        self.session.reset_learned()

    def save_router_settings(self) -> str:
        router = self.session.router
        thresholds = dataclasses.asdict(router.thresholds)
        return self._save(lambda saved: setattr(
            saved, "router", dataclasses.replace(saved.router, policy=router.policy,
                                                 **thresholds)))

    def adjustments_since(self, seen: int) -> tuple[list[Adjustment], int]:
        """The router's self-adjustments after the first `seen`, and the new count."""
        return self.session.router.adjustments_since(seen)

    def task_reading(self) -> str:
        return self.session.task_reading()

    def route_preview(self, rows: int) -> list[PreviewRow]:
        """The newest prompts, newest first: where each would be routed now."""
        turns = [t for t in self.session.turns if t.classification is not None][-rows:][::-1]
        snapshot = self.session.telemetry.snapshot()
        preview = []
        for turn in turns:
            classification = turn.classification
            assert classification is not None
            try:
                decision = self.session.router.route(
                    classification.kind, snapshot=snapshot, commit=False,
                    classification=classification)
                role, full = decision.role, decision.reason
                why = full.split(": ", 1)[-1]
            except NoRoleAvailableError as exc:
                role, why = "—", str(exc)
                full = why
            preview.append(PreviewRow(turn.prompt.replace("\n", " ")[:80],
                                      classification.kind.value, role, why, full, turn.role,
                                      turn.client))
        return preview


def open_chat(
    loaded: LoadedConfig,
    run_config: AppConfig,
    engine_loader: EngineLoader,
    keep_history: bool = True,
    history_path: Path | None = None,
    on_history_problem: Callable[[str], None] | None = None,
) -> ChatApi:
    """Compose the core: the history store (unless `keep_history` is False,
    a benchmark's baseline or the self-test), the session over its models."""
    store = None
    # The store's thread may report before the door exists: held until it does.
    early: list[str] = []
    door: list[ChatApi] = []
    lock = threading.Lock()

    def problem(text: str) -> None:
        if on_history_problem is not None:
            on_history_problem(text)
            return
        with lock:
            if not door:
                early.append(text)
                return
        door[0].alert(text)

    if keep_history:
        store = HistoryStore(history_path or default_history_path(), on_problem=problem)
    api = ChatApi(ChatSession(run_config, engine_loader, store=store), loaded)
    with lock:
        door.append(api)
        held = list(early)
    for text in held:
        api.alert(text)
    return api
