"""The cast most safety tests play with: a fresh tenant's admin key, an operator `olga` who creates
and controls operations, and an approver `anna` who decides them (the worker is each test's own)."""

from __future__ import annotations

import pytest

from bulkops.domain.people import Role
from tests.harness import Harness
from tests.safety.keys import Crew, key


@pytest.fixture
async def crew(harness: Harness) -> Crew:
    admin = await harness.tenant()
    olga = await key(harness, admin, Role.OPERATOR, "olga")
    return Crew(harness, admin, olga, await key(harness, admin, Role.APPROVER, "anna"))
