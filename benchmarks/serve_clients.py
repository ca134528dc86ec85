"""Streaming HTTP clients for serve_bench, in a process of their own.

A real client of Zeta's server is another program, so the benchmark's clients
run apart from the process that serves: they neither share its interpreter
lock nor add to its work, and what they cost is still paid on the same cores.
Each client is kept light: httpx streaming, one `json.loads` per `data:` line.

The benchmark starts this file once (`ClientProcess`) and sends it one job per
line on stdin; each job's answer is one line on stdout. Every time is
`time.perf_counter()`, which on Linux is CLOCK_MONOTONIC: the same clock in
both processes, so a request's times here compare with the session's there.

Jobs (JSON):
- closed: `concurrency` clients; each sends the next of `requests` when its
  answer has ended (a closed loop).
- open: each of `requests` sent at its own `at` seconds from the start (arrivals).
A request is {"body": {...}} (plus "at" for open); the job's `url` is the
chat completions route. Each record: sent, first (the first chunk with
words), done (`[DONE]` read), chunks with words, usage's completion tokens,
the `x-zeta-role` header, and an error ('' when none).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TIMEOUT_S = 600.0


def blank_record() -> dict[str, Any]:
    return {"sent": None, "first": None, "done": None, "chunks": 0, "tokens": None,
            "role": "", "error": ""}


async def stream_one(client: Any, url: str, body: dict[str, Any],
                     record: dict[str, Any]) -> None:
    import httpx

    clock = time.perf_counter
    record["sent"] = clock()
    try:
        async with client.stream("POST", url, json=body) as response:
            record["role"] = response.headers.get("x-zeta-role", "")
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                record["error"] = f"HTTP {response.status_code}: {text[:200]}"
                return
            async for line in response.aiter_lines():
                now = clock()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    record["done"] = now
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    record["error"] = str(chunk["error"].get("message", chunk["error"]))[:200]
                    return
                for choice in chunk.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        if record["first"] is None:
                            record["first"] = now
                        record["chunks"] += 1
                usage = chunk.get("usage")
                if usage:
                    record["tokens"] = usage.get("completion_tokens")
        if record["done"] is None:
            record["error"] = "the stream ended without [DONE]"
    except (httpx.HTTPError, ValueError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"[:200]


async def closed_loop(client: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    requests = job["requests"]
    records = [blank_record() for _ in requests]
    pending = iter(range(len(requests)))

    async def one_client() -> None:
        for index in pending:  # shared: each client takes the next unsent request
            await stream_one(client, job["url"], requests[index]["body"], records[index])

    await asyncio.gather(*(one_client() for _ in range(job["concurrency"])))
    return records


async def open_loop(client: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    requests = job["requests"]
    records = [blank_record() for _ in requests]
    start = time.perf_counter()

    async def one(request: dict[str, Any], record: dict[str, Any]) -> None:
        await asyncio.sleep(max(0.0, start + request["at"] - time.perf_counter()))
        await stream_one(client, job["url"], request["body"], record)

    await asyncio.gather(*(one(r, rec) for r, rec in zip(requests, records, strict=True)))
    return records


async def serve_jobs() -> None:
    import httpx

    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits) as client:
        print(json.dumps({"ready": True}), flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            job = json.loads(line)
            run = closed_loop if job["kind"] == "closed" else open_loop
            records = await run(client, job)
            print(json.dumps({"records": records}), flush=True)


class ClientProcess:
    """This file as a child process: `run(job)` returns its records."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        self._read()  # {"ready": true} once httpx is imported and the client built

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"serve_bench: the client process exited ({self.process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        records: list[dict[str, Any]] = self._read()["records"]
        return records

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


if __name__ == "__main__":
    asyncio.run(serve_jobs())
