"""Label CSV files as the readers of both layouts take them: every cell a string, ids cleaned."""

import pandas as pd

from vb_keras.errors import UserInputError


def read_strings(path, nrows=None) -> pd.DataFrame:
    """The CSV at `path` with every cell a string (an empty cell is "", never NaN), or a one-line
    error naming the file when it is empty, header-only (unless `nrows=0` asks for the header),
    malformed or not text."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserInputError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
    if table.empty and nrows != 0:
        # Else a later check fails without naming the file ("no labelled rows to learn classes").
        raise UserInputError(f"{path}: no rows below the header line")
    return table


def clean_ids(ids: pd.Series) -> pd.Series:
    """File ids as HUME-VB and A-VB write them ("[58712]", " 58712 ") -> "58712"."""
    return ids.str.strip().str.strip("[]")
