"""Names of the limit scopes a budget counter (``token_tracking_budget_counter``) keeps,
and the refusal reason each reports (``/metrics``, ``TokenLimitExceededError.reason``).

========================  =====================================  ======================
scope                     subject                                window
========================  =====================================  ======================
``user``                  user id                                budget window
``sponsor_user``          ``<allowance id>:<user id>``           budget window
``sponsor_total``         allowance id                           all time (key 0)
``model_cap``             ``<user id>:<model id>``               budget window
``provider_cap``          ``<user id>:<provider>``               budget window
``group_total``           credit group id, 32 hex digits         budget window
``api_key``               API key id (``key-`` + hash prefix)    budget window
========================  =====================================  ======================
"""

from __future__ import annotations

USER, SPONSOR_USER, SPONSOR_TOTAL = "user", "sponsor_user", "sponsor_total"
MODEL_CAP, PROVIDER_CAP, GROUP_TOTAL = "model_cap", "provider_cap", "group_total"
API_KEY = "api_key"
"""A capped API key's spend per window (see ``storage.key_budgets``)."""
CAP_SCOPES = (MODEL_CAP, PROVIDER_CAP)

REFUSAL_REASONS = {USER: "user_limit", SPONSOR_USER: "sponsored_user_limit",
                   SPONSOR_TOTAL: "sponsored_total_limit", MODEL_CAP: "model_cap",
                   PROVIDER_CAP: "provider_cap", GROUP_TOTAL: "group_budget",
                   API_KEY: "api_key_limit"}
