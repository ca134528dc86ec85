"""The chat session: the one object the window (or the CLI, or a benchmark) talks to.

A thin facade over its parts:
- the fleet (`fleet.Fleet`): one worker thread per role, each owning its model;
- the turn runner (`turn_runner.TurnRunner`): route, submit, retry, stop;
- the conversation model (`conversation.Conversation`): messages with parents;
- the store (`store.HistoryStore`, optional): history on disk.
The store and the telemetry listen to the turn runner; the session wires them
and keeps the conversations that are open (the one shown, and any still
streaming after the user switched away).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection
from concurrent.futures import Future
from pathlib import Path

from zeta_desktop.core.chat.events import (
    EventHub,
    RoleStateChanged,
    SessionEvent,
    Subscriber,
    TurnEnded,
)
from zeta_desktop.core.chat.fleet_embedder import FleetEmbedder
from zeta_desktop.core.chat.history_recorder import HistoryRecorder
from zeta_desktop.core.chat.outcomes import TelemetryOutcomes
from zeta_desktop.core.chat.turn_runner import Turn, TurnRunner, Watchdog
from zeta_desktop.core.config import user_data_dir
from zeta_desktop.core.conversation.model import (
    DEFAULT_SYSTEM_PROMPT,
    Conversation,
    Message,
    MessageStatus,
)
from zeta_desktop.core.documents.library import DocumentLibrary
from zeta_desktop.core.engines.base import ChatMessage, EngineError, NoRoleAvailableError
from zeta_desktop.core.fleet.fleet import EngineLoader, Fleet, RoleRuntime, endpoint_role
from zeta_desktop.core.fleet.worker import ModelWorker, WorkerState
from zeta_desktop.core.routing.classifier import (
    Classification,
    EmbeddingVote,
    TaskClassifier,
    TaskKind,
    explicit_command,
    shipped_embedding_index,
)
from zeta_desktop.core.routing.learned import PROBE_MATCH, EmbeddingIndex
from zeta_desktop.core.routing.machine import MachineSource, NvmlSource
from zeta_desktop.core.routing.own_index import (
    BuildCancelledError,
    EmbedderTooSlowError,
    OwnIndexBuilder,
)
from zeta_desktop.core.routing.router import (
    DEFAULT_PREFERENCES,
    GENERIC_PREFERENCE,
    Decision,
    RoleProfile,
    ZetaDynamicRouter,
)
from zeta_desktop.core.routing.sampler import TelemetrySampler
from zeta_desktop.core.routing.telemetry import Telemetry
from zeta_desktop.core.settings import AppConfig, RoleConfig
from zeta_desktop.core.store.history import HistoryStore

__all__ = ["ChatSession", "EngineLoader", "RoleRuntime", "Turn"]

log = logging.getLogger(__name__)

LEARNED_KEY = "router.learned"  # app_state key: learned_shift() as JSON

# A prompt never waits long on a busy embedder: the text model answers instead.
EMBED_VOTE_TIMEOUT_S = 2.0
OWN_INDEX_TIMEOUT_S = 300.0  # one batch of the own index's prompts, on a slow embedder
VOTE_SLOWEST_S = 1.0  # an embedder slower than this a prompt delays every answer: no vote
IDLE_POLL_S = 0.05  # how often the own index's build looks whether the embedder is free


class ChatSession:
    def __init__(
        self,
        config: AppConfig,
        engine_loader: EngineLoader,
        subscriber: Subscriber | None = None,
        machine: MachineSource | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_retries: int | None = None,
        store: HistoryStore | None = None,
    ) -> None:
        self.config = config
        # Everything the session reports (core/chat/events.py), from worker
        # and dispatcher threads.
        self.events = EventHub()
        self.system_prompt = system_prompt  # for new conversations
        self.store = store
        self.telemetry = Telemetry()
        self._machine = machine if machine is not None else NvmlSource()
        self.fleet = Fleet(
            dict(config.roles),
            engine_loader,
            on_state=self._on_worker_state,
            on_worker_added=self._register_worker,
            free_memory=self._free_memory,
        )
        self.router = ZetaDynamicRouter(
            {name: self._profile(name) for name in self.fleet.roles},
            self.telemetry,
            thresholds=config.router.thresholds(),
            policy=config.router.policy,
        )
        self.classifier = TaskClassifier()
        if max_retries is None:
            # A failed answer is tried on every other model that chats, once
            # each: with two of three models failing, the third still answers.
            # Each replica counts: a role with two servers can lose one.
            chat_endpoints = sum(len(r.replicas) for r in self.fleet.roles.values() if r.can_chat)
            max_retries = max(1, chat_endpoints - 1)
        self.runner = TurnRunner(
            self.fleet, self.router, self.classify,
            TelemetryOutcomes(self.telemetry, self.fleet), max_retries=max_retries,
            watchdog=Watchdog(config.router.token_timeout_s, config.router.first_token_timeout_s),
            on_learned=self._save_learned, events=self.events,
        )
        self._restore_learned()
        # Document collections and the history's vectors, beside the history.
        self.library: DocumentLibrary | None = None
        self._embedder = FleetEmbedder(self.fleet)
        self._embedder_seen: str | None = None
        if store is not None:
            self.library = DocumentLibrary(store.run, self._embedder)
            self.runner.retrieve = self.library.retrieve
            self.runner.search_history = self.library.search_messages
        self._open: dict[str, Conversation] = {}
        self._open_lock = threading.Lock()
        self.conversation = self._adopt(Conversation.new(system_prompt))
        self.events.subscribe(HistoryRecorder(
            self.runner, self.conversation_by_id, store, self.fleet.model_file
        ))
        if self.library is not None:
            self.events.subscribe(_VectorsFeed(self.library))
        if subscriber is not None:
            self.events.subscribe(subscriber)
        self._sampler = TelemetrySampler(
            self.telemetry, self.router, self._machine
        )
        self._started = False
        self._vote_thread: threading.Thread | None = None
        self._vote_cancel = threading.Event()  # stops an own index's build
        # Set once the embedding index votes on prompts (the embedder runs its model).
        self.embedding_vote_ready = threading.Event()
        self.embedding_vote_checked = threading.Event()  # set once either way is known
        self.embedding_vote_note = ""  # why it does not, when it does not

    # -- roles --------------------------------------------------------------

    @property
    def roles(self) -> dict[str, RoleRuntime]:
        return self.fleet.roles

    def _register_worker(self, key: str, role: str, worker: ModelWorker) -> None:
        def depth(w: ModelWorker = worker) -> tuple[int, int, str]:
            return w.queue_depth, w.in_flight, w.state.value

        self.telemetry.register(
            key, depth, lambda w=worker: w.running_for_s, lambda w=worker: w.slots,
            group=role, local=not worker.remote, jobs=worker.pending_jobs,
        )

    def _free_memory(self) -> tuple[int, int | None]:
        """Free RAM and VRAM (None: no GPU reading) from the machine readings."""
        reading = self.telemetry.machine or self._machine.read()
        ram = int(max(0.0, reading.ram_total_mb - reading.ram_used_mb) * 2**20)
        gpus = [g for g in reading.gpus if g.mem_total_mb and g.mem_used_mb is not None]
        if not gpus:
            return ram, None
        return ram, int(sum(g.mem_total_mb - g.mem_used_mb for g in gpus) * 2**20)  # type: ignore[operator]

    def endpoint_warnings(self) -> list[str]:
        """Plain HTTP to a public address, one line per replica that does it."""
        return [
            f"{replica.key}: {replica.endpoint.plain_http_warning()}"
            for replica in self.fleet.endpoints.values()
            if replica.endpoint is not None and replica.endpoint.plain_http_warning()
        ]

    def _profile(self, name: str) -> RoleProfile:
        role_config = self.config.roles[name]
        preference = dict(DEFAULT_PREFERENCES.get(name, GENERIC_PREFERENCE))
        for kind, weight in role_config.preference.items():
            preference[TaskKind(kind)] = weight
        return RoleProfile(
            role=name,
            can_chat=self.fleet.can_chat(name),
            can_embed=role_config.can_embed,
            preference=preference,
            on_gpu=role_config.n_gpu_layers != 0,
            n_ctx=role_config.n_ctx if role_config.uses_local_model else 0,
        )

    def start(self) -> None:
        self._started = True
        self.runner.start()
        self._sampler.start()
        self.fleet.start()
        if self.library is not None:
            self.library.start()

    def worker(self, role: str) -> ModelWorker:
        return self.fleet.worker(role)

    def can_chat(self, role: str) -> bool:
        return self.fleet.can_chat(role)

    def can_embed(self, role: str) -> bool:
        return self.fleet.can_embed(role)

    def replace_role(self, name: str, role_config: RoleConfig) -> None:
        """Point a role at another model: the old worker ends, a new one loads.

        Waits for the old worker to end (it may be mid-load): call it off the
        GUI thread (the window does, through its background tasks).
        """
        self.config.roles[name] = role_config
        if role_config.can_embed or self.fleet.can_embed(name):
            self._vote_cancel.set()  # an own index for the old model is not wanted now
            self.classifier.embedding_vote = None  # checked again once the new model loads
            self.embedding_vote_ready.clear()
            self.embedding_vote_checked.clear()
        old_keys = [r.key for r in self.fleet.roles[name].replicas]
        for replica in self.fleet.roles[name].replicas:
            replica.worker.shutdown()
        self._stop_vote()
        self.fleet.replace(name, role_config)
        for key in set(old_keys) - set(self.fleet.endpoints):
            self.telemetry.unregister(key)
        self.router.set_profile(self._profile(name))

    def replace_role_hot(self, name: str, role_config: RoleConfig) -> str:
        """New settings for a role, applied by loading it anew beside the old
        model, which keeps answering until the new one is ready. Returns '' or
        why not (the old model and settings are kept). Call it off the GUI thread."""
        old_keys = [r.key for r in self.fleet.roles[name].replicas] if name in self.roles else []
        why = self.fleet.replace_hot(name, role_config)
        if why:
            return why
        self.config.roles[name] = role_config
        for key in set(old_keys) - set(self.fleet.endpoints):
            self.telemetry.unregister(key)
        self.router.set_profile(self._profile(name))
        if role_config.can_embed and self.config.router.semantic:
            # The new model may not be the one the embedding index was built with.
            self._stop_vote()
            self.classifier.embedding_vote = None
            self.embedding_vote_ready.clear()
            self.embedding_vote_checked.clear()
            self._vote_thread = threading.Thread(
                target=self._attach_embedding_vote, args=(name,), name="zeta-embed-vote",
                daemon=True)
            self._vote_thread.start()
        return ""

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self.fleet.wait_loaded(timeout)

    def _stop_vote(self, timeout: float | None = None) -> None:
        """End the embedding vote's check, and an own index's build, if running."""
        self._vote_cancel.set()
        if self._vote_thread is not None:
            self._vote_thread.join(timeout)
            self._vote_thread = None
        self._vote_cancel = threading.Event()

    def shutdown(self, timeout: float | None = None) -> None:
        self._vote_cancel.set()  # an own index's build stops at its next batch
        if self.library is not None:
            self.library.stop()  # its batch on the embedder is rejected by the fleet's end
        self.runner.shutdown(timeout)
        if self._started:
            self._sampler.stop(timeout)
        self.fleet.shutdown(timeout)
        if self.library is not None:
            self.library.shutdown(timeout)
        if self._vote_thread is not None:
            # Its pending embeddings were rejected by the shutdown above.
            self._vote_thread.join(timeout)

    # -- what the router learned from the user's choices, kept across restarts --

    def _save_learned(self) -> None:
        if self.store is not None:
            self.store.set_state(LEARNED_KEY, json.dumps(self.router.learned_shift()))

    def _restore_learned(self) -> None:
        if self.store is None:
            return

        def apply(future: Future[str | None]) -> None:
            try:
                raw = future.result()
                if raw:
                    self.router.apply_learned(json.loads(raw))
            except Exception as exc:  # a damaged entry costs what was learned, nothing else
                log.warning("ignoring the router's saved learning: %s", exc)

        self.store.get_state(LEARNED_KEY).add_done_callback(apply)

    def reset_learned(self) -> None:
        """Forget what the user's role choices taught the router, here and on disk."""
        self.router.reset_learned()
        self._save_learned()

    def _on_worker_state(self, key: str, state: WorkerState, detail: str) -> None:
        role = endpoint_role(key)  # a replica (coder#2) reports under its own key
        if (state is WorkerState.READY and self.library is not None
                and role in self.fleet.roles and self.can_embed(role)):
            # Loaded, or another model now: the library embeds what it lacks
            # (all of it again when the model changed). Not after every batch.
            model_id = self._embedder.model_id()
            if model_id != self._embedder_seen:
                self._embedder_seen = model_id
                self.library.embedder_changed()
        if (
            state is WorkerState.READY
            and self.config.router.semantic
            and role in self.fleet.roles
            and self.can_embed(role)
            and self.classifier.embedding_vote is None
            and self._vote_thread is None
        ):
            self._vote_thread = threading.Thread(
                target=self._attach_embedding_vote, args=(key,), name="zeta-embed-vote",
                daemon=True,
            )
            self._vote_thread.start()
        self.events.publish(RoleStateChanged(key, state, detail))

    def _attach_embedding_vote(self, role: str) -> None:
        try:
            build = self._check_embedding_vote(role)
        finally:
            self.embedding_vote_checked.set()
        if build is not None:
            self._build_own_index(role, build)

    def _check_embedding_vote(self, role: str) -> OwnIndexBuilder | None:
        """Let the embedding index vote, if the embedding role runs the index's
        model; else return what builds this embedder's own index."""
        index = shipped_embedding_index()
        if index is None:
            self.embedding_vote_note = "embedding vote off: the index could not be read"
            return None
        try:
            probe = self.fleet.embed_on(role, list(index.probe_texts), timeout=120)
        except (EngineError, OSError, ValueError, TimeoutError) as exc:
            self.embedding_vote_note = f"embedding vote off: the {role} failed to embed ({exc})"
            log.warning("%s", self.embedding_vote_note)
            return None
        similarity = index.matches(probe)
        if similarity >= PROBE_MATCH:
            self._vote_with(role, index)
            return None
        model = self.fleet.model_file(role) or role
        prompts = self.config.router.own_index_prompts
        if prompts <= 0:
            self.embedding_vote_note = (
                f"embedding vote off: the {role}'s model ({model}) is not {index.model_name}, "
                "which the index was built with, and router.own_index_prompts is 0"
            )
            log.info("%s (probe similarity %.3f)", self.embedding_vote_note, similarity)
            return None
        cancelled = self._vote_cancel

        def wait_idle() -> None:
            worker = self.fleet.worker(role)
            while (worker.queue_depth or worker.in_flight) and not cancelled.is_set():
                cancelled.wait(IDLE_POLL_S)

        def progress(done: int, total: int) -> None:
            self.embedding_vote_note = (
                f"embedding vote not yet: the {role}'s model ({model}) is not "
                f"{index.model_name}; building its own index, {done:,} of {total:,} prompts"
            )

        return OwnIndexBuilder(
            index,
            lambda texts: self.fleet.embed_on(role, list(texts), timeout=OWN_INDEX_TIMEOUT_S),
            probe, model, own_index_dir(), prompts, wait_idle, cancelled, progress,
            slowest_s=VOTE_SLOWEST_S,
        )

    def _build_own_index(self, role: str, builder: OwnIndexBuilder) -> None:
        try:
            own = builder.build()
        except BuildCancelledError as exc:
            log.info("the embedding index for %s was not finished: %s", role, exc)
            return
        except EmbedderTooSlowError as exc:
            self.embedding_vote_note = (
                f"embedding vote off: the {role}'s model is too slow to vote ({exc}); "
                "prompts are read by the text model")
            log.info("%s", self.embedding_vote_note)
            return
        except Exception as exc:  # whatever the embedder raised: routing goes on, text only
            if builder.cancelled.is_set():  # the model went away mid-build
                return
            self.embedding_vote_note = (
                f"embedding vote off: building an index for the {role}'s model failed ({exc})")
            log.warning("%s", self.embedding_vote_note)
            return
        if not builder.cancelled.is_set():
            self._vote_with(role, own, own_index=True)

    def _vote_with(self, role: str, index: EmbeddingIndex, own_index: bool = False) -> None:
        self.classifier.embedding_vote = EmbeddingVote(
            index,
            lambda texts: self.fleet.embed_on(role, list(texts), timeout=EMBED_VOTE_TIMEOUT_S),
        )
        self.embedding_vote_note = ""
        self.embedding_vote_ready.set()
        log.info("the embedding index votes on prompts (embeddings from %s%s)", role,
                 f", its own index of {len(index.labels)} prompts" if own_index else "")

    # -- conversations --------------------------------------------------------

    def _adopt(self, conversation: Conversation) -> Conversation:
        with self._open_lock:
            return self._open.setdefault(conversation.id, conversation)

    def conversation_by_id(self, conversation_id: str) -> Conversation | None:
        with self._open_lock:
            return self._open.get(conversation_id)

    def show(self, conversation: Conversation) -> Conversation:
        """Make `conversation` the one new prompts go to.

        One still open here (streaming, say) is kept as it is, since its
        messages are newer than any copy read from disk.
        """
        self.conversation = self._adopt(conversation)
        self._forget_idle()
        return self.conversation

    def new_conversation(self) -> Conversation:
        return self.show(Conversation.new(self.system_prompt))

    def _forget_idle(self) -> None:
        busy = self.busy_conversations()
        with self._open_lock:
            for cid in [c for c in self._open if c != self.conversation.id and c not in busy]:
                del self._open[cid]

    def busy_conversations(self) -> set[str]:
        """Conversations with an answer still routing or streaming."""
        return {t.conversation_id for t in self.runner.turns if t.status.active}

    def turn_for_message(self, message_id: str) -> Turn | None:
        """The newest turn writing this answer, if any."""
        turns = [t for t in self.runner.turns if t.answer_id == message_id]
        return turns[-1] if turns else None

    def set_system_prompt(self, text: str, conversation: Conversation | None = None) -> None:
        conversation = conversation or self.conversation
        conversation.info.system_prompt = text
        self._save_info(conversation)

    def select_branch(self, message_id: str, conversation: Conversation | None = None) -> None:
        conversation = conversation or self.conversation
        conversation.select(message_id)
        if self.store is not None and len(conversation):
            self.store.set_leaf(conversation.id, conversation.info.leaf_id)

    def _save_info(self, conversation: Conversation) -> None:
        if self.store is not None and len(conversation):
            self.store.save_conversation(conversation.info)

    # -- sending ------------------------------------------------------------

    def send(
        self,
        prompt: str,
        role: str | None = None,
        with_history: bool = True,
        parent_id: str | None = None,
        conversation: Conversation | None = None,
    ) -> int:
        """Queue a prompt and return its turn id at once.

        The prompt goes under `parent_id` (default: the end of the branch
        shown; another parent makes a new branch, as an edit does). `role`
        skips the router; `with_history=False` sends the prompt on its own,
        as an independent request (benchmarks, scripts).
        """
        conversation = conversation or self.conversation
        if parent_id is None:
            parent_id = conversation.info.leaf_id
        question = conversation.add(parent_id, "user", prompt)
        return self._answer(conversation, question, role, with_history)

    def edit_and_resend(self, message_id: str, text: str, role: str | None = None) -> int:
        """A new version of a prompt, answered again; the old one stays as a branch."""
        conversation = self.conversation
        original = conversation.get(message_id)
        if original is None or original.author != "user":
            raise KeyError(f"{message_id} is not a prompt in this conversation")
        question = conversation.add(original.parent_id, "user", text)
        return self._answer(conversation, question, role, True)

    def regenerate(self, answer_id: str, role: str | None = None) -> int:
        """Another answer to the same prompt (a sibling branch), through the router or `role`."""
        conversation = self.conversation
        answer = conversation.get(answer_id)
        if answer is None or not answer.is_answer or answer.parent_id is None:
            raise KeyError(f"{answer_id} is not an answer in this conversation")
        question = conversation.get(answer.parent_id)
        assert question is not None
        return self._answer(conversation, question, role, True)

    def _answer(self, conversation: Conversation, question: Message, role: str | None,
                with_history: bool) -> int:
        answer = conversation.add(question.id, "assistant", "", MessageStatus.PENDING)
        saved = None
        if self.store is not None:
            # The prompt is on disk before the dispatcher routes it.
            self.store.save_message(question, conversation.info)
            saved = self.store.save_message(answer, conversation.info)
        system = conversation.info.system_prompt

        def history() -> list[ChatMessage]:
            if with_history:
                return conversation.history_for(answer.id)
            return [{"role": "system", "content": system},
                    {"role": "user", "content": question.content}]

        if self.store is not None and conversation.collections:
            self.store.set_collections(conversation.id, conversation.collections)
        turn = self.runner.new_turn(
            question.content, history, forced_role=role,
            conversation_id=conversation.id, answer_id=answer.id, saved=saved,
            collections=tuple(conversation.collections),
        )
        self.runner.submit(turn)
        return turn.turn_id

    def set_collections(self, collection_ids: Collection[str],
                        conversation: Conversation | None = None) -> None:
        """The document collections a conversation's prompts are asked against."""
        conversation = conversation or self.conversation
        conversation.collections = tuple(dict.fromkeys(collection_ids))
        if self.store is not None:
            self.store.set_collections(conversation.id, conversation.collections)

    def stop(self, turn_id: int | None = None) -> None:
        """Stop one turn, or every unfinished one."""
        self.runner.stop(turn_id)

    def stop_conversation(self, conversation_id: str) -> None:
        """Stop every answer still coming in one conversation (it is being deleted)."""
        for turn in self.runner.turns:
            if turn.conversation_id == conversation_id and turn.status.active:
                self.runner.stop(turn.turn_id)

    @property
    def turns(self) -> list[Turn]:
        return self.runner.turns

    def turn(self, turn_id: int) -> Turn:
        return self.runner.turn(turn_id)

    def classify(self, prompt: str,
                 context: Classification | str | None = None) -> Classification:
        """The text model, plus the embedding index's vote when the embedder is
        idle (a prompt never queues behind embedding work). `context`: the
        user's turn before (as classified, or its text), which a follow-up is
        read with."""
        vote = self.classifier.embedding_vote
        if vote is None or explicit_command(prompt):
            result = self.classifier.classify(prompt, context=context)
            note = self.embedding_vote_note if vote is None else ""
            return _with_evidence(result, note) if note else result
        embed_role = self.fleet.embed_role()
        worker = self.worker(embed_role) if embed_role else None
        if worker is None or worker.queue_depth or worker.in_flight:
            return _with_evidence(
                self.classifier.classify(prompt, use_embedding=False, context=context),
                "embedding vote skipped: the embedder is busy")
        return self.classifier.classify(prompt, context=context)

    def task_reading(self) -> str:
        """How prompts' kinds are read now, in a line for the window."""
        vote = self.classifier.embedding_vote
        if self.classifier.text_model is None:
            return "Task kinds: by rules only (the trained model could not be read)"
        if vote is not None:
            return (f"Task kinds: the text model and the nearest of {len(vote.index.labels):,} "
                    f"labelled prompts, embedded by {vote.index.model_name}")
        why = self.embedding_vote_note or (
            "the embedding vote is off" if not self.config.router.semantic
            else "the embedding vote waits for the embedder")
        return f"Task kinds: the text model ({why})"

    def route(self, prompt: str, exclude: Collection[str] = ()) -> Decision:
        return self.runner.route(prompt, exclude)

    def embed(self, texts: list[str], timeout: float | None = None) -> list[list[float]]:
        role = self.fleet.embed_role()
        if role is None:
            raise NoRoleAvailableError("no role is set to embed")
        return self.fleet.embed_on(role, texts, timeout)



class _VectorsFeed:
    """Each answer (and its prompt), once saved, gets its vector for the
    history's search by meaning."""

    def __init__(self, library: DocumentLibrary) -> None:
        self._library = library

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, TurnEnded) and not event.failed:
            self._library.messages_changed()


def _with_evidence(result: Classification, note: str) -> Classification:
    return Classification(result.kind, result.confidence, (*result.evidence, note), result.scores)


def own_index_dir() -> Path:
    """Where indexes built for the user's own embedders are kept: derived
    data, so the cache directory (found again, or built again, next start)."""
    from zeta_desktop.core.models.load_check import cache_dir

    return cache_dir() / "classifier"


def default_history_path() -> Path:
    from zeta_desktop.core.store.history import DB_FILENAME

    return user_data_dir() / DB_FILENAME
