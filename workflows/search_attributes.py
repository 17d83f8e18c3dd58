"""The custom search attributes that make operations findable in the Temporal UI."""

from temporalio.common import SearchAttributeKey

TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
OPERATION_TYPE = SearchAttributeKey.for_keyword("BulkOperationType")
OPERATION_STATUS = SearchAttributeKey.for_keyword("BulkOperationStatus")

# What `bulkops dev` and `bulkops temporal-setup` register: all Keyword attributes.
ALL = (TENANT_ID, OPERATION_TYPE, OPERATION_STATUS)
