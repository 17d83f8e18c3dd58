"""How the soak talks to the API: one HTTP client over both API processes, and the journal of every
answer it got (the history the invariants judge)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    route: str  # e.g. "POST create", "POST pause"
    status: int  # 0: no answer (connection refused or cut: the API process was killed)
    retry_after: str | None
    at: float
    latency_s: float
    problem_json: bool


@dataclass
class Journal:
    answers: list[Answer] = field(default_factory=list)

    def record(self, answer: Answer) -> None:
        self.answers.append(answer)

    def record_response(self, route: str, r: httpx.Response) -> None:
        problem = r.headers.get("content-type", "").startswith("application/problem+json")
        self.answers.append(
            Answer(route, r.status_code, r.headers.get("retry-after"), time.time(), 0.0, problem)
        )


class Gateway:
    """Requests spread over the API processes; a connection refused or cut by a killed process is
    sent once to the other one (a load balancer's retry of an idempotent request is the caller's
    call: `retry_transport`)."""

    def __init__(self, urls: list[str], journal: Journal, timeout_s: float = 30) -> None:
        self.clients = [httpx.AsyncClient(base_url=url, timeout=timeout_s) for url in urls]
        self._next = itertools.cycle(range(len(self.clients)))
        self.journal = journal

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    def client(self) -> httpx.AsyncClient:
        return self.clients[next(self._next)]

    async def call(
        self,
        method: str,
        path: str,
        key: str,
        route: str,
        *,
        json: Any = None,
        idempotency_key: str | None = None,
        params: dict[str, str] | None = None,
        retry_transport: bool = True,
        if_none_match: str | None = None,
    ) -> httpx.Response | None:
        """The answer, or None when neither process answered."""
        headers = {"Authorization": f"Bearer {key}"}
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for _ in range(len(self.clients) if retry_transport else 1):
            started = time.monotonic()
            try:
                r = await self.client().request(method, path, json=json, headers=headers, params=params)
            except httpx.TransportError as exc:
                self.journal.record(Answer(route, 0, None, time.time(), time.monotonic() - started, False))
                log.debug("%s %s: no answer (%s)", method, path, exc)
                await asyncio.sleep(0.2)
                continue
            self.journal.record(
                Answer(
                    route,
                    r.status_code,
                    r.headers.get("retry-after"),
                    time.time(),
                    time.monotonic() - started,
                    r.headers.get("content-type", "").startswith("application/problem+json"),
                )
            )
            return r
        return None

    async def until_answered(
        self, method: str, path: str, key: str, route: str, *, attempts: int = 8, **kw: Any
    ) -> httpx.Response | None:
        """Repeat a request that is safe to repeat (a read, or a write with its Idempotency-Key) while
        it gets no answer or a 503, waiting as Retry-After says; bounded by `attempts`."""
        r = None
        for _ in range(attempts):
            r = await self.call(method, path, key, route, **kw)
            if r is not None and r.status_code != 503:
                return r
            wait = float(r.headers.get("retry-after", "1")) if r is not None else 1.0
            await asyncio.sleep(min(wait, 5.0))
        return r
