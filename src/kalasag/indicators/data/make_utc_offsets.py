"""Regenerate `country_utc_offsets.csv` from the IANA time-zone database (tzdata / zoneinfo).

    python src/kalasag/indicators/data/make_utc_offsets.py [/usr/share/zoneinfo]

One zone per country: the only zone of single-zone countries (IANA `zone.tab`), and for countries
with several zones the zone of the most populous area, named in PRIMARY_ZONES below. For each
zone the script writes every period of constant UTC offset between 2000-01-01 and 2036-01-01,
so daylight-saving time is handled exactly for that zone. Each row: country, zone, start_epoch
(inclusive), end_epoch (exclusive), utc_offset_seconds.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

START = int(datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp())
END = int(datetime(2036, 1, 1, tzinfo=timezone.utc).timestamp())
DAY = 86400

# Countries with several zones in zone.tab -> the zone where most of the population lives.
PRIMARY_ZONES = {
    "AQ": "Antarctica/McMurdo", "AR": "America/Argentina/Buenos_Aires", "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo", "CA": "America/Toronto", "CD": "Africa/Kinshasa",
    "CL": "America/Santiago", "CN": "Asia/Shanghai", "CY": "Asia/Nicosia", "DE": "Europe/Berlin",
    "EC": "America/Guayaquil", "ES": "Europe/Madrid", "FM": "Pacific/Chuuk", "GL": "America/Nuuk",
    "ID": "Asia/Jakarta", "KI": "Pacific/Tarawa", "KZ": "Asia/Almaty", "MH": "Pacific/Majuro",
    "MN": "Asia/Ulaanbaatar", "MX": "America/Mexico_City", "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland", "PF": "Pacific/Tahiti", "PG": "Pacific/Port_Moresby",
    "PS": "Asia/Gaza", "PT": "Europe/Lisbon", "RU": "Europe/Moscow", "UA": "Europe/Kyiv",
    "UM": "Pacific/Midway", "US": "America/New_York", "UZ": "Asia/Tashkent",
}


def _offset(zone: ZoneInfo, epoch: int) -> int:
    return int(datetime.fromtimestamp(epoch, tz=zone).utcoffset().total_seconds())


def _periods(zone_name: str) -> list[tuple[int, int, int]]:
    zone = ZoneInfo(zone_name)
    periods, start, current = [], START, _offset(zone, START)
    t = START
    while t < END:
        nxt = min(t + DAY, END)
        if nxt < END and _offset(zone, nxt) != current:
            lo, hi = t, nxt  # offset(lo) == current, offset(hi) != current: find the first changed second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(zone, mid) == current:
                    lo = mid
                else:
                    hi = mid
            periods.append((start, hi, current))
            start, current = hi, _offset(zone, hi)
        t = nxt
    periods.append((start, END, current))
    return periods


def main(zoneinfo_dir: str = "/usr/share/zoneinfo") -> None:
    zones: dict[str, str] = {}
    for line in Path(zoneinfo_dir, "zone.tab").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        country, _coords, zone = line.split("\t")[:3]
        zones.setdefault(country, zone)
    zones.update(PRIMARY_ZONES)
    out = Path(__file__).with_name("country_utc_offsets.csv")
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["country", "zone", "start_epoch", "end_epoch", "utc_offset_seconds"])
        for country in sorted(zones):
            for start, end, off in _periods(zones[country]):
                w.writerow([country, zones[country], start, end, off])
    print(f"wrote {out} ({len(zones)} countries)")


if __name__ == "__main__":
    main(*sys.argv[1:])
