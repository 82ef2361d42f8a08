"""The work behind the endpoints: one item, or a batch of them, through cache and provider.

Views stay thin: they validate and hand a `WebhookRequest` here. A batch validates its
rows one by one (a bad row fails alone), answers cache hits and duplicates without a
provider call, runs the rest under one deadline, and returns every row, in input order,
finished or not. Every provider call takes a slot of the process's `ProviderBudget`
(backend/pacing.py): rows beyond PROVIDER_CONCURRENCY wait for a slot instead of failing.
Job chunks (backend/jobs.py) go through `process_batch` too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from backend import metrics
from backend.answers import parse_answer, text_form
from backend.cache import ResponseCache, cache_key
from backend.errors import (
    APIError,
    DeadlineExceeded,
    InternalError,
    InvalidInput,
    ProviderBusy,
    ProviderTimeout,
    RowCancelled,
    UnsupportedByProvider,
    log_crash,
)
from backend.ledger import Meter
from backend.pacing import INTERACTIVE, Priority, ProviderBudget
from backend.providers.base import Completion, Job, Provider, Usage
from backend.schemas import BatchItem, WebhookRequest, validate
from backend.settings import Settings
from backend.tasks import DEFAULT_COUNT, Template

log = logging.getLogger("backend.service")


@dataclass(frozen=True)
class RowPace:
    """How a batch's rows queue for provider slots, whether they should still run, and
    whose ledger (and budget) they count against."""

    priority: Priority = INTERACTIVE
    abort: Callable[[], bool] | None = None
    meter: Meter | None = None


DEFAULT_PACE = RowPace()


@dataclass(frozen=True)
class Outcome:
    """What one item produced: the response fields, and what it cost."""

    body: dict[str, Any]
    usage: Usage
    cached: bool


def _thread_pool(workers: int) -> Executor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch")


class Service:
    """Processes items with one provider, one cache and one set of templates per app.

    Seams for tests, so none has to patch this module: `clock` (monotonic seconds, also
    the budget's), `executor(workers)` (where a batch's rows run) and `wait_for` (how the
    batch waits for them, `concurrent.futures.wait`'s signature).
    """

    def __init__(
        self,
        settings: Settings,
        provider: Provider,
        templates: dict[str, Template],
        cache: ResponseCache,
        budget: ProviderBudget | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        executor: Callable[[int], Executor] = _thread_pool,
        wait_for: Callable[..., tuple[set[Future[Any]], set[Future[Any]]]] = wait,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.templates = templates
        self.cache = cache
        self.clock = clock
        self.executor = executor
        self.wait_for = wait_for
        self.budget = budget or ProviderBudget(settings.provider_concurrency, clock=clock)
        self._flights: dict[str, Future[Outcome]] = {}
        self._context: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._flights_lock = threading.Lock()

    @property
    def models(self) -> tuple[str, ...]:
        """The allow-list a row's `model` is checked against: the provider's own model first."""
        return tuple(dict.fromkeys([self.provider.model, *self.settings.models]))

    @property
    def validation_context(self) -> dict[str, Any]:
        """What validation checks rows against; built once per settings, not per request
        (every row of every batch asks for it)."""
        stamp = (
            self.settings.max_prompt_length,
            self.provider.model,
            tuple(self.settings.models),
            id(self.templates),
        )
        if self._context is None or self._context[0] != stamp:
            context = {
                "max_prompt_length": self.settings.max_prompt_length,
                "task_types": tuple(self.templates),
                "task_specs": {name: (t.takes, t.needs) for name, t in self.templates.items()},
                "models": self.models,
                "default_count": DEFAULT_COUNT,
            }
            self._context = (stamp, context)
        return self._context[1]

    def describe_tasks(self) -> list[dict[str, Any]]:
        """Every task type as /health tells Excel: result kind, options taken and needed."""
        supported = self.provider.supported_tasks
        return [
            {
                "name": name,
                "result": t.result,
                "takes": list(t.takes),
                "needs": list(t.needs),
                "supported": supported is None or name in supported,
            }
            for name, t in self.templates.items()
        ]

    def key_for(self, item: WebhookRequest, answered_by: tuple[str, str] | None = None) -> str:
        """The cache key: per provider and model that answer (now, or `answered_by`)."""
        task = item.type or "summary"
        provider, model = answered_by or self.provider.route(item.model)
        return cache_key(
            provider=provider,
            model=model,
            task=task,
            language=item.language,
            source=item.source,
            template_version=self.templates[task].version,
            prompt=item.prompt,
            options={
                "instruction": item.instruction,
                "labels": item.labels,
                "fields": item.fields,
                "count": item.count,
            },
        )

    def cached(self, key: str, count: bool = True) -> Outcome | None:
        """A stored answer, marked as cached and costing nothing, or None."""
        body = self.cache.get(key)
        if count:
            metrics.CACHE.labels("miss" if body is None else "hit").inc()
        if body is None:
            return None
        return Outcome({**body, "cached": True, "usage": Usage().as_dict()}, Usage(), True)

    @staticmethod
    def _free(pace: RowPace, outcome: Outcome) -> None:
        """Count a row answered without a provider call (cache, duplicate, shared flight)."""
        if pace.meter is not None:
            body = outcome.body
            pace.meter.served_free(str(body["provider"]), str(body["model"]), str(body["type"]))

    def process(
        self, item: WebhookRequest, deadline: float | None = None, pace: RowPace = DEFAULT_PACE
    ) -> Outcome:
        """Answer one item from the cache or the provider; raises APIError on failure."""
        key = self.key_for(item)
        hit = self.cached(key)
        if hit is not None:
            self._free(pace, hit)
            return hit
        return self._compute(item, key, deadline, pace)

    def _compute(
        self, item: WebhookRequest, key: str, deadline: float | None, pace: RowPace = DEFAULT_PACE
    ) -> Outcome:
        """Compute `item` once per process however many callers ask for it at the same time.

        Identical rows arrive together from different batches of one fill-down, from
        chunks of one job running side by side, or from two users: the first caller
        computes, the others wait for its answer and pay nothing ("single flight").
        """
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
        if not leader:
            wait_for = self.settings.request_timeout if deadline is None else deadline - self.clock()
            try:
                outcome: Outcome = flight.result(timeout=max(0.0, wait_for))
            except FutureTimeout:
                raise DeadlineExceeded() if deadline is not None else ProviderBusy() from None
            except DeadlineExceeded:  # the first caller's own deadline, not ours: try ourselves
                if deadline is not None and deadline <= self.clock():
                    raise
                return self._compute(item, key, deadline, pace)
            shared = Outcome({**outcome.body, "usage": Usage().as_dict()}, Usage(), outcome.cached)
            self._free(pace, shared)
            return shared
        try:
            # The answer may have reached the cache since this caller looked.
            outcome = self.cached(key, count=False) or self._call_provider(item, key, deadline, pace)
            if outcome.cached:
                self._free(pace, outcome)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(outcome)
            return outcome
        finally:
            with self._flights_lock:
                self._flights.pop(key, None)

    def render(self, item: WebhookRequest) -> Job:
        """The provider job for `item`: its template rendered (also what estimates count)."""
        task = item.type or "summary"
        supported = self.provider.supported_tasks
        if supported is not None and task not in supported:
            raise UnsupportedByProvider(
                f"The '{task}' task needs an LLM: the server runs the offline 'local' provider. "
                "Ask the operator to set OPENAI_API_KEY or ANTHROPIC_API_KEY."
            )
        return self.templates[task].render(
            item.prompt,
            item.language,
            item.source,
            self.settings.max_output_tokens,
            instruction=item.instruction,
            labels=item.labels,
            fields=item.fields,
            count=item.count,
            model=item.model,
        )

    def _call_provider(
        self, item: WebhookRequest, key: str, deadline: float | None, pace: RowPace
    ) -> Outcome:
        task = item.type or "summary"
        job = self.render(item)
        template = self.templates[task]
        # The wait for a provider slot counts against the same time as the call itself.
        ends = self.clock() + self.settings.request_timeout
        cut_by_deadline = deadline is not None and deadline < ends
        if deadline is not None:
            ends = min(ends, deadline)
        if not self.budget.acquire(ends, pace.priority):
            raise DeadlineExceeded() if cut_by_deadline else ProviderBusy()
        succeeded = False
        reserved = 0
        # Words sent: the ledger's calibration of tokens per word (only counted for a meter).
        words = len(job.system.split()) + len(job.user.split()) if pace.meter is not None else 0
        try:
            if pace.abort is not None and pace.abort():  # e.g. its job was cancelled while it waited
                raise RowCancelled()
            left = ends - self.clock()
            if left <= 0:
                raise DeadlineExceeded() if cut_by_deadline else ProviderBusy()
            if pace.meter is not None:  # BudgetExceeded once the caller's budget is spent
                reserved = pace.meter.admit(self.provider.route(item.model)[1], words)
            started = self.clock()
            try:
                completion = self._measured_call(job, left)
            except BaseException:
                if pace.meter is not None:
                    pace.meter.release(reserved)
                raise
            succeeded = True
        except ProviderTimeout:
            # The batch deadline, not REQUEST_TIMEOUT, ended this call: say so whichever
            # finishes first, this thread or the pool's wait, so the client resends the row.
            if cut_by_deadline:
                raise DeadlineExceeded() from None
            raise
        finally:
            self.budget.release(succeeded)
        provider_name = completion.provider or self.provider.name
        if pace.meter is not None:
            seconds = self.clock() - started
            pace.meter.called(
                provider_name, completion.model, task, completion.usage, words, seconds, reserved
            )
        result = (
            completion.result
            if completion.result is not None
            else parse_answer(
                template.result, completion.text, labels=item.labels, fields=item.fields, count=item.count
            )
        )
        body = {
            "summary": text_form(result, template.result),
            "type": task,
            "result": result,
            "provider": provider_name,
            "model": completion.model,
            "usage": completion.usage.as_dict(),
        }
        if provider_name != self.provider.route(item.model)[0]:  # a fallback answered
            key = self.key_for(item, (provider_name, completion.model))
        self.cache.set(key, body)
        return Outcome({**body, "cached": False}, completion.usage, False)

    def _measured_call(self, job: Job, timeout: float) -> Completion:
        """The provider call, counted in the metrics: in flight, outcome, latency."""
        started = self.clock()
        metrics.IN_FLIGHT.inc()
        try:
            completion = self.provider.complete(job, timeout)
        except APIError as err:
            name, model = self.provider.route(job.model)
            metrics.PROVIDER_CALLS.labels(name, model, err.code).inc()
            raise
        finally:
            metrics.IN_FLIGHT.dec()
        name = completion.provider or self.provider.name
        metrics.PROVIDER_CALLS.labels(name, completion.model, "ok").inc()
        metrics.PROVIDER_SECONDS.labels(name).observe(self.clock() - started)
        return completion

    # ------------------------------------------------------------------ batch

    def process_batch(
        self,
        raw_items: list[Any],
        defaults: dict[str, Any],
        timeout: float | None = None,
        pace: RowPace = DEFAULT_PACE,
    ) -> dict[str, Any]:
        """Every row's result in input order, plus stats. Never raises for a row's failure.

        `timeout` bounds the whole batch (default BATCH_TIMEOUT, what Excel can wait for).
        `pace` says where its rows queue for provider slots, and `pace.abort()` is asked when
        a row gets its slot: True fails the row as cancelled.
        """
        deadline = self.clock() + (timeout or self.settings.batch_timeout)
        results: list[dict[str, Any] | None] = [None] * len(raw_items)
        pending: dict[str, list[int]] = {}  # cache key -> row indexes waiting for it
        items: dict[str, BatchItem] = {}
        ids: list[Any] = [None] * len(raw_items)

        for index, raw in enumerate(raw_items):
            item, error = self.validate_row(raw, defaults)
            ids[index] = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(ids[index], (str, int)):
                ids[index] = None
            if error is not None:
                results[index] = self._row_error(index, ids[index], error)
                continue
            assert item is not None
            key = self.key_for(item)
            if key in pending:
                pending[key].append(index)
                continue
            hit = self.cached(key)
            if hit is not None:
                self._free(pace, hit)
                results[index] = self._row_ok(index, ids[index], hit)
            else:
                pending[key] = [index]
                items[key] = item

        outcomes = self._run_pool(items, deadline, pace)
        for key, indexes in pending.items():
            outcome = outcomes.get(key) or DeadlineExceeded()
            for n, index in enumerate(indexes):
                if isinstance(outcome, APIError):
                    results[index] = self._row_error(index, ids[index], outcome)
                elif n == 0:
                    results[index] = self._row_ok(index, ids[index], outcome)
                else:  # a duplicate row: same answer, not paid for again
                    dup = Outcome({**outcome.body, "usage": Usage().as_dict()}, Usage(), outcome.cached)
                    self._free(pace, dup)
                    results[index] = self._row_ok(index, ids[index], dup)
        return self._summarise([r for r in results if r is not None], outcomes)

    def validate_row(self, raw: Any, defaults: dict[str, Any]) -> tuple[BatchItem | None, APIError | None]:
        """The row with `defaults` filled in, or the error that fails this row alone."""
        if not isinstance(raw, dict):
            return None, InvalidInput("item: must be a JSON object")
        try:
            return validate(BatchItem, {**defaults, **raw}, self.validation_context), None
        except InvalidInput as err:
            return None, err

    def _run_pool(
        self, items: dict[str, BatchItem], deadline: float, pace: RowPace = DEFAULT_PACE
    ) -> dict[str, Outcome | APIError]:
        """Compute the distinct misses until the deadline, as many at once as the budget allows.

        One thread per row up to PROVIDER_CONCURRENCY: the budget, not the pool, decides
        how many reach the provider, so a lone batch can use every slot.
        """
        outcomes: dict[str, Outcome | APIError] = {}
        if not items:
            return outcomes
        workers = min(self.settings.provider_concurrency, len(items))
        pool = self.executor(workers)
        try:
            futures = {
                pool.submit(self._guarded, item, key, deadline, pace): key for key, item in items.items()
            }
            done, _ = self.wait_for(futures, timeout=max(0.0, deadline - self.clock()))
            for future in done:
                outcomes[futures[future]] = future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return outcomes

    def _guarded(self, item: BatchItem, key: str, deadline: float, pace: RowPace) -> Outcome | APIError:
        try:
            return self._compute(item, key, deadline, pace)
        except APIError as err:
            return err
        except Exception as exc:  # a bug in one row must not take the batch down
            log_crash(log, exc, "batch row crashed")
            return InternalError()

    @staticmethod
    def _row_ok(index: int, row_id: Any, outcome: Outcome) -> dict[str, Any]:
        return {"index": index, "id": row_id, "ok": True, **outcome.body}

    @staticmethod
    def _row_error(index: int, row_id: Any, err: APIError) -> dict[str, Any]:
        return {"index": index, "id": row_id, "ok": False, "error": err.to_dict()}

    @staticmethod
    def _summarise(results: list[dict[str, Any]], outcomes: dict[str, Outcome | APIError]) -> dict[str, Any]:
        usage = Usage()
        for outcome in outcomes.values():
            if isinstance(outcome, Outcome):
                usage = usage + outcome.usage
        succeeded = sum(1 for r in results if r["ok"])
        return {
            "results": results,
            "stats": {
                "total": len(results),
                "succeeded": succeeded,
                "failed": len(results) - succeeded,
                "cached": sum(1 for r in results if r["ok"] and r.get("cached")),
                "usage": usage.as_dict(),
            },
        }
