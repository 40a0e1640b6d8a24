"""Live-stream mode: hash frames of anything PyAV opens as they arrive; alert as soon as a window of
recent frames matches one banked video (or image).

Per banked entry we keep the last `watch_window` sampled frames' match flags; when at least
`watch_min_matches` of them matched that entry, an Alert is raised once for it. The alert carries
the media time of the first matching frame in the window and the wall-clock latency from the moment
that frame was hashed to the alert. The matcher is refreshed from the store about once a second, so
hashes added meanwhile are matched without a restart.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kalasag.media.matcher import Matcher


class FollowFile:
    """A read-only file object that waits for more bytes at end of file (`tail -f`), so PyAV can
    decode a file that is still being written (a streamable container such as MPEG-TS). Reading
    ends once the file has not grown for `idle_seconds`."""

    def __init__(self, path: str, idle_seconds: float = 5.0, poll: float = 0.1):
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.idle_seconds, self.poll = idle_seconds, poll

    def read(self, n: int = -1) -> bytes:
        waited = 0.0
        while True:
            data = self._fh.read(n)
            if data or waited >= self.idle_seconds:
                return data
            time.sleep(self.poll)
            waited += self.poll

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._fh.close()


@dataclass(frozen=True)
class Alert:
    entry: str
    list: str
    ref: str
    category: str
    first_match_time: float  # media seconds of the first matching frame in the window
    alert_time: float  # media seconds of the frame that completed the window
    matched_frames: int
    window: int
    best_distance: int
    latency_s: float  # wall-clock seconds from hashing the first matching frame to the alert

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def watch(source: str, matcher: Matcher, on_alert: Callable[[Alert], None] | None = None,
          refresh_every: float = 1.0, max_seconds: float | None = None, container=None) -> Iterator[Alert]:
    cfg = matcher.cfg
    windows: dict[int, deque] = {}
    alerted: set[int] = set()
    last_refresh = time.monotonic()
    frame_no = 0
    for qf in matcher.video_query_frames(source, container):
        now = time.monotonic()
        if matcher.store is not None and now - last_refresh >= refresh_every:
            matcher.refresh()
            last_refresh = now
        if max_seconds is not None and qf.timestamp > max_seconds:
            break
        frame_no += 1
        hit_here: dict[int, int] = {}
        if qf.quality >= cfg.min_quality:
            for res in matcher.frames.search(qf.alts):
                for fid, dist in res:
                    eid = matcher.frame_entry.get(fid)
                    if eid is not None:
                        hit_here[eid] = min(dist, hit_here.get(eid, 999))
            for res in matcher.images.search(qf.alts):
                for eid, dist in res:
                    hit_here[eid] = min(dist, hit_here.get(eid, 999))
        seen = time.monotonic()
        for eid in set(windows) | set(hit_here):
            win = windows.setdefault(eid, deque(maxlen=cfg.watch_window))
            win.append((qf.timestamp, seen, hit_here.get(eid)))
            if eid in alerted:
                continue
            matched = [w for w in win if w[2] is not None]
            if len(matched) >= cfg.watch_min_matches and eid in matcher.meta:
                r = matcher.meta[eid]
                first = matched[0]
                alert = Alert(f"{r['list']}:{r['ref']}", r["list"], r["ref"], r.get("category") or "",
                              first[0], qf.timestamp, len(matched), len(win), min(w[2] for w in matched),
                              round(time.monotonic() - first[1], 4))
                alerted.add(eid)
                if r.get("negative"):
                    continue  # a known false positive: never alert
                if on_alert:
                    on_alert(alert)
                yield alert
