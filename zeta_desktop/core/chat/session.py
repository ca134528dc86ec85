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

from zeta_desktop.core.chat.embedding_vote import EmbeddingVoteKeeper
from zeta_desktop.core.chat.events import (
    EventHub,
    RoleStateChanged,
    SessionEvent,
    Subscriber,
    TurnEnded,
    TurnEvent,
)
from zeta_desktop.core.chat.fleet_embedder import FleetEmbedder
from zeta_desktop.core.chat.history_recorder import HistoryRecorder
from zeta_desktop.core.chat.outcomes import TelemetryOutcomes
from zeta_desktop.core.chat.turn import AnswerOptions
from zeta_desktop.core.chat.turn_feeds import TurnFeed, TurnFeeds
from zeta_desktop.core.chat.turn_runner import Turn, TurnRunner, Watchdog
from zeta_desktop.core.config import user_data_dir
from zeta_desktop.core.conversation.model import (
    DEFAULT_SYSTEM_PROMPT,
    Conversation,
    Message,
    MessageStatus,
    title_from,
)
from zeta_desktop.core.documents.library import DocumentLibrary
from zeta_desktop.core.engines.base import ChatMessage, NoRoleAvailableError
from zeta_desktop.core.engines.kept_states import keeping_states
from zeta_desktop.core.fleet.fleet import EngineLoader, Fleet, RoleRuntime, endpoint_role
from zeta_desktop.core.fleet.worker import ModelWorker, WorkerState
from zeta_desktop.core.routing.classifier import (
    Classification,
    TaskClassifier,
    TaskKind,
    explicit_command,
)
from zeta_desktop.core.routing.machine import MachineSource, NvmlSource
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
            keeping_states(engine_loader, config.prompt_cache),
            on_state=self._on_worker_state,
            on_worker_added=self._register_worker,
            free_memory=self._free_memory,
        )
        self.router = ZetaDynamicRouter(
            {name: self._profile(name) for name in self.fleet.roles},
            self.telemetry,
            thresholds=config.router.thresholds(),
            policy=config.router.policy,
            cache_aware=config.router.cache_aware,
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
        # After the recorder: a client's feed hears a turn's end once it is saved.
        self._feeds = TurnFeeds()
        self.events.subscribe(self._feeds)
        if subscriber is not None:
            self.events.subscribe(subscriber)
        self._sampler = TelemetrySampler(
            self.telemetry, self.router, self._machine
        )
        self._started = False
        self.vote = EmbeddingVoteKeeper(self.fleet, self.classifier,
                                        lambda: self.config.router.own_index_prompts)
        # Set once the embedding index votes on prompts, and once either way is known.
        self.embedding_vote_ready = self.vote.ready
        self.embedding_vote_checked = self.vote.checked

    @property
    def embedding_vote_note(self) -> str:
        """Why the embedding index does not vote, when it does not."""
        return self.vote.note

    # -- roles --------------------------------------------------------------

    @property
    def roles(self) -> dict[str, RoleRuntime]:
        return self.fleet.roles

    def _register_worker(self, key: str, role: str, worker: ModelWorker) -> None:
        def depth() -> tuple[int, int, str]:
            return worker.queue_depth, worker.in_flight, worker.state.value

        def running_for() -> float | None:
            return worker.running_for_s

        def slots() -> int:
            return worker.slots

        self.telemetry.register(key, depth, running_for, slots, group=role,
                                local=not worker.remote, jobs=worker.pending_jobs)

    def _free_memory(self) -> tuple[int, int | None]:
        """Free RAM and VRAM (None: no GPU reading) from the machine readings."""
        reading = self.telemetry.machine or self._machine.read()
        ram = int(max(0.0, reading.ram_total_mb - reading.ram_used_mb) * 2**20)
        free_mb = [g.mem_total_mb - g.mem_used_mb for g in reading.gpus
                   if g.mem_total_mb and g.mem_used_mb is not None]
        if not free_mb:
            return ram, None
        return ram, int(sum(free_mb) * 2**20)

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
            self.vote.forget()  # checked again once the new model loads
        old_keys = [r.key for r in self.fleet.roles[name].replicas]
        for replica in self.fleet.roles[name].replicas:
            replica.worker.shutdown()
        self.vote.stop()
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
            self.vote.restart(name)
        return ""

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self.fleet.wait_loaded(timeout)

    def shutdown(self, timeout: float | None = None) -> None:
        self.vote.cancel()  # an own index's build stops at its next batch
        if self.library is not None:
            self.library.stop()  # its batch on the embedder is rejected by the fleet's end
        self.runner.shutdown(timeout)
        if self._started:
            self._sampler.stop(timeout)
        self.fleet.shutdown(timeout)
        if self.library is not None:
            self.library.shutdown(timeout)
        self.vote.join(timeout)  # its pending embeddings were rejected by the shutdown above

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
        if (state is WorkerState.READY and self.config.router.semantic
                and role in self.fleet.roles and self.can_embed(role)):
            self.vote.start_if_needed(key)
        self.events.publish(RoleStateChanged(key, state, detail))

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

    def send_request(
        self,
        messages: list[ChatMessage],
        feed: TurnFeed,
        *,
        role: str | None = None,
        options: AnswerOptions | None = None,
        client: str = "api",
        keep: bool = False,
    ) -> int:
        """A client's request (the OpenAI API's): `messages` go to the model
        exactly as given, the last one the user's; `feed` hears this turn's
        events from its first. `keep` saves it in the history, as a
        conversation titled by the client. Returns the turn id at once."""
        prompt = messages[-1]["content"]
        conversation_id = answer_id = ""
        saved = None
        kept: Conversation | None = None
        if keep and self.store is not None:
            kept = self._request_conversation(messages, client)
            answer = kept.add(kept.info.leaf_id, "assistant", "", MessageStatus.PENDING)
            for message in kept.path(answer.id):
                saved = self.store.save_message(message, kept.info)
            conversation_id, answer_id = kept.id, answer.id
            given = feed

            def feed(event: TurnEvent) -> None:  # the kept copy is on disk: let it go
                given(event)
                if isinstance(event, TurnEnded):
                    self._forget(event.conversation_id)

        exact = [dict(message) for message in messages]
        turn = self.runner.new_turn(
            prompt, lambda: [dict(message) for message in exact], forced_role=role,
            conversation_id=conversation_id, answer_id=answer_id, saved=saved, client=client,
            options=options or AnswerOptions())
        if kept is not None:
            # Open once its turn is (busy, so a switch of chats cannot forget it).
            self._adopt(kept)
        self._feeds.add(turn.turn_id, feed)
        self.runner.submit(turn)
        return turn.turn_id

    def _request_conversation(self, messages: list[ChatMessage], client: str) -> Conversation:
        system = next((m["content"] for m in messages[:1] if m["role"] == "system"), "")
        conversation = Conversation.new(system)
        parent = None
        for message in messages:
            if message["role"] in ("user", "assistant"):
                parent = conversation.add(parent, message["role"], message["content"]).id
        conversation.info.title = title_from(f"{client}: {messages[-1]['content']}")
        return conversation

    def _forget(self, conversation_id: str) -> None:
        with self._open_lock:
            if conversation_id != self.conversation.id:
                self._open.pop(conversation_id, None)

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
            note = self.vote.note if vote is None else ""
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
        why = self.vote.note or (
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


def default_history_path() -> Path:
    from zeta_desktop.core.store.history import DB_FILENAME

    return user_data_dir() / DB_FILENAME
