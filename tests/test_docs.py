"""Every setting and every command a user can type is documented in the README."""

import click

from app import cli
from kb.config import SETTINGS
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "kb") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += command_paths(command, f"{prefix} {name}")
        else:
            paths.append(f"{prefix} {name}")
    return paths


def test_every_setting_is_in_the_readme():
    assert [s.name for s in SETTINGS if f"`{s.name}`" not in README] == []


def test_every_command_is_in_the_readme():
    assert [path for path in command_paths(cli) if f"`{path}" not in README] == []
