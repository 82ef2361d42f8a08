"""`flask --app wsgi tokens ...`: named API tokens for a team, from the operator's shell.

    tokens create NAME [--budget-usd 5 --period day|month]   prints the new token, once
    tokens list                                              names, budgets, spend, last use
    tokens revoke NAME                                       refused everywhere within 5 s

The commands work on the same state database as the running server (STATE_URL, default
instance/state.sqlite3), so nothing needs a restart. Only the token's sha256 is stored:
a lost token cannot be shown again, only revoked and replaced.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from backend.prices import usd
from backend.state import PERIODS, StateError, TokenRecord, check_name, digest


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


tokens = AppGroup("tokens", help="Named API tokens: create, list, revoke.")


@tokens.command("create")
@click.argument("name")
@click.option("--budget-usd", type=click.FloatRange(min=0), default=None, help="Spend cap per period, USD.")
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True)
def create(name: str, budget_usd: float | None, period: str) -> None:
    """Create a token for NAME and print it (the only time it is shown)."""
    store = current_app.extensions["flaskllm"].state_store
    token = secrets.token_urlsafe(32)
    try:
        check_name(name)
        store.create_token(TokenRecord(name, digest(token), budget_usd, period, time.time()))
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    budget = "no budget" if budget_usd is None else f"budget {budget_usd:g} USD per {period}"
    click.echo(f"Created token {name!r} ({budget}). Give it to its user; it is not shown again:")
    click.echo(token)


@tokens.command("list")
def list_tokens() -> None:
    """Every named token: budget, spend this period, last use. Never the token itself."""
    app_state = current_app.extensions["flaskllm"]
    records = app_state.state_store.list_tokens()
    if not records:
        click.echo("No named tokens. Create one with: flask --app wsgi tokens create NAME")
        return
    rows = [("NAME", "BUDGET", "SPENT THIS PERIOD", "LAST USED", "CREATED", "STATUS")]
    for r in records:
        spent = usd(app_state.budgets.spent_nano(r.name, r.period))
        budget = "-" if r.budget_usd is None else f"{r.budget_usd:g} USD/{r.period}"
        status = "active" if r.revoked_at is None else f"revoked {_when(r.revoked_at)}"
        rows.append((r.name, budget, f"{spent:.4f} USD", _when(r.last_used_at), _when(r.created_at), status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@tokens.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke NAME's token: every worker refuses it within a few seconds."""
    store = current_app.extensions["flaskllm"].state_store
    if not store.revoke_token(name, time.time()):
        raise click.ClickException(f"No active token named {name!r}.")
    click.echo(f"Revoked {name!r}. Its usage stays in the ledger.")


def register(app: Flask) -> None:
    app.cli.add_command(tokens)
