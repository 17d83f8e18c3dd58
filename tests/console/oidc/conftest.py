"""A real OpenID provider for the session (panva's oidc-provider on Node.js, tests/console/oidc/provider/),
and harnesses whose app signs in through an issuer.

The provider listens on a free loopback port under the name `localhost`, while the console is served
at 127.0.0.1: two sites, as an identity provider and the console are in production, so the browser
applies its cross-site cookie rules to the redirects between them. Its client's redirect URI names
the one port every test of this folder serves its console on (`OidcProvider.app_port`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from bulkops.devstack.postgres import free_port
from tests.harness import Harness, Stack, stack_settings

PROVIDER_DIR = Path(__file__).parent / "provider"
NODE = os.environ.get("BULKOPS_NODE", "node")
CLIENT_ID = "bulkops-console"
CLIENT_SECRET = "a-test-client-secret-of-some-length"
PROVIDER_NAME = "Test IdP"
# The role map every test's app uses (BULKOPS_OIDC_GROUP_ROLES).
GROUP_ROLES = {"ops-viewers": "viewer", "support": "operator", "leads": "approver", "bulkops-admins": "admin"}


@dataclass
class OidcProvider:
    issuer: str
    app_port: int
    accounts_file: Path
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.app_port}/console/auth/callback"

    def add_account(self, login: str, groups: list[str], **claims: Any) -> str:
        """An account the provider's login page accepts (with any password); returns its login."""
        self.accounts[login] = {
            "email": f"{login}@example.com",
            "name": login.title(),
            "groups": groups,
            **claims,
        }
        self.accounts_file.write_text(json.dumps(self.accounts))
        return login


def _npm_ci() -> None:
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    if shutil.which("npm") is None:
        pytest.fail("the OpenID provider's tests need Node.js and npm: apt-get install -y nodejs npm")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PROVIDER_DIR, check=True)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    _npm_ci()
    port, app_port = free_port(), free_port()
    root = Path(tempfile.mkdtemp(prefix="bulkops-oidc-"))
    provider = OidcProvider(f"http://localhost:{port}", app_port, root / "accounts.json")
    provider.accounts_file.write_text("{}")
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_ISSUER": provider.issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": provider.redirect_uri,
        "OIDC_ACCOUNTS_FILE": str(provider.accounts_file),
    }
    log = (root / "provider.log").open("w")
    process = subprocess.Popen(
        [NODE, "provider.js"], cwd=PROVIDER_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"the OpenID provider exited: {(root / 'provider.log').read_text()}")
            try:
                if httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the OpenID provider did not start: {(root / 'provider.log').read_text()}")
            time.sleep(0.1)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


OidcApp = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def oidc_app(stack: Stack, client: Client) -> OidcApp:
    """`async with oidc_app(issuer, **settings) as harness`: a harness whose app signs in through
    `issuer`, to whichever tenant `harness.configure(oidc_tenant=…)` names."""

    @contextlib.asynccontextmanager
    async def open_app(issuer: str, **overrides: Any) -> AsyncIterator[Harness]:
        settings = stack_settings(
            stack,
            BULKOPS_AUTH_CACHE_S=0,
            BULKOPS_PROGRESS_FRESH_S=0,
            BULKOPS_OIDC_ISSUER=issuer,
            BULKOPS_OIDC_CLIENT_ID=CLIENT_ID,
            BULKOPS_OIDC_CLIENT_SECRET=CLIENT_SECRET,
            BULKOPS_OIDC_PROVIDER_NAME=PROVIDER_NAME,
            BULKOPS_OIDC_SCOPES="openid email profile groups",
            # Replaced by the test's own tenant once it exists.
            BULKOPS_OIDC_TENANT="none-yet",
            BULKOPS_OIDC_GROUP_ROLES=GROUP_ROLES,
            **overrides,
        )
        async with Harness.open(stack, client, settings) as harness:
            yield harness

    return open_app
