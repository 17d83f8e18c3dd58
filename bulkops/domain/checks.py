"""A small expression language over an order's columns and an operation's parameters, with two
readings: Python (over a row as a dict) and SQL (SQLAlchemy Core over the `orders` columns).

Just enough for the rules: comparisons, membership, NULL tests and subtraction. Writing a rule's
refusals once in this form is what keeps the per-order decision and the dry run's count in step.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Ops = Callable[[Any, Any], Any]


class Expr:
    def py(self, order: dict[str, Any], params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def sql(self, cols: Any, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _bin(self, other: Any, op: Ops) -> Expr:
        return Binary(self, other if isinstance(other, Expr) else Lit(other), op)

    def __sub__(self, other: Any) -> Expr:
        return self._bin(other, operator.sub)

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return self._bin(other, operator.eq)

    def __lt__(self, other: Any) -> Expr:
        return self._bin(other, operator.lt)

    def __le__(self, other: Any) -> Expr:
        return self._bin(other, operator.le)

    def not_in(self, values: Sequence[Any]) -> Expr:
        return NotIn(self, tuple(values))

    __hash__ = object.__hash__


@dataclass(eq=False)
class Col(Expr):
    name: str

    def py(self, order: dict[str, Any], params: dict[str, Any]) -> Any:
        return order[self.name]

    def sql(self, cols: Any, params: dict[str, Any]) -> Any:
        return cols[self.name]


@dataclass(eq=False)
class Param(Expr):
    name: str

    def py(self, order: dict[str, Any], params: dict[str, Any]) -> Any:
        return params[self.name]

    def sql(self, cols: Any, params: dict[str, Any]) -> Any:
        return params[self.name]


@dataclass(eq=False)
class Lit(Expr):
    value: Any

    def py(self, order: dict[str, Any], params: dict[str, Any]) -> Any:
        return self.value

    def sql(self, cols: Any, params: dict[str, Any]) -> Any:
        return self.value


@dataclass(eq=False)
class Binary(Expr):
    left: Expr
    right: Expr
    op: Ops

    def py(self, order: dict[str, Any], params: dict[str, Any]) -> Any:
        return self.op(self.left.py(order, params), self.right.py(order, params))

    def sql(self, cols: Any, params: dict[str, Any]) -> Any:
        return self.op(self.left.sql(cols, params), self.right.sql(cols, params))


@dataclass(eq=False)
class NotIn(Expr):
    expr: Expr
    values: tuple[Any, ...]

    def py(self, order: dict[str, Any], params: dict[str, Any]) -> Any:
        return self.expr.py(order, params) not in self.values

    def sql(self, cols: Any, params: dict[str, Any]) -> Any:
        return self.expr.sql(cols, params).notin_(self.values)


@dataclass(eq=False)
class IsNull(Expr):
    expr: Expr

    def py(self, order: dict[str, Any], params: dict[str, Any]) -> Any:
        return self.expr.py(order, params) is None

    def sql(self, cols: Any, params: dict[str, Any]) -> Any:
        return self.expr.sql(cols, params).is_(None)


def is_null(expr: Expr) -> Expr:
    return IsNull(expr)


@dataclass(frozen=True)
class Check:
    """`code` refuses the order when `when` holds; a check that `needs` a parameter applies only when
    the operation was given it."""

    code: Any
    when: Expr
    needs: str | None = None

    def applies(self, params: dict[str, Any]) -> bool:
        return self.needs is None or params.get(self.needs) is not None
