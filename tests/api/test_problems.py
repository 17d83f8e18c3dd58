"""The one map from the service's refusals to answers (`api.problems.REFUSALS`)."""

from __future__ import annotations

from api.problems import REFUSALS, as_problem
from bulkops.service import errors
from bulkops.service.feeds import TooManyStreams
from bulkops.service.limits import LimitExceeded


def test_every_refusal_of_the_service_has_an_answer() -> None:
    # A refusal without one would reach the catch-all handler: a 500 instead of a 4xx.
    refusals = {getattr(errors, name) for name in errors.__all__}
    assert refusals <= set(REFUSALS)


def test_refusals_answer_with_status_detail_and_retry_after() -> None:
    missing = as_problem(errors.NotFound())
    assert (missing.status, missing.detail) == (404, "no such bulk operation")
    assert as_problem(errors.NotFound("order")).detail == "no such order"
    assert as_problem(errors.BadCursor("x")).detail == "cursor is not valid"
    busy = as_problem(LimitExceeded("too many", 7))
    assert (busy.status, busy.headers) == (429, {"Retry-After": "7"})
    assert as_problem(LimitExceeded("too big", 7, permanent=True)).status == 422
    streams = as_problem(TooManyStreams(3, 9))
    assert (streams.status, streams.headers) == (429, {"Retry-After": "9"})
    assert as_problem(errors.Unavailable("later")).headers == {"Retry-After": "5"}
