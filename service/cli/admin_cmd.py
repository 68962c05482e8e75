"""`hwnas admin`: users and API tokens, straight on the service's database."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Users and API tokens (run where HWNAS_DATABASE_URL points).",
                  no_args_is_help=True)


def _store():
    from service.config import Settings
    from service.store import Store, make_engine, migrate

    engine = make_engine(Settings().db_url)
    migrate(engine)
    return Store(engine)


@app.command("user")
def create_user(
    name: Annotated[str, typer.Argument(help="User name (unique).")],
    admin: Annotated[bool, typer.Option("--admin", help="Mark as an administrator.")] = False,
) -> None:
    """Create a user."""
    user = _store().create_user(name, admin=admin)
    typer.echo(f"user {user.id} {user.name}")


@app.command("token")
def create_token(
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="A label, e.g. the machine using it.")] = "cli",
) -> None:
    """Create an API token for USER and print it (it is stored hashed: shown only once)."""
    from service.store import NotFoundError

    try:
        record, secret = _store().create_token(user, name)
    except NotFoundError as exc:
        raise ValueError(str(exc)) from None
    typer.echo(secret)
    typer.echo(f"token {record.id} for {record.user} ({record.name})", err=True)


@app.command("users")
def list_users() -> None:
    """List users and their tokens (ids and labels, never the secrets)."""
    store = _store()
    tokens = store.list_tokens()
    for user in store.list_users():
        own = [f"{t.id}:{t.name}{' (revoked)' if t.revoked else ''}"
               for t in tokens if t.user == user.name]
        typer.echo(f"{user.id:<4} {user.name:<20} {'admin' if user.is_admin else '':<6} "
                   f"tokens {', '.join(own) or '-'}")


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="Token id (from `users`).")]) -> None:
    """Revoke a token: requests with it answer 401 from now on."""
    from service.store import NotFoundError

    try:
        token = _store().revoke_token(token_id)
    except NotFoundError as exc:
        raise ValueError(str(exc)) from None
    typer.echo(f"revoked token {token.id} of {token.user}")
