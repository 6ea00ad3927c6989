"""What every settings dataclass shares: built back from the plain dict a component receives."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

Settings = TypeVar("Settings")


def from_dict(cls: type[Settings], values: Mapping[str, Any], section: str) -> Settings:
    """``cls(**values)``, refusing keys ``cls`` does not have (ValueError naming them and ``section``)."""
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {section} setting(s): {', '.join(unknown)}")
    return cls(**dict(values))
