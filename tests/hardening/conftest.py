"""Hardening suite: report the contract fuzzer's case count at the end of the run."""

from __future__ import annotations

import pytest

from tests.hardening.live import FUZZ_CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    cases = config.stash.get(FUZZ_CASES, None)
    if cases:
        terminalreporter.section("schemathesis")
        for label, count in cases.items():
            terminalreporter.write_line(f"{count:6d}  {label}")
        terminalreporter.write_line(f"{sum(cases.values()):6d}  cases in total")
