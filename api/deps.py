"""Request dependencies, as `Annotated` aliases. Everything comes from the app's lifespan state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from api.session import COOKIE, CSRF_HEADER, SAFE_METHODS, sessions, signed_in
from bulkops.domain.people import Role
from bulkops.infra.tracing import tag_current
from bulkops.service.auth import Principal
from bulkops.service.container import Services
from bulkops.service.controls import ControlService
from bulkops.service.operations import OperationService
from bulkops.service.orders import OrderService
from bulkops.service.people import PeopleService
from bulkops.settings import Settings

# A security scheme, not a header parameter: /docs gets its Authorize button and generated clients
# take the token once (`AuthenticatedClient(token=…)`). auto_error=False: our 401 is problem+json.
bearer = HTTPBearer(auto_error=False, description="a tenant API key (`bko_…`)")


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return _services(request).settings


def _operations(request: Request) -> OperationService:
    return _services(request).operations


def _orders(request: Request) -> OrderService:
    return _services(request).orders


async def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Principal:
    if credentials is None and COOKIE in request.cookies:
        return await _console_principal(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "send Authorization: Bearer <api key>")
    principal = await _services(request).authenticate(credentials.credentials.strip())
    if principal is None:
        raise Problem(401, "the API key is not valid")
    tag_current({"tenant_id": principal.tenant_id})
    return principal


async def _console_principal(request: Request) -> Principal:
    """The operator console calls this API with its session cookie instead of a bearer key: the same
    routes, roles and rules. A cookie is sent by the browser on its own, so anything but a read also
    needs the session's CSRF token in a header."""
    found = await signed_in(request)
    if found is None:
        raise Problem(401, "the console session has ended; sign in again")
    session, principal = found
    tag_current({"tenant_id": principal.tenant_id})
    if request.method not in SAFE_METHODS and not sessions(request).csrf_ok(
        session, request.headers.get(CSRF_HEADER)
    ):
        raise Problem(403, f"this console request needs the session's CSRF token ({CSRF_HEADER})")
    return principal


def require_role(required: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets through keys of `required`'s role or above (403 problem+json for the
    rest). Every route names its role through one of the aliases below: the one place roles are checked."""

    def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if not principal.may(required):
            raise Problem(
                403,
                f"this needs an API key with role {required.value} or above "
                f"(this key's role: {principal.role.value})",
            )
        return principal

    return check


def _controls(request: Request) -> ControlService:
    return _services(request).controls


def _people(request: Request) -> PeopleService:
    return _services(request).people


def _base_url(request: Request) -> str:
    """Links' base: the configured public URL (BULKOPS_PUBLIC_API_URL), never the request's `Host`
    header, which the client chooses (and so would choose where other readers' links point)."""
    return _settings(request).api_base_url()


ServicesDep = Annotated[Services, Depends(_services)]
SettingsDep = Annotated[Settings, Depends(_settings)]
OperationsDep = Annotated[OperationService, Depends(_operations)]
OrdersDep = Annotated[OrderService, Depends(_orders)]
ControlsDep = Annotated[ControlService, Depends(_controls)]
PeopleDep = Annotated[PeopleService, Depends(_people)]
# Reads need any valid key; the others a role (viewer < operator < approver < admin).
PrincipalDep = Annotated[Principal, Depends(_principal)]
OperatorDep = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
ApproverDep = Annotated[Principal, Depends(require_role(Role.APPROVER))]
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]
BaseUrlDep = Annotated[str, Depends(_base_url)]
# Create, retry and revert: the same key with the same request is the same operation.
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
