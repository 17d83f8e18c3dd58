"""The new-operation form as the API's create body: the same `BulkOperationCreate` validates both."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from bulkops.domain.model import OperationType
from bulkops.domain.requests import MAX_JSON_DEPTH, BulkOperationCreate

MAX_FILE_BYTES = 1_000_000
_SPLIT = re.compile(r"[\s,;]+")
_HEADERS = {"id", "order_id", "orderid", "order id"}


class FormError(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _list(form: Any, name: str) -> list[str]:
    return [t for t in (p.strip() for p in _text(form, name).split(",")) if t]


def _utc(value: str) -> str:
    # A datetime-local field has no zone; the form's labels say UTC.
    return value if value.endswith("Z") or "+" in value[10:] else value + "Z"


async def order_ids(form: Any) -> str:
    """The pasted ids plus those of an uploaded file, as the text the form shows again."""
    text = _text(form, "order_ids")
    upload = form.get("order_ids_file")
    if upload is not None and not isinstance(upload, str) and upload.filename:
        data = await upload.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FormError([f"the file of order ids is over {MAX_FILE_BYTES:,} bytes"])
        try:
            text = "\n".join(t for t in (text, data.decode("utf-8-sig").strip()) if t)
        except UnicodeDecodeError:
            raise FormError(["the file of order ids is not UTF-8 text"]) from None
    return text


def _id_tokens(text: str) -> list[str]:
    tokens = [t.strip("\"'") for t in _SPLIT.split(text) if t.strip("\"'")]
    return [t for t in tokens if t.lower() not in _HEADERS]


def _parameters(form: Any, op_type: OperationType) -> dict[str, Any]:
    if op_type == OperationType.BULK_CANCEL:
        return {"reason": _text(form, "cancel_reason")}
    if op_type == OperationType.BULK_REFUND:
        params: dict[str, Any] = {"reason": _text(form, "refund_reason")}
        if _text(form, "refund_amount_cents"):
            params["amount_cents"] = _text(form, "refund_amount_cents")
        return params
    if op_type == OperationType.BULK_UPDATE:
        params = {}
        fields = {k: _text(form, f"update_{k}") for k in ("note", "shipping_method")}
        if any(fields.values()):
            params["set"] = {k: v for k, v in fields.items() if v}
        for key in ("add_tags", "remove_tags"):
            if _list(form, f"update_{key}"):
                params[key] = _list(form, f"update_{key}")
        if _text(form, "update_metadata"):
            try:
                params["metadata"] = json.loads(_text(form, "update_metadata"))
            except json.JSONDecodeError as exc:
                raise FormError([f"metadata: not JSON ({exc.msg})"]) from None
            except RecursionError:
                raise FormError([f"metadata: nested too deeply (at most {MAX_JSON_DEPTH} levels)"]) from None
        return params
    export: dict[str, Any] = {"format": _text(form, "export_format") or "csv"}
    if form.getlist("export_fields"):
        export["fields"] = list(form.getlist("export_fields"))
    return export


def create_body(form: Any, ids_text: str) -> tuple[dict[str, Any], BulkOperationCreate]:
    """The create body the form describes (JSON, as the confirm step posts it to the API) and its
    validated model."""
    try:
        op_type = OperationType(_text(form, "operation_type"))
    except ValueError:
        raise FormError(["choose an operation type"]) from None
    body: dict[str, Any] = {"operation_type": op_type.value, "parameters": _parameters(form, op_type)}
    if _text(form, "selection") == "ids":
        body["order_ids"] = _id_tokens(ids_text)
        if not body["order_ids"]:
            raise FormError(["paste or upload at least one order id"])
    else:
        flt: dict[str, Any] = {}
        if form.getlist("statuses"):
            flt["statuses"] = list(form.getlist("statuses"))
        for key in ("created_from", "created_to"):
            if _text(form, key):
                flt[key] = _utc(_text(form, key))
        if _list(form, "tags_any"):
            flt["tags_any"] = _list(form, "tags_any")
        if _text(form, "customer_email"):
            flt["customer_email"] = _text(form, "customer_email")
        if not flt:
            raise FormError(["choose at least one filter (a status, dates, tags or an email)"])
        body["filter"] = flt
    if _text(form, "max_concurrency"):
        body["max_concurrency"] = _text(form, "max_concurrency")
    if _text(form, "max_failure_ratio"):
        threshold: dict[str, Any] = {"max_failure_ratio": _text(form, "max_failure_ratio")}
        if _text(form, "min_processed"):
            threshold["min_processed"] = _text(form, "min_processed")
        body["failure_threshold"] = threshold
    if _text(form, "start_at"):
        body["start_at"] = _utc(_text(form, "start_at"))
    if _text(form, "max_orders_per_second"):
        body["max_orders_per_second"] = _text(form, "max_orders_per_second")
    try:
        model = BulkOperationCreate.model_validate(body)
    except ValidationError as exc:
        raise FormError([_message(e) for e in exc.errors()]) from None
    # What the confirm step posts: the validated body in JSON form (numbers as numbers, ids parsed).
    return model.model_dump(mode="json", exclude_unset=True, exclude={"dry_run"}), model


def _message(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    return f"{where}: {error.get('msg', 'not valid')}" if where else str(error.get("msg", "not valid"))
