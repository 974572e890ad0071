"""Resuming a run: which of its stored settings differ from the current ones."""

from typing import Iterable, Mapping

from vb_keras.errors import UserInputError


def differing_keys(stored: Mapping, current: Mapping, keys: Iterable | None = None) -> list:
    """The keys (default: of either mapping) whose values in `stored` and `current` differ, sorted;
    a key one side lacks differs unless the other holds None. Compare values as the stored file
    holds them (e.g. after a JSON round trip, which turns tuples into lists)."""
    keys = set(stored) | set(current) if keys is None else set(keys)
    return sorted(key for key in keys if stored.get(key) != current.get(key))


def refuse_other_settings(flag: str, directory, changed) -> None:
    """The one refusal of a rerun whose settings differ (`changed`, their names) from those of the
    unfinished run in `directory`, given as `flag`."""
    if changed:
        raise UserInputError(f"{flag}: {directory} holds an unfinished run with other settings "
                             f"({', '.join(changed)}); resume it with the same flags or pick "
                             f"another {flag}")
