"""Register bulkops' custom search attributes and its retention schedule on a Temporal cluster,
idempotently."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

from bulkops.infra.temporal_client import connect
from bulkops.service.retention import ensure_retention_schedule, retention_schedule_id
from bulkops.settings import Settings
from workflows.search_attributes import ALL

log = logging.getLogger(__name__)

_TYPES = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}


async def register_search_attributes(settings: Settings) -> tuple[list[str], list[str]]:
    """Add the missing attributes; returns (added, already present).

    An attribute that exists with another type is an error: the workflows would fail to upsert it.
    """
    client = await connect(settings)
    ns = settings.temporal_namespace
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=ns))
    existing = dict(listed.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    present: list[str] = []
    for key in ALL:
        name, kind = key.name, "Keyword"
        want = _TYPES[kind]
        if name not in existing:
            missing[name] = want
        elif existing[name] != want:
            have = IndexedValueType.Name(existing[name]).removeprefix("INDEXED_VALUE_TYPE_")
            raise RuntimeError(f"search attribute {name} exists as {have}, bulkops needs {kind}")
        else:
            present.append(name)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=ns, search_attributes=missing)
        )
        log.info("registered search attributes %s in namespace %s", sorted(missing), ns)
    return sorted(missing), present


async def setup_retention_schedule(settings: Settings) -> tuple[bool, str]:
    """Create or update the retention schedule; returns (created now, its id)."""
    created = await ensure_retention_schedule(await connect(settings), settings)
    return created, retention_schedule_id(settings)
