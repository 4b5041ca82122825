"""Workspace models spend sponsored allowances only when an entitled person bound them."""

from __future__ import annotations

import pytest
from fakes import ALICE, EPOCH, FakeProvider, body, ledger, make_pipe, messages
from sqlalchemy.orm import Session

from openwebui_token_tracking.errors import (
    InvalidInputError,
    ModelNotCoveredError,
    NotFoundError,
    TotalTokenLimitExceededError,
)
from openwebui_token_tracking.openwebui.sponsorship import binding_from_metadata
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe
from openwebui_token_tracking.storage.sponsors import create_allowance

pytestmark = pytest.mark.anyio


def allowance(engine, name="Physics 101", models=("gpt-4o-mini",), total=100,
              sponsor="u-bob"):
    with Session(engine, expire_on_commit=False) as s, s.begin():
        return create_allowance(s, name=name, sponsor_id=sponsor, models=models,
                                total_credit_limit=total, daily_credit_limit=None,
                                now=EPOCH)


def workspace(model_id: str, owner: str, params: dict | None = None,
              meta: dict | None = None, base: str = "tt_openai.gpt-4o-mini") -> dict:
    """``__metadata__`` as Open WebUI 0.12 passes it for a workspace model."""
    return {"chat_id": "c", "message_id": f"m-{model_id}", "model": {
        "id": model_id, "name": "Physics tutor", "object": "model", "preset": True,
        "info": {"id": model_id, "user_id": owner, "base_model_id": base,
                 "name": "Physics tutor", "params": params or {}, "meta": meta or {},
                 "access_control": None, "is_active": True}}}


async def ask(engine, db_url, metadata, extra_body: dict | None = None):
    fake = FakeProvider(body("openai", "completion_reasoning.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    # Open WebUI has already replaced the workspace model id by its base model id.
    req = {"model": "tt_openai.gpt-4o-mini", "messages": messages(), **(extra_body or {})}
    await pipe.pipe(req, __user__=ALICE, __metadata__=metadata)
    return fake


async def test_allowance_id_in_params_set_by_an_admin_is_spent(priced, db_url):
    grant = allowance(priced)
    await ask(priced, db_url, workspace("physics-tutor", "u-admin",
                                        params={"token_tracking_allowance": str(grant.id)}))
    [row] = ledger(priced)
    assert row.sponsored_allowance_id == grant.id and row.user_id == "u-alice"


async def test_binding_in_custom_params_or_meta_by_the_sponsor(priced, db_url):
    grant = allowance(priced, sponsor="u-bob")
    await ask(priced, db_url, workspace("t1", "u-bob", params={
        "custom_params": {"token_tracking_allowance": grant.name}}))
    await ask(priced, db_url, workspace("t2", "u-bob",
                                        meta={"token_tracking_allowance": str(grant.id)}))
    assert [r.sponsored_allowance_id for r in ledger(priced)] == [grant.id, grant.id]


async def test_binding_by_an_ordinary_user_is_refused(priced, db_url):
    grant = allowance(priced, sponsor="u-bob")
    with pytest.raises(InvalidInputError, match="only a model created by an admin or by "
                       "the allowance's sponsor"):
        await ask(priced, db_url, workspace("mine", "u-alice",
                                            params={"token_tracking_allowance": str(grant.id)}))
    assert ledger(priced) == []


async def test_legacy_name_prefix_convention_still_binds(priced, db_url):
    grant = allowance(priced)
    await ask(priced, db_url, workspace("Physics 101---tutor", "u-admin"))
    [row] = ledger(priced)
    assert row.sponsored_allowance_id == grant.id


async def test_legacy_convention_cannot_be_forged_by_a_user(priced, db_url):
    allowance(priced)
    with pytest.raises(InvalidInputError, match="may not spend sponsored allowance"):
        await ask(priced, db_url, workspace("Physics 101---free ride", "u-alice"))


async def test_base_model_must_be_covered(priced, db_url):
    grant = allowance(priced, models=("o4-mini",))
    with pytest.raises(ModelNotCoveredError, match="does not cover model 'gpt-4o-mini'"):
        await ask(priced, db_url, workspace("w", "u-admin",
                                            params={"token_tracking_allowance": str(grant.id)}))


async def test_unknown_allowance_is_a_clear_error(priced, db_url):
    with pytest.raises(NotFoundError, match="which does not exist"):
        await ask(priced, db_url, workspace("w", "u-admin",
                                            params={"token_tracking_allowance": "Nope"}))


async def test_the_request_body_cannot_select_an_allowance(priced, db_url):
    grant = allowance(priced)
    fake = await ask(priced, db_url, {"chat_id": "c", "message_id": "m"},
                     extra_body={"token_tracking_allowance": str(grant.id)})
    [row] = ledger(priced)
    assert row.sponsored_allowance_id is None
    assert "token_tracking_allowance" not in fake.json()


async def test_spent_allowance_refusal_names_it(priced, db_url):
    grant = allowance(priced, total=0)
    with pytest.raises(TotalTokenLimitExceededError,
                       match="the sponsored allowance 'Physics 101' is used up"):
        await ask(priced, db_url, workspace("w", "u-admin",
                                            params={"token_tracking_allowance": str(grant.id)}))
    assert ledger(priced) == []


def test_plain_models_have_no_binding():
    assert binding_from_metadata({"model": {"id": "tt_openai.gpt-4o-mini",
                                            "pipe": {"type": "pipe"}}}) is None
    assert binding_from_metadata(None) is None
