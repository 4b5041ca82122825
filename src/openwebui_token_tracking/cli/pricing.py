"""``pricing``: the price catalogue. Every write keeps the price history."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO, Any, TypeVar

import click
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from ..accountant import utcnow
from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ..storage import prices
from ..storage.schema import ModelPricing, PriceHistory
from ._app import Group, get_app, handles, json_option
from ._output import emit_json, emit_table, progress, rate
from ._price_file import PriceRecord, parse_price_file

F = TypeVar("F", bound=Callable[..., Any])

COST_FIELDS = ("input_cost_credits", "per_input_tokens", "output_cost_credits",
               "per_output_tokens", "cached_input_cost_credits", "per_cached_input_tokens",
               "cache_write_cost_credits", "per_cache_write_tokens")


@click.group(name="pricing", cls=Group)
def pricing() -> None:
    """Model prices in credits per N tokens (the price history is always kept)."""


# -- shared -------------------------------------------------------------------------------

def price_options(*, defaults: bool) -> Callable[[F], F]:
    """The cost options; ``defaults`` gives ``per_*_tokens`` 0.1.10's default 1,000,000."""
    per_default = 1_000_000 if defaults else None

    def decorate(func: F) -> F:
        specs = [
            ("--input-cost-credits", None, "Credits per PER-INPUT-TOKENS fresh input tokens."),
            ("--per-input-tokens", per_default, "Input tokens priced by INPUT-COST-CREDITS."),
            ("--output-cost-credits", None, "Credits per PER-OUTPUT-TOKENS output tokens."),
            ("--per-output-tokens", per_default, "Output tokens priced by OUTPUT-COST-CREDITS."),
            ("--cached-input-cost-credits", None, "Credits per N cache-read input tokens "
             "(default: the input rate)."),
            ("--per-cached-input-tokens", None, "N for --cached-input-cost-credits."),
            ("--cache-write-cost-credits", None, "Credits per N cache-write input tokens "
             "(default: the input rate)."),
            ("--per-cache-write-tokens", None, "N for --cache-write-cost-credits."),
        ]
        for flag, default, help_text in reversed(specs):
            func = click.option(flag, type=int, default=default, show_default=default is not None,
                                help=help_text)(func)
        return click.option("--name", help="Human-readable model name.")(func)  # type: ignore
    return decorate


def record_from(values: dict[str, Any]) -> PriceRecord:
    """A validated price from command-line values (``InvalidInputError`` if not valid)."""
    try:
        return PriceRecord(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInputError(f"{field.replace('_', '-') + ': ' if field else ''}"
                                f"{err['msg']}") from exc


def read_records(file: IO[bytes]) -> list[PriceRecord]:
    return parse_price_file(file.read(), getattr(file, "name", "<stdin>"))


def write_records(session: Session, records: Sequence[PriceRecord], *, now: datetime,
                  source: str, label: str) -> Counter[str]:
    """Set each price (history kept), with progress on stderr; counts by outcome."""
    counts: Counter[str] = Counter()
    with progress(records, label=label, length=len(records)) as bar:
        for record in bar:
            row = session.get(ModelPricing, record.key)
            before = None if row is None else PriceRecord.from_row(row)
            prices.set_price(session, provider=record.provider, model_id=record.id,
                             name=record.name, price=record.price_input(), now=now,
                             source=source)
            if before is None:
                counts["added"] += 1
            elif before.price_input() != record.price_input() or \
                    (record.name is not None and before.name != record.name):
                counts["changed"] += 1
            else:
                counts["unchanged"] += 1
    return counts


def summary(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in ("added", "changed", "unchanged"))


def show_prices(rows: Sequence[ModelPricing], as_json: bool) -> None:
    """A table (or JSON); ``matched`` is the model a resolved alias matched."""
    if as_json:
        emit_json([{**PriceRecord.from_row(r).export(), "source": r.source,
                    "matched_model_id": r.matched_model_id, "updated_at": r.updated_at}
                   for r in rows])
        return
    emit_table(
        ["provider", "id", "name", "input", "output", "cached input", "cache write", "source",
         "matched"],
        [[r.provider, r.id, r.name, rate(r.input_cost_credits, r.per_input_tokens),
          rate(r.output_cost_credits, r.per_output_tokens),
          rate(r.cached_input_cost_credits, r.per_cached_input_tokens),
          rate(r.cache_write_cost_credits, r.per_cache_write_tokens), r.source,
          r.matched_model_id] for r in rows],
        empty="No model prices.")


def _require_absent(session: Session, record: PriceRecord) -> None:
    if session.get(ModelPricing, record.key) is not None:
        raise AlreadyExistsError(
            f"model {record.id!r} of provider {record.provider!r} already has a price; "
            "use `pricing update` or `pricing upsert` to change it")


# -- read ---------------------------------------------------------------------------------

@pricing.command(name="list")
@click.option("--provider", help="Only this provider's models, e.g. openai.")
@json_option
@handles()
def list_(provider: str | None, as_json: bool) -> None:
    """List the priced models."""
    with get_app().session() as s:
        rows = prices.list_prices(s, provider=provider)
    show_prices(rows, as_json)


@pricing.command()
@click.argument("model_id")
@click.option("--provider", help="Provider of the model (default: any).")
@json_option
@handles(NotFoundError)
def get(model_id: str, provider: str | None, as_json: bool) -> None:
    """Show the price of MODEL_ID."""
    with get_app().session() as s:
        rows = prices.list_prices(s, provider=provider, model_id=model_id)
    if not rows:
        of = f" of provider {provider!r}" if provider else ""
        raise NotFoundError(f"no price for model {model_id!r}{of}; see `pricing list`, or "
                            f"`pricing resolve {model_id}` for the price it would get")
    show_prices(rows, as_json)


@pricing.command()
@click.argument("model_id")
@click.option("--provider", required=True, help="Provider of the model.")
@json_option
@handles(NotFoundError)
def history(model_id: str, provider: str, as_json: bool) -> None:
    """Every price MODEL_ID has had, oldest first (usage is charged at the one in force)."""
    with get_app().session() as s:
        rows = list(s.scalars(
            sa.select(PriceHistory)
            .where(PriceHistory.provider == provider, PriceHistory.model_id == model_id)
            .order_by(PriceHistory.effective_from)))
    if not rows:
        raise NotFoundError(f"model {model_id!r} of provider {provider!r} has no price history")
    if as_json:
        emit_json([{"effective_from": r.effective_from, "source": r.source,
                    **{f: getattr(r, f) for f in COST_FIELDS}} for r in rows])
        return
    emit_table(["effective from", "input", "output", "cached input", "cache write", "source"],
               [[r.effective_from, rate(r.input_cost_credits, r.per_input_tokens),
                 rate(r.output_cost_credits, r.per_output_tokens),
                 rate(r.cached_input_cost_credits, r.per_cached_input_tokens),
                 rate(r.cache_write_cost_credits, r.per_cache_write_tokens), r.source]
                for r in rows])


# -- write --------------------------------------------------------------------------------

def _records_or_options(json_file: IO[bytes] | None, model_id: str | None,
                        provider: str | None, options: dict[str, Any]) -> list[PriceRecord]:
    if json_file is not None:
        given = [k for k, v in options.items() if v is not None and not k.startswith("per_")]
        if model_id or provider or given:
            raise click.UsageError("give either --json FILE or one model's options, not both")
        return read_records(json_file)
    if not model_id or not provider:
        raise click.UsageError("give the model id and --provider (or --json FILE)")
    missing = [k for k in ("input_cost_credits", "output_cost_credits") if options[k] is None]
    if missing:
        raise click.UsageError(
            f"missing {', '.join('--' + m.replace('_', '-') for m in missing)}")
    return [record_from({"provider": provider, "id": model_id, **options})]


@pricing.command()
@click.option("--provider", help="Provider id, e.g. openai, anthropic, google_genai, mistral.")
@click.option("--id", "model_id", help="Model id as the provider's API names it.")
@price_options(defaults=True)
@click.option("--json", "json_file", type=click.File("rb"),
              help="Add every model of a price file instead.")
@handles(AlreadyExistsError, InvalidInputError)
def add(provider: str | None, model_id: str | None, json_file: IO[bytes] | None,
        **options: Any) -> None:
    """Price a new model (fails if it already has a price)."""
    records = _records_or_options(json_file, model_id, provider, options)
    with get_app().session() as s:
        for record in records:
            _require_absent(s, record)
        counts = write_records(s, records, now=utcnow(), source="manual", label="Adding prices")
    click.echo(f"Added {counts['added']} model price(s).")


@pricing.command()
@click.argument("model_id", required=False)
@click.option("--provider", help="Provider of the model.")
@price_options(defaults=True)
@click.option("--json", "json_file", type=click.File("rb"),
              help="Upsert every model of a price file instead.")
@handles(InvalidInputError)
def upsert(model_id: str | None, provider: str | None, json_file: IO[bytes] | None,
           **options: Any) -> None:
    """Price MODEL_ID, adding it or changing its price from now on."""
    records = _records_or_options(json_file, model_id, provider, options)
    with get_app().session() as s:
        counts = write_records(s, records, now=utcnow(), source="manual",
                               label="Upserting prices")
    click.echo(f"Upserted model prices: {summary(counts)}.")


@pricing.command()
@click.argument("model_id")
@click.option("--provider", required=True, help="Provider of the model.")
@price_options(defaults=False)
@handles(NotFoundError, InvalidInputError)
def update(model_id: str, provider: str, **options: Any) -> None:
    """Change some of MODEL_ID's price fields, from now on."""
    changes = {k: v for k, v in options.items() if v is not None}
    if not changes:
        raise click.UsageError("nothing to update: give --name or a cost option")
    with get_app().session() as s:
        row = s.get(ModelPricing, (provider, model_id))
        if row is None:
            raise NotFoundError(f"no price for model {model_id!r} of provider {provider!r}; "
                                "use `pricing add`")
        record = record_from({**PriceRecord.from_row(row).model_dump(), **changes})
        write_records(s, [record], now=utcnow(), source="manual", label="Updating price")
    click.echo(f"Updated the price of {provider}/{model_id}.")


@pricing.command()
@click.argument("model_id")
@click.option("--provider", help="Provider of the model (required if several price it).")
@click.option("-y", "--yes", is_flag=True, hidden=True, help="Accepted for 0.1.10 scripts.")
@handles(NotFoundError, InvalidInputError)
def delete(model_id: str, provider: str | None, yes: bool) -> None:
    """Remove MODEL_ID of one provider: it can no longer be used (its history stays).

    Ids resolved to it through genai-prices' matching (its dated snapshots) go with it,
    and none of them is priced again by itself.
    """
    with get_app().session() as s:
        rows = prices.list_prices(s, provider=provider, model_id=model_id)
        if not rows:
            of = f" of provider {provider!r}" if provider else ""
            raise NotFoundError(f"no price for model {model_id!r}{of}")
        if len(rows) > 1:
            raise InvalidInputError(
                f"model {model_id!r} is priced by several providers "
                f"({', '.join(r.provider for r in rows)}); give --provider")
        aliases = prices.delete_price(s, provider=rows[0].provider, model_id=model_id)
    also = f" and of its resolved aliases {', '.join(aliases)}" if aliases else ""
    click.echo(f"Deleted the price of {rows[0].provider}/{model_id}{also}.")


# -- files --------------------------------------------------------------------------------

@pricing.command(name="import")
@click.argument("file", type=click.File("rb"))
@handles(InvalidInputError)
def import_(file: IO[bytes]) -> None:
    """Add or change the prices in FILE (0.1.10's models.json format; '-' reads stdin).

    The whole file is checked first; then every price is written, or none.
    """
    records = read_records(file)
    with get_app().session() as s:
        counts = write_records(s, records, now=utcnow(), source="manual",
                               label=f"Importing {len(records)} prices")
    click.echo(f"Imported {len(records)} model price(s): {summary(counts)}.")


@pricing.command()
@click.option("--provider", help="Only this provider's models.")
@click.option("-o", "--output", type=click.File("w"), default="-",
              help="Write to this file instead of stdout.")
@handles()
def export(provider: str | None, output: IO[str]) -> None:
    """Write the prices as a file `pricing import` reads."""
    with get_app().session() as s:
        rows = prices.list_prices(s, provider=provider)
        with progress(rows, label=f"Exporting {len(rows)} prices", length=len(rows)) as bar:
            records = [PriceRecord.from_row(r).export() for r in bar]
    json.dump(records, output, indent=2)
    output.write("\n")
