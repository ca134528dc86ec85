"""Server-sent events, read line by line, as OpenAI-compatible servers stream them.

Servers differ and networks cut: keep-alive comments (`: ping`), `event:`
lines, data split over several `data:` lines, CRLF endings, an error object
in the middle of a stream, and a stream that ends without `data: [DONE]`.
The parser takes lines (httpx's `iter_lines` already joins lines split
across chunks) and yields each event's data; it never guesses at JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DONE = "[DONE]"


@dataclass(frozen=True)
class ServerEvent:
    data: str
    event: str = "message"


def read_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Each event's data (its `data:` lines joined by newlines); stops at `[DONE]`.

    A last event that the stream ended before its blank line is still given:
    a server that closes right after its final chunk loses nothing.
    """
    data: list[str] = []
    event = "message"
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:  # the blank line ends an event
            if data:
                joined = "\n".join(data)
                if joined.strip() == DONE:
                    return
                yield ServerEvent(joined, event)
            data, event = [], "message"
            continue
        if line.startswith(":"):  # a comment: keep-alive pings
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value or "message"
        # id, retry and unknown fields mean nothing to a chat stream
    if data:
        joined = "\n".join(data)
        if joined.strip() != DONE:
            yield ServerEvent(joined, event)
