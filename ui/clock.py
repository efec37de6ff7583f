"""Times as the site reads them: every time the app shows is in the site's zone (settings ``ui.time_zone``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import pandas as pd


def site_zone() -> ZoneInfo:
    from ui.state import container

    return ZoneInfo(container().settings.ui.time_zone)


def local_time(value: datetime | str | None, seconds: bool = False) -> str:
    """``value`` (aware, naive = UTC, or ISO text) as ``YYYY-MM-DD HH:MM`` in the site's zone; "" for none."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(site_zone()).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def day_start(day: date | None, next_day: bool = False) -> datetime | None:
    """The instant a site-zone day starts (``next_day``: the day after it, an exclusive upper bound)."""
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1) if next_day else day, time.min, tzinfo=site_zone())


def wall_clock(values: Iterable[datetime | str]) -> pd.Series:
    """Times (aware, naive = UTC, or ISO text) as naive site-zone wall-clock times: a chart draws them as they
    are, since a browser reads a naive time as its own local time, whatever its zone."""
    import pandas as pd

    times = pd.Series(pd.to_datetime(list(values), utc=True, format="ISO8601"))
    return times.dt.tz_convert(site_zone()).dt.tz_localize(None)
