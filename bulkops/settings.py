"""The one configuration object, read from the environment once per entry point and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bulkops.domain.model import (
    DEFAULT_ACTIVITY_MAX_ATTEMPTS,
    DEFAULT_ACTIVITY_TIMEOUT_S,
    DEFAULT_MAX_EVENTS_PER_RUN,
)
from bulkops.domain.people import Role


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    database_url: str | None = Field(default=None, alias="BULKOPS_DATABASE_URL")
    # `bulkops migrate` (run as the database owner) also creates or updates the application's own
    # least-privilege role, which the API and workers then connect as; it may not connect to the
    # databases listed in BULKOPS_APP_DB_DENY (comma-separated: Temporal's, in the compose stack).
    app_db_role: str | None = Field(default=None, alias="BULKOPS_APP_DB_ROLE")
    app_db_password: str | None = Field(default=None, alias="BULKOPS_APP_DB_PASSWORD")
    app_db_deny: str = Field(default="temporal,temporal_visibility", alias="BULKOPS_APP_DB_DENY")
    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    temporal_api_key: str | None = Field(default=None, alias="TEMPORAL_API_KEY")
    temporal_tls_cert: Path | None = Field(default=None, alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: Path | None = Field(default=None, alias="TEMPORAL_TLS_KEY")
    task_queue: str = Field(default="bulk-operations", alias="BULKOPS_TASK_QUEUE")
    api_host: str = Field(default="127.0.0.1", alias="BULKOPS_API_HOST")
    api_port: int = Field(default=8000, alias="BULKOPS_API_PORT")
    # Base of absolute links where there is no request to take it from (the completion webhook).
    public_api_url: str | None = Field(default=None, alias="BULKOPS_PUBLIC_API_URL")
    temporal_ui_url: str = Field(default="http://localhost:8233", alias="BULKOPS_TEMPORAL_UI_URL")
    tenant_max_running: int = Field(default=3, ge=1, alias="BULKOPS_TENANT_MAX_RUNNING")
    # Per-tenant admission limits (429 with Retry-After above them): operations created per minute,
    # operations waiting to run, and the sum of max_concurrency over operations that have not ended.
    tenant_creates_per_minute: int = Field(default=60, ge=1, alias="BULKOPS_TENANT_CREATES_PER_MINUTE")
    tenant_max_waiting: int = Field(default=100, ge=1, alias="BULKOPS_TENANT_MAX_WAITING")
    tenant_max_concurrency: int = Field(default=1000, ge=1, alias="BULKOPS_TENANT_MAX_CONCURRENCY")
    # API keys and orders a tenant may create per minute (429 with Retry-After above them).
    tenant_keys_per_minute: int = Field(default=20, ge=1, alias="BULKOPS_TENANT_KEYS_PER_MINUTE")
    tenant_orders_per_minute: int = Field(default=20_000, ge=1, alias="BULKOPS_TENANT_ORDERS_PER_MINUTE")
    # How soon a slot held by an operation that was terminated (not ended by bulkops) is reclaimed.
    tenant_slot_check_s: float = Field(default=60.0, gt=0, alias="BULKOPS_TENANT_SLOT_CHECK_S")
    # How long the API waits on Temporal to start an operation's workflow, and on a workflow to answer a
    # control (a worker must pick the update up); beyond it, or with Temporal away, it answers 503 and
    # the request may be repeated (a create with its Idempotency-Key; a control that took effect: 409).
    start_timeout_s: float = Field(default=5.0, gt=0, alias="BULKOPS_START_TIMEOUT_S")
    control_timeout_s: float = Field(default=15.0, gt=0, alias="BULKOPS_CONTROL_TIMEOUT_S")
    # How long a read waits for the workflow's live counters before it answers the row's checkpoint.
    progress_query_timeout_s: float = Field(default=2.0, gt=0, alias="BULKOPS_PROGRESS_QUERY_TIMEOUT_S")
    # Readers of one operation within this window share one progress query (one in flight, its answer
    # given again until it is this old): a workflow answers about one query per window per API process.
    progress_fresh_s: float = Field(default=0.25, ge=0, alias="BULKOPS_PROGRESS_FRESH_S")
    # Event streams: at most this many open per tenant (per API process; 429 beyond), each ended after
    # this many seconds (clients reconnect, with Last-Event-ID), a keep-alive comment this often.
    max_streams_per_tenant: int = Field(default=20, ge=1, alias="BULKOPS_MAX_STREAMS_PER_TENANT")
    stream_max_s: float = Field(default=300.0, gt=0, alias="BULKOPS_STREAM_MAX_S")
    stream_ping_s: float = Field(default=15.0, gt=0, alias="BULKOPS_STREAM_PING_S")
    # How often a worker looks for operations whose workflow was closed from outside (0: never).
    orphan_sweep_s: float = Field(default=30.0, ge=0, alias="BULKOPS_ORPHAN_SWEEP_S")

    # Retention: a Temporal Schedule (created by `bulkops temporal-setup` and `bulkops dev`) deletes
    # the targets, items and exported rows of operations that ended more than this many days ago.
    retention_days: float = Field(default=90, gt=0, alias="BULKOPS_RETENTION_DAYS")
    retention_every_hours: float = Field(default=24, gt=0, alias="BULKOPS_RETENTION_EVERY_HOURS")
    retention_batch_rows: int = Field(default=5_000, ge=1, alias="BULKOPS_RETENTION_BATCH_ROWS")

    data_dir: Path = Field(default=Path(".bulkops"), alias="BULKOPS_DATA_DIR")
    # How long the API trusts an API key it has checked: a key revoked elsewhere (another API process,
    # the CLI) stops working within this many seconds; 0 checks the database on every request.
    auth_cache_s: float = Field(default=5.0, ge=0, alias="BULKOPS_AUTH_CACHE_S")
    # API processes (`bulkops api`, `bulkops dev`, compose): uvicorn workers behind one port.
    api_workers: int = Field(default=1, ge=1, alias="BULKOPS_API_WORKERS")
    db_pool_size: int = Field(default=20, ge=1, alias="BULKOPS_DB_POOL_SIZE")
    # When set, the API's /metrics answers only `Authorization: Bearer <token>`.
    metrics_token: str | None = Field(default=None, alias="BULKOPS_METRICS_TOKEN")
    worker_metrics_port: int = Field(default=9464, alias="BULKOPS_WORKER_METRICS_PORT")
    # Loopback unless told otherwise (compose listens on the stack's private network, unpublished).
    worker_metrics_host: str = Field(default="127.0.0.1", alias="BULKOPS_WORKER_METRICS_HOST")
    # SIGTERM (a deploy, `docker stop`): the worker stops taking work and waits this long for the orders
    # and deliveries it holds; those still running are then cancelled (rolled back) and handed back to
    # Temporal, which retries them at once on another worker. Keep it below the supervisor's kill
    # timeout (compose's stop_grace_period, 30 s; `bulkops dev` waits this plus 5 s).
    worker_shutdown_s: float = Field(default=15.0, gt=0, alias="BULKOPS_WORKER_SHUTDOWN_S")
    # The Temporal SDK's own metrics (task slots, pollers, latencies), served by the SDK on their own
    # port of the worker's metrics host; 0 turns them off.
    worker_sdk_metrics_port: int = Field(default=9465, ge=0, alias="BULKOPS_WORKER_SDK_METRICS_PORT")
    # `json`: one JSON object a line (with trace, tenant, operation and workflow ids) from the API,
    # the worker and the workflows; `text` (the default) for people at a terminal.
    log_format: Literal["text", "json"] = Field(default="text", alias="BULKOPS_LOG_FORMAT")
    worker_role: Literal["all", "workflows", "activities"] = Field(default="all", alias="BULKOPS_WORKER_ROLE")
    # Activity slots; 0: as many as the order pool has connections. A task the worker holds but cannot
    # run waits in a first-come queue inside it, where neither the task queue's fairness nor other
    # workers see it; left in Temporal, it is dispatched fairly across tenants.
    max_concurrent_activities: int = Field(default=0, ge=0, alias="BULKOPS_MAX_CONCURRENT_ACTIVITIES")
    # Activities a workflow task may hand straight back to this worker (eager dispatch: no matching
    # round trip, no separate "started" write). Off by default: eager tasks skip the task queue and
    # so its fairness, and a workflow keeps the slots its activities free (README, Performance).
    eager_activities: int = Field(default=0, ge=0, alias="BULKOPS_EAGER_ACTIVITIES")
    # Continue-as-new threshold per run; tests lower it to force several runs.
    max_events_per_run: int = Field(
        default=DEFAULT_MAX_EVENTS_PER_RUN, ge=200, le=10_000, alias="BULKOPS_MAX_EVENTS_PER_RUN"
    )
    activity_max_attempts: int = Field(
        default=DEFAULT_ACTIVITY_MAX_ATTEMPTS, ge=1, alias="BULKOPS_ACTIVITY_MAX_ATTEMPTS"
    )
    # Run the per-order activity as a local activity (a marker in history, no task-queue round trip).
    local_activities: bool = Field(default=False, alias="BULKOPS_LOCAL_ACTIVITIES")
    # A per-order attempt holds one short transaction; after a worker dies its attempts are retried
    # once this expires, so it bounds how long a crash stalls the orders that were in flight.
    activity_timeout_s: float = Field(
        default=DEFAULT_ACTIVITY_TIMEOUT_S, gt=0, alias="BULKOPS_ACTIVITY_TIMEOUT_S"
    )
    # How long a workflow's next task waits for the worker that ran its last one (which has it cached)
    # before any worker may take it: after a worker dies, its workflows stall this long.
    worker_sticky_timeout_s: float = Field(default=10.0, gt=0, alias="BULKOPS_WORKER_STICKY_TIMEOUT_S")
    # A whole delivery attempt (connect, send, answer) ends within this.
    webhook_timeout_s: float = Field(default=10.0, gt=0, alias="BULKOPS_WEBHOOK_TIMEOUT_S")
    # Webhooks to loopback, private and link-local addresses (off: server-side request forgery).
    webhook_allow_private: bool = Field(default=False, alias="BULKOPS_WEBHOOK_ALLOW_PRIVATE")
    # Ports webhooks may target (comma-separated; "*": any): the web's own unless configured.
    webhook_ports: str = Field(default="80,443", pattern=r"^(\*|\d+(,\d+)*)$", alias="BULKOPS_WEBHOOK_PORTS")
    # Deliveries run on their own task queue ("<task queue>-webhooks") with their own slots, so slow
    # receivers can hold at most this many per worker and never an order's slot.
    webhook_max_concurrent: int = Field(default=20, ge=1, alias="BULKOPS_WEBHOOK_MAX_CONCURRENT")
    # Resolve webhook hosts with this name server instead of the system's resolver.
    webhook_dns_server: str | None = Field(default=None, alias="BULKOPS_WEBHOOK_DNS_SERVER")
    webhook_dns_port: int = Field(default=53, alias="BULKOPS_WEBHOOK_DNS_PORT")
    max_body_bytes: int = Field(default=2_000_000, alias="BULKOPS_MAX_BODY_BYTES")
    # Signs the operator console's session cookies and CSRF tokens. Unset: a random secret per API
    # process (sessions end when it restarts; set it when several API processes share the traffic).
    console_secret: SecretStr | None = Field(default=None, alias="BULKOPS_CONSOLE_SECRET")
    # A console session ends this long after sign-in (absolute), or after this long without a request.
    console_session_hours: float = Field(default=8.0, gt=0, alias="BULKOPS_CONSOLE_SESSION_HOURS")
    console_session_idle_minutes: float = Field(
        default=60.0, gt=0, alias="BULKOPS_CONSOLE_SESSION_IDLE_MINUTES"
    )
    # Signing in to the console with an API key (the embedded default); false leaves OpenID Connect.
    console_key_signin: bool = Field(default=True, alias="BULKOPS_CONSOLE_KEY_SIGNIN")
    # OpenID Connect sign-in to the console (README, "Signing in with your identity provider"): the
    # issuer (its /.well-known/openid-configuration is read), this app's client at it, and how a
    # verified ID token maps to a tenant (fixed, or from a claim) and a role (groups claim → role map).
    oidc_issuer: str | None = Field(default=None, alias="BULKOPS_OIDC_ISSUER")
    oidc_client_id: str | None = Field(default=None, alias="BULKOPS_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(default=None, alias="BULKOPS_OIDC_CLIENT_SECRET")
    oidc_provider_name: str | None = Field(default=None, alias="BULKOPS_OIDC_PROVIDER_NAME")
    oidc_scopes: str = Field(default="openid email profile", alias="BULKOPS_OIDC_SCOPES")
    oidc_tenant: str | None = Field(default=None, alias="BULKOPS_OIDC_TENANT")
    oidc_tenant_claim: str | None = Field(default=None, alias="BULKOPS_OIDC_TENANT_CLAIM")
    oidc_groups_claim: str = Field(default="groups", alias="BULKOPS_OIDC_GROUPS_CLAIM")
    # JSON {"<group>": "<role>"}; a person in several mapped groups gets the highest of their roles,
    # one in none is refused.
    oidc_group_roles: dict[str, Role] = Field(default_factory=dict, alias="BULKOPS_OIDC_GROUP_ROLES")
    # Ports of the embedded services `bulkops dev` starts (the API port is BULKOPS_API_PORT).
    dev_temporal_port: int = Field(default=7233, alias="BULKOPS_DEV_TEMPORAL_PORT")
    dev_ui_port: int = Field(default=8233, alias="BULKOPS_DEV_UI_PORT")
    dev_pg_port: int = Field(default=5433, alias="BULKOPS_DEV_PG_PORT")

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if not self.oidc_issuer:
            return self
        missing = [
            name
            for name, value in (
                ("BULKOPS_OIDC_CLIENT_ID", self.oidc_client_id),
                ("BULKOPS_OIDC_CLIENT_SECRET", self.oidc_client_secret),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"BULKOPS_OIDC_ISSUER is set, so {' and '.join(missing)} must be too")
        if bool(self.oidc_tenant) == bool(self.oidc_tenant_claim):
            raise ValueError(
                "BULKOPS_OIDC_ISSUER is set: set exactly one of BULKOPS_OIDC_TENANT (every person of this "
                "issuer signs in to that tenant) and BULKOPS_OIDC_TENANT_CLAIM (the ID token's claim "
                "that names the tenant)"
            )
        if not self.oidc_group_roles:
            raise ValueError(
                "BULKOPS_OIDC_ISSUER is set, so BULKOPS_OIDC_GROUP_ROLES must map at least one group to a "
                'role, e.g. {"bulkops-admins": "admin", "support": "operator"}'
            )
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def activity_slots(self) -> int:
        return self.max_concurrent_activities or self.db_pool_size

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "BULKOPS_DATABASE_URL is not set (bulkops dev starts an embedded PostgreSQL and sets it)"
            )
        return self.database_url

    @property
    def webhook_port_set(self) -> frozenset[int] | None:
        """The ports webhooks may target; None: any."""
        if self.webhook_ports.strip() == "*":
            return None
        return frozenset(int(p) for p in self.webhook_ports.split(","))

    @property
    def webhook_task_queue(self) -> str:
        return f"{self.task_queue}-webhooks"

    def api_base_url(self) -> str:
        return (self.public_api_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def operation_ui_url(self, workflow_id: str) -> str:
        base = self.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"
