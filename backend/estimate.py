"""Price a batch or a job before it runs (POST /api/v1/estimate), without calling the LLM.

Method (no tokenizer download, no provider call):
- each row is validated and looked up in the cache exactly as the run would; invalid rows,
  cache hits and duplicates of an earlier row cost nothing;
- each row left is rendered with its task's template, and the words of the system and
  user prompts are counted (whitespace-separated, as sent);
- input tokens = words x tokens-per-word of the provider and model. The ratio is learned
  from the usage ledger, which records, for every provider call, the words sent and the
  input tokens the provider reported: sum(tokens) / sum(words) once at least
  CALIBRATION_WORDS words were seen. Before that, the prior 1.35 (English prose with a
  BPE tokenizer: about 0.75 words per token). So estimates match the operator's own
  provider, language and templates after the first few rows;
- output tokens per row = the average the ledger saw for that task and model (at least
  CALIBRATION_ROWS calls), else a prior per result kind (a translation: about its input);
- cost = tokens x the price table (null when the model has no price);
- time = rows to run / PROVIDER_CONCURRENCY x the average call time the ledger saw (prior 2 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backend.auth import Caller
from backend.budgets import Budgets
from backend.prices import Prices, usd
from backend.service import Service
from backend.settings import Settings
from backend.state import StateStore, UsageCounts

PRIOR_TOKENS_PER_WORD = 1.35
PRIOR_SECONDS_PER_CALL = 2.0
CALIBRATION_WORDS = 200
CALIBRATION_ROWS = 5
PRIOR_OUTPUT = {"text": 90, "string_list": 25, "sentiment": 12, "entity_list": 45, "label": 5, "record": 40}


@dataclass
class ModelPlan:
    """The rows left to run on one provider and model."""

    provider: str
    model: str
    rows: int = 0
    words: int = 0
    output_by_task: dict[str, int] | None = None
    translation_words: int = 0


class Estimator:
    def __init__(
        self, settings: Settings, service: Service, store: StateStore, prices: Prices, budgets: Budgets
    ) -> None:
        self.settings = settings
        self.service = service
        self.store = store
        self.prices = prices
        self.budgets = budgets

    def estimate(self, caller: Caller, raw_items: list[Any], defaults: dict[str, Any]) -> dict[str, Any]:
        invalid = cached = 0
        seen: set[str] = set()
        plans: dict[tuple[str, str], ModelPlan] = {}
        tasks: dict[tuple[str, str], dict[str, int]] = {}
        for raw in raw_items:
            item, error = self.service.validate_row(raw, defaults)
            if error is not None or item is None:
                invalid += 1
                continue
            key = self.service.key_for(item)
            if key in seen or self.service.cached(key, count=False) is not None:
                cached += 1
                continue
            seen.add(key)
            try:
                job = self.service.render(item)
            except Exception:  # e.g. a task the provider cannot do: the run fails it for free
                invalid += 1
                continue
            provider, model = self.service.provider.route(item.model)
            plan = plans.setdefault((provider, model), ModelPlan(provider, model))
            plan.rows += 1
            plan.words += len(job.system.split()) + len(job.user.split())
            task = item.type or "summary"
            if task == "translation":
                plan.translation_words += len(item.prompt.split())
            counter = tasks.setdefault((provider, model), {})
            counter[task] = counter.get(task, 0) + 1
        input_tokens = output_tokens = 0
        cost: int | None = 0
        seconds = 0.0
        for route, plan in plans.items():
            totals = self._totals(plan.provider, plan.model)
            ins = self._input_tokens(plan, totals)
            outs = self._output_tokens(plan, tasks[route], totals)
            input_tokens += ins
            output_tokens += outs
            price = self.prices.cost_nano(plan.model, ins, outs)
            cost = None if cost is None or price is None else cost + price
            rounds = math.ceil(plan.rows / self.settings.provider_concurrency)
            seconds += rounds * self._seconds_per_call(plan, totals)
        to_run = sum(p.rows for p in plans.values())
        budget = self.budgets.state(caller)
        cost_usd = None if cost is None else usd(cost)
        confirm = (
            (cost_usd is not None and cost_usd >= self.settings.estimate_confirm_usd and to_run > 0)
            or (cost_usd is None and to_run >= self.settings.estimate_confirm_rows)
            or (budget is not None and cost is not None and cost > budget.limit_nano - budget.spent_nano)
        )
        default_provider, default_model = self.service.provider.route(defaults.get("model"))
        return {
            "rows": len(raw_items),
            "invalid": invalid,
            "cached": cached,
            "to_run": to_run,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_usd,
            "seconds": round(seconds, 1),
            "provider": default_provider,
            "model": default_model,
            "confirm": bool(confirm),
            "budget": None if budget is None else budget.as_dict(),
        }

    def _totals(self, provider: str, model: str) -> dict[str, UsageCounts]:
        try:
            return self.store.model_totals(provider, model)
        except Exception:  # no ledger: the priors
            return {}

    def _input_tokens(self, plan: ModelPlan, totals: dict[str, UsageCounts]) -> int:
        words = sum(t.input_words for t in totals.values())
        tokens = sum(t.input_tokens for t in totals.values())
        ratio = tokens / words if words >= CALIBRATION_WORDS else PRIOR_TOKENS_PER_WORD
        return round(plan.words * ratio)

    def _output_tokens(self, plan: ModelPlan, tasks: dict[str, int], totals: dict[str, UsageCounts]) -> int:
        total = 0.0
        for task, rows in tasks.items():
            seen = totals.get(task)
            calls = 0 if seen is None else seen.rows - seen.cached_rows
            if seen is not None and calls >= CALIBRATION_ROWS:
                total += rows * seen.output_tokens / calls
            elif task == "translation":
                total += plan.translation_words * PRIOR_TOKENS_PER_WORD
            else:
                kind = self.service.templates[task].result
                total += rows * PRIOR_OUTPUT.get(kind, 90)
        return round(total)

    @staticmethod
    def _seconds_per_call(plan: ModelPlan, totals: dict[str, UsageCounts]) -> float:
        calls = sum(t.rows - t.cached_rows for t in totals.values())
        if calls >= CALIBRATION_ROWS:
            return sum(t.provider_ms for t in totals.values()) / calls / 1000
        return 0.01 if plan.provider == "local" else PRIOR_SECONDS_PER_CALL
