"""Genres and release years out of MovieLens-style movie text fields."""

import pandas as pd

NO_GENRES = "(no genres listed)"
# The last "(1995)" in a title, also "(2006-2007)" of series; later "(V)"-like notes may follow.
_TITLE_YEAR = r".*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)"
_DATE_YEAR = r"(\d{4})\s*$"


def split_genres(values: pd.Series) -> list[list[str]]:
    """``Action|Comedy`` → ``["Action", "Comedy"]``; empty or "(no genres listed)" → ``[]``."""
    return [
        [] if pd.isna(text) or text.strip() in ("", NO_GENRES) else text.split("|")
        for text in values
    ]


def title_years(titles: pd.Series) -> pd.Series:
    """The release year written in a title, NA where there is none."""
    return _to_year(titles.str.extract(_TITLE_YEAR, expand=False))


def date_years(dates: pd.Series) -> pd.Series:
    """The year ending a release date such as ``01-Jan-1995``, NA where there is none."""
    return _to_year(dates.str.extract(_DATE_YEAR, expand=False))


def _to_year(digits: pd.Series) -> pd.Series:
    return pd.to_numeric(digits).astype("Int64").reset_index(drop=True)
