"""`hyperalign serve`, `hyperalign keys …`, `hyperalign db upgrade`: the personalization service from the command line.
The service's modules (FastAPI, uvicorn, limits) are the `[serve]` extra, imported only by these commands."""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import InputError
from ..io import check_name
from ..redaction import redact_url, validate_base_url
from ..service.tables import open_service_store
from .common import app, cli_command, echo, say, settings
from .profiles import Store

if TYPE_CHECKING:
    from ..service.state import ServiceConfig

SERVE_INSTALL_HINT = "pip install 'hyperalign[serve]'"

keys_app = typer.Typer(help="API keys of the service's tenants (each key sees only its tenant's users).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")
db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def require_serve_stack() -> None:
    missing = [name for name in ("fastapi", "uvicorn", "limits") if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"the service needs the serve extra ({', '.join(missing)} missing): {SERVE_INSTALL_HINT}")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    store: Store = None,
    upstream_base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint the chat requests go to (default: the configured backend, e.g. the embedded model).")] = None,
    upstream_model: Annotated[Optional[str], typer.Option(help="Send every chat request to this model, whatever the client names.")] = None,
    upstream_api_key: Annotated[Optional[str], typer.Option(help="Key for the upstream (default: $HYPERALIGN_UPSTREAM_API_KEY).", show_default=False)] = None,
    rate_limit: Annotated[str, typer.Option(help="Per API key, e.g. '600/minute' or '10/second;600/minute'.")] = "600/minute",
    max_request_bytes: Annotated[int, typer.Option(min=1000)] = 2_000_000,
    cors_origin: Annotated[Optional[list[str]], typer.Option(help="Allow browsers on this origin (repeatable; default: none).")] = None,
    no_jobs: Annotated[bool, typer.Option("--no-jobs/", help="Serve requests only; another replica runs the background jobs.")] = False,
    job_lease_seconds: Annotated[float, typer.Option(min=0.5, help="A running job's lease: a job whose server died is taken up again this long after its last renewal.")] = 60.0,
    access_log: Annotated[bool, typer.Option("--access-log/", help="Log every request (uvicorn's access log; costs ~6% of the service's CPU).")] = False,
    workers: Annotated[int, typer.Option(min=1, max=256, help="Worker processes (one core each); they share the database, its jobs and nothing else.")] = 1,
    public_url: Annotated[Optional[str], typer.Option(help="Where people reach the service, e.g. https://profiles.example.com: review links are built on it (default: http://HOST:PORT).")] = None,
    review_link_days: Annotated[float, typer.Option(help="How long a review link opens its page.")] = 7.0,
    idempotency_hours: Annotated[float, typer.Option(help="How long a POST's answer is replayed to a retry with the same Idempotency-Key.")] = 24.0,
    user_rate_limit: Annotated[Optional[str], typer.Option(help="Chat requests per end user, e.g. '60/minute' (default: no limit).")] = None,
    user_tokens_per_day: Annotated[Optional[int], typer.Option(help="Chat tokens per end user per UTC day (default: no budget).")] = None,
    population_texts: Annotated[int, typer.Option(min=0, max=10_000, help="Compare each profile with this many of the latest texts of the tenant's other users, as aggregates only, e.g. 400 (default 0: with the model's default voice alone).")] = 0,
    population_min_users: Annotated[int, typer.Option(min=2, max=10_000, help="The fewest other users of the tenant that make a population.")] = 5,
    tracing: Annotated[bool, typer.Option("--tracing/", help="OpenTelemetry traces to OTLP (OTEL_EXPORTER_OTLP_* variables; needs the otel extra; also HYPERALIGN_TRACING=1).")] = False,
) -> None:
    """Run the personalization service (OpenAI-compatible chat endpoint + profiles API + review page)."""
    require_serve_stack()
    import uvicorn

    config = _service_config(rate_limit=rate_limit, max_request_bytes=max_request_bytes,
                             cors_origins=cors_origin or [], run_jobs=not no_jobs, job_lease_seconds=job_lease_seconds,
                             public_url=public_url, review_link_days=review_link_days,
                             idempotency_hours=idempotency_hours, user_rate_limit=user_rate_limit,
                             user_tokens_per_day=user_tokens_per_day, population_texts=population_texts,
                             population_min_users=population_min_users, tracing=tracing)
    _check_upstream(upstream_base_url, upstream_api_key or os.environ.get("HYPERALIGN_UPSTREAM_API_KEY"),
                    upstream_model)
    _check_address(host, port)

    from ..service.app import SPEC_VARIABLE, ServeSpec, build_app

    if upstream_api_key:
        os.environ["HYPERALIGN_UPSTREAM_API_KEY"] = upstream_api_key
    resolved = settings()
    if notice := resolved.file_notice():
        say(notice)
    if resolved.api_key:  # the workers read it from their environment, never from the spec
        os.environ["HYPERALIGN_API_KEY"] = resolved.api_key
    spec = ServeSpec(settings=resolved.model_dump(mode="json", exclude={"api_key"}), store=store, config=config,
                     upstream_base_url=upstream_base_url, upstream_model=upstream_model)
    app = build_app(spec)  # built here first, so that bad settings or an unusable store fail before serving
    state = app.state.service
    say(f"hyperalign service on http://{host}:{port} (docs: /docs) · store {redact_url(state.store.display_url)} · "
        f"upstream {state.upstream.description} · {workers} worker{'s' if workers > 1 else ''}")
    if workers > 1:
        os.environ[SPEC_VARIABLE] = spec.model_dump_json()
    uvicorn.run(app if workers == 1 else "hyperalign.service.app:app_from_environment", factory=workers > 1,
                workers=workers, host=host, port=port, log_level="info", access_log=access_log, proxy_headers=False)


cli_command(serve)


# The option each setting of the service's configuration comes from, to name it in an error.
_OPTIONS = {"rate_limit": "--rate-limit", "max_request_bytes": "--max-request-bytes", "cors_origins": "--cors-origin",
            "job_lease_seconds": "--job-lease-seconds", "public_url": "--public-url",
            "review_link_days": "--review-link-days", "idempotency_hours": "--idempotency-hours",
            "user_rate_limit": "--user-rate-limit", "user_tokens_per_day": "--user-tokens-per-day",
            "population_texts": "--population-texts", "population_min_users": "--population-min-users"}


def _service_config(**values: Any) -> ServiceConfig:
    """The service's configuration, or one line naming the option at fault (exit 2) — never pydantic's report."""
    from pydantic import ValidationError

    from ..service.state import ServiceConfig

    try:
        return ServiceConfig(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        option = _OPTIONS.get(str(first["loc"][0]) if first["loc"] else "", "an option")
        raise InputError(f"{option}: {first['msg'].removeprefix('Value error, ')}") from None


def _check_upstream(base_url: str | None, api_key: str | None, model: str | None) -> None:
    """The upstream's URL must be http(s) with a host; its key and model go into HTTP headers and bodies, so no
    control character or space may hide in them."""
    if base_url is not None:
        try:
            validate_base_url(base_url)
        except (ValueError, InputError) as exc:
            raise InputError(f"--upstream-base-url: {exc}") from None
    if api_key is not None and (not api_key.strip() or any(c.isspace() or not c.isprintable() for c in api_key)):
        raise InputError("--upstream-api-key (or HYPERALIGN_UPSTREAM_API_KEY): a key is one word of printable "
                         "characters, without spaces or line breaks")
    if model is not None:
        check_name(model, "--upstream-model")


def _check_address(host: str, port: int) -> None:
    """An address the service cannot listen on is bad input (exit 2), said before any work, not uvicorn's exit 1."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise InputError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to (created if new).")],
    name: Annotated[Optional[str], typer.Option(help="What the key is for.")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="A new tenant's default personalization: hyperalign, hyperalign:no-facts, few-shot, none (an existing tenant's: `keys strategy`).")] = None,
    store: Store = None,
) -> None:
    """Create a key; it is shown once, here, and kept only hashed."""
    from ..service.tenants import create_key

    with open_service_store(store) as database:
        key, info = create_key(database, tenant, name=name, strategy=strategy)
    echo(key)
    say(f"Key {info.id} for tenant {tenant!r}: shown once, keep it now.")


@keys_app.command("list")
def keys_list(store: Store = None) -> None:
    """Every key: id, tenant, name, created, revoked."""
    from ..service.tenants import list_keys

    with open_service_store(store) as database:
        for key in list_keys(database):
            revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            echo(f"{key.id}\t{key.tenant}\t{key.name or '-'}\t{key.created_at:%Y-%m-%d %H:%M}\t{revoked}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(metavar="KEY_ID")], store: Store = None) -> None:
    """Revoke a key at once: its next request is answered 401."""
    from ..service.tenants import revoke_key

    with open_service_store(store) as database:
        revoke_key(database, key_id)
    say(f"Revoked key {key_id}.")


@keys_app.command("strategy")
def keys_strategy(tenant: Annotated[str, typer.Argument(metavar="TENANT")],
                  strategy: Annotated[str, typer.Argument(metavar="STRATEGY")], store: Store = None) -> None:
    """Set a tenant's default personalization (a request may still choose with X-Hyperalign-Strategy)."""
    from ..service.tenants import set_strategy

    with open_service_store(store) as database:
        set_strategy(database, tenant, strategy)
    say(f"Tenant {tenant!r}: strategy {strategy}.")


@db_app.command("upgrade")
def db_upgrade(store: Store = None) -> None:
    """Bring the database's schema to this version's (the alembic migrations; opening a store also does this)."""
    with open_service_store(store) as database:
        chains = database.applied_by_chain()
    heads = " and ".join(f"{names[-1]} ({package.removeprefix('hyperalign.')})" for package, names in chains.items())
    say(f"{redact_url(database.display_url)}: at {heads}; {sum(map(len, chains.values()))} migrations applied")
