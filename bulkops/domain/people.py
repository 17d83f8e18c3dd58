"""Who acts: the roles a key or a person may hold, a person's email address, and the `Actor` every
action carries (the person, and the key or console session they acted through). Imports nothing of
ours, so every layer (and the workflow) may use it.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, Field


class Role(StrEnum):
    """What an API key may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  # reads
    OPERATOR = "operator"  # also creates and controls operations
    APPROVER = "approver"  # also approves and rejects
    ADMIN = "admin"  # also manages keys and the tenant's policy

    def allows(self, required: Role) -> bool:
        return _RANK[self] >= _RANK[required]

    def at_most(self, ceiling: Role) -> Role:
        """This role, bounded by `ceiling` (a personal key's by its person's)."""
        return self if ceiling.allows(self) else ceiling


_RANK = {role: rank for rank, role in enumerate(Role)}

# Loose on purpose (identity providers hand out addresses a strict rule would refuse): one `@`,
# something on both sides, no spaces or control characters.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+")


def checked_email(email: str) -> str:
    """A person's email address, trimmed; ValueError when it is not one."""
    email = email.strip()
    if not _EMAIL.fullmatch(email) or len(email) > 320:
        raise ValueError(f"not an email address: {email!r}")
    return email


class Actor(BaseModel):
    """Who asked for an action (none of it for the system's own transitions): the person (`user_id`,
    and `name` their name) — or, for a service key, no person and `name` the key's name — and the API
    key or console session they acted through."""

    key_id: str | None = None
    name: str | None = None
    comment: str | None = Field(default=None, max_length=1000)
    user_id: str | None = None
    key_name: str | None = None
    session_id: str | None = None
    service: bool = False

    @property
    def label(self) -> str | None:
        """How the console and `initiated_by` name it: the person, and what they acted through."""
        if self.name is None:
            return None
        if self.service:
            return f"{self.name} (service key)"
        if self.session_id is not None:
            return (
                f"{self.name} (console, key {self.key_name})"
                if self.key_name
                else f"{self.name} (console, single sign-on)"
            )
        return f"{self.name} (key {self.key_name})" if self.key_name else self.name

    def same_person(self, user_id: str | None, key_id: str | None) -> bool:
        """Whether this is the person (or, for what predates people, the key) that `user_id` and
        `key_id` name: such an actor may not approve or reject what they created."""
        if self.user_id is not None and self.user_id == user_id:
            return True
        return self.key_id is not None and self.key_id == key_id
