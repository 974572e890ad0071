"""Resuming a run: which of its stored settings differ from the current ones."""

from typing import Iterable, Mapping


def differing_keys(stored: Mapping, current: Mapping, keys: Iterable | None = None) -> list:
    """The keys (default: of either mapping) whose values in `stored` and `current` differ, sorted;
    a key one side lacks differs unless the other holds None. Compare values as the stored file
    holds them (e.g. after a JSON round trip, which turns tuples into lists)."""
    keys = set(stored) | set(current) if keys is None else set(keys)
    return sorted(key for key in keys if stored.get(key) != current.get(key))
