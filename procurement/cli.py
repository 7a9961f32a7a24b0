"""The `localvalue` command: the composition root of the command line.

Litestar's own CLI gives `database ...`; `run` is ours (procurement.serving: workers, graceful shutdown); each
capability adds its commands here and nowhere else.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
from litestar.plugins import CLIPluginProtocol

HELP = """Local Value: local-procurement and social-value figures for health and care anchor institutions.

\b
Set DATABASE_URL to choose the database (default: localvalue.db here).
Start with `localvalue database upgrade`, `localvalue seed anchors`, then `localvalue run`.
"""

try:  # the look of Litestar's own group (it uses rich-click when installed)
    from rich_click import RichGroup as _Group
except ImportError:  # pragma: no cover
    from click import Group as _Group  # type: ignore[assignment]

_CONTEXT = {"help_option_names": ["-h", "--help"]}

# Framework commands a user of this service never needs; they stay callable by name for maintainers.
_HIDDEN = ("assets", "routes", "schema", "sessions", "version", "info")
# Commands that destroy data: hidden, and refused unless --yes is given.
_DESTRUCTIVE = ("drop-all",)


def _seed_group() -> click.Group:
    from procurement.metrics.cli import seed_measures_command
    from procurement.organisations.cli import seed_anchors_command, seed_groups_command
    from procurement.suppliers import tiers  # noqa: F401 - keeps stored tiers in step when seeding moves an area

    group = click.Group(name="seed", help="Load the reference data shipped with the package (idempotent).")
    for command in (seed_anchors_command, seed_measures_command, seed_groups_command):
        group.add_command(command)
    return group


def _guard_destructive() -> None:
    # The SQLAlchemy plugin adds this group after us, so it is changed where it is defined.
    from advanced_alchemy.extensions.litestar.cli import database_group as database

    database.help = "Migrate the database: `upgrade` to the latest schema, `downgrade`, `history`, `check`."
    for name in _DESTRUCTIVE:
        command = database.commands.get(name)
        if command is None or command.callback is None:
            continue
        command.hidden = True
        command.params.append(click.Option(["--yes"], is_flag=True, help="Confirm that every table is to be lost."))
        original = command.callback

        def guarded(*args: Any, yes: bool, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            if not yes:
                raise click.ClickException(f"`database {_name}` deletes every table and all data; add --yes to do it")
            return _original(*args, **kwargs)

        command.callback = guarded
    _guard_downgrade(database)


def _guard_downgrade(database: click.Group) -> None:
    """`database downgrade` refuses (one line) to delete published statements unless given --force."""
    command = database.commands.get("downgrade")
    if command is None or command.callback is None:
        return
    command.params.append(
        click.Option(["--force"], is_flag=True, help="Go down even where that deletes published statements.")
    )
    original = command.callback

    def guarded(*args: Any, force: bool, **kwargs: Any) -> Any:
        from procurement.errors import DomainError

        if force:
            os.environ["LOCALVALUE_MIGRATION_FORCE"] = "1"  # read by the migration itself, in this process
        try:
            return original(*args, **kwargs)
        except DomainError as exc:
            click.echo(f"Error: {exc.detail}", err=True)
            sys.exit(1)

    command.callback = guarded


def _attribute(module: str, name: str) -> click.Command:
    import importlib

    command: click.Command = getattr(importlib.import_module(module), name)
    return command


def _import_group() -> click.Command:
    from procurement.imports.cli import import_group
    from procurement.spend.cli import import_spend_command

    import_group.add_command(import_spend_command)
    return import_group


# Every command of the product itself, one per capability (Litestar adds `database` and its own), by name: a
# command's module (and what it imports) is loaded only when that command runs, or when the whole list is shown.
_OWN: dict[str, Callable[[], click.Command]] = {
    "import": _import_group,
    "classify": lambda: _attribute("procurement.suppliers.cli", "classify_group"),
    "registers": lambda: _attribute("procurement.suppliers.cli", "registers_group"),
    "metrics": lambda: _attribute("procurement.metrics.cli", "metrics_command"),
    "statements": lambda: _attribute("procurement.statements.cli", "statements_group"),
    "spend": lambda: _attribute("procurement.spend.cli", "spend_group"),
    "seed": _seed_group,
    "tokens": lambda: _attribute("procurement.accounts.cli", "tokens_group"),
    "users": lambda: _attribute("procurement.accounts.cli", "users_group"),
    "geo": lambda: _attribute("procurement.suppliers.cli", "geo_group"),
    "backup": lambda: _attribute("procurement.backups.cli", "backup_command"),
    "restore": lambda: _attribute("procurement.backups.cli", "restore_command"),
    "uploads": lambda: _attribute("procurement.procure.cli", "uploads_group"),
    "run": lambda: _attribute("procurement.serving", "run_command"),  # replaces Litestar's own `run`
}


def own_commands() -> list[click.Command]:
    """Every command of the product itself (each loaded)."""
    return [load() for load in _OWN.values()]


class LocalValueCLIPlugin(CLIPluginProtocol):
    def on_cli_init(self, cli: click.Group) -> None:
        cli.help = HELP
        for command in own_commands():
            cli.add_command(command)
        for name in _HIDDEN:
            if name in cli.commands:
                cli.commands[name].hidden = True
        _guard_destructive()
        _full_short_help(cli)


def _database_group() -> click.Group:
    from advanced_alchemy.extensions.litestar.cli import database_group
    from litestar.cli._utils import LitestarGroup  # hands each command the context it asks for, as there

    _guard_destructive()
    group = LitestarGroup(name="localvalue", help=HELP, context_settings=_CONTEXT)
    group.add_command(database_group)  # type: ignore[arg-type] # a click group, as Litestar adds it
    _full_short_help(group)
    return group


def _migrations_env() -> Any:
    """What the migration commands read from Litestar's CLI: an app holding only the database plugin."""
    from types import SimpleNamespace

    from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
    from litestar import Litestar

    from procurement.db import get_alchemy_config

    # Migration progress straight to stderr, in the format Litestar's logging uses, but written as it happens:
    # Litestar's own logging goes through a background thread, whose lines could come after a refusal's
    # one-line error (the last thing a refused downgrade must print).
    logging.basicConfig(level=logging.INFO, format="%(levelname)s - %(asctime)s - %(name)s - %(module)s - %(message)s")
    app = Litestar(plugins=[SQLAlchemyPlugin(config=get_alchemy_config())], logging_config=None)
    return SimpleNamespace(app=app)


def _full_short_help(group: click.Group) -> None:
    """Command lists show each command's whole first sentence, not click's 45-character cut."""
    for command in group.commands.values():
        if command.short_help is None and command.help:
            first = command.help.strip().split("\n\n")[0].replace("\n", " ")
            command.short_help = first.split(". ")[0].rstrip(".")
        if isinstance(command, click.Group):
            _full_short_help(command)


def _path(group: click.Group, args: list[str]) -> str:
    """The command a usage error belongs to, from the words typed (click reports an option's missing value
    against the top group)."""
    path: list[str] = ["localvalue"]
    command: click.Command = group
    for arg in args:
        found = command.commands.get(arg) if isinstance(command, click.Group) else None
        if found is None:
            break
        path.append(arg)
        command = found
    return " ".join(path)


def _run(group: click.Group, args: list[str], **extra: Any) -> NoReturn:
    """Click (rich-click here) shows a usage error as a box of several lines; this prints one line saying what is
    wrong and where the help is, with click's exit codes (2 for usage, 1 otherwise)."""
    try:
        code = group.main(args=args, prog_name="localvalue", standalone_mode=False, **extra)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None and exc.ctx.parent is not None else _path(group, args)
        said = exc.format_message().rstrip()
        click.echo(f"Error: {said}{'' if said.endswith(('.', '?', '!')) else '.'} See `{where} --help`.", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else list(argv)
    os.environ.setdefault("LITESTAR_APP", "procurement.app:create_app")
    # The product's own commands need no web app, and building it (routes, OpenAPI) is over half of a command's
    # start-up: each runs from a group of its own, holding only that command (the others' modules are not even
    # imported: about a second of a light command's start-up). `database` runs from a group with only the migration
    # plugin's app; the framework's commands go through Litestar's group, which builds the app to find its plugins'
    # commands.
    if args and not args[0].startswith("-"):
        if args[0] in _OWN:
            command = _OWN[args[0]]()
            group = _Group(name="localvalue", help=HELP, commands=[command], context_settings=_CONTEXT)
            _full_short_help(group)
            _run(group, args)
        if args[0] in ("database", "db"):
            _run(_database_group(), args, obj=_migrations_env())
    if not args or args[0] in _CONTEXT["help_option_names"]:
        # The list of commands, without the app: Litestar's group builds it to find its plugins' commands (seconds).
        listing = _database_group()
        for command in own_commands():
            listing.add_command(command)
        _full_short_help(listing)
        _run(listing, args)
    from litestar.cli.main import litestar_group

    _run(litestar_group, args)
