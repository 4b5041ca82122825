"""What a user reads when the token-tracking database cannot be reached.

Admission fails closed: without the database no request can be checked or charged, so
none is sent to the provider. Open WebUI shows the text of the exception a pipe raises,
so the text is one plain line for the user; the database's own error (which may name
hosts and files) goes to the server log only.
"""

from __future__ import annotations

import logging

from ..errors import DatabaseError

logger = logging.getLogger(__name__)

MESSAGE = ("This request was not sent: usage tracking is unavailable right now (its "
           "database did not answer). Please try again in a minute; if it keeps "
           "happening, tell your administrator.")


def unavailable(exc: DatabaseError) -> DatabaseError:
    """The user's one-line refusal for ``exc``, which is logged with its cause."""
    logger.error("refused a request because the database failed: %s", exc)
    return DatabaseError(MESSAGE)
