"""Declared options of pluggable parts (pruning methods, backends).

Each plugin declares its options once; the CLI turns them into flags and the plugin reads
resolved values, so adding a method or backend never means editing the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import EdgepruneError


@dataclass(frozen=True)
class Option:
    name: str  # python name; the flag is --name-with-dashes
    default: Any
    help: str
    type: type = str  # str, int, float or bool (bool becomes a --flag/--no-flag)
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def convert(self, value: Any, owner: str) -> Any:
        if value is None:
            return self.default
        try:
            value = self.type(value) if self.type is not bool else bool(value)
        except (TypeError, ValueError):
            raise EdgepruneError(f"{self.flag} for {owner}: expected {self.type.__name__}, got {value!r}") from None
        if self.choices is not None and value not in self.choices:
            raise EdgepruneError(f"{self.flag} for {owner}: '{value}' is not one of {', '.join(self.choices)}")
        return value


def resolve(options: Iterable[Option], given: dict[str, Any], owner: str) -> dict[str, Any]:
    """Apply defaults and checks; an option given but not declared by ``owner`` is an error."""
    declared = {o.name: o for o in options}
    unknown = sorted(k for k, v in given.items() if v is not None and k not in declared)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise EdgepruneError(f"{flags} does not apply to {owner}")
    return {name: opt.convert(given.get(name), owner) for name, opt in declared.items()}


def merged(groups: Iterable[tuple[str, Iterable[Option]]]) -> list[tuple[Option, list[str]]]:
    """One entry per option name across plugins, with the plugins that declare it (for the CLI)."""
    by_name: dict[str, tuple[Option, list[str]]] = {}
    for owner, options in groups:
        for opt in options:
            if opt.name in by_name:
                first, owners = by_name[opt.name]
                if first.type is not opt.type:
                    raise TypeError(f"option {opt.name} declared with different types by {owners[0]} and {owner}")
                choices = None
                if first.choices is not None or opt.choices is not None:
                    choices = tuple(dict.fromkeys((first.choices or ()) + (opt.choices or ())))
                by_name[opt.name] = (Option(opt.name, None, first.help, first.type, choices), owners + [owner])
            else:
                by_name[opt.name] = (opt, [owner])
    return list(by_name.values())
