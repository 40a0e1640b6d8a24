"""`kalasag media …`: hash files, match them against hash lists, manage lists, watch a stream.

Stores and prints hashes and metadata only — never pixels. Errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import csv
import functools
import json
import sys
from pathlib import Path
from typing import Any

import typer

from kalasag.media import (
    MediaError, MediaStore, Matcher, banked_hashes, detect_kind, hash_image, hash_video, load_media_config, load_rgb,
    read_list, watch,
)

app = typer.Typer(help="Known-material matching: PDQ image and vPDQ video hashes against hash lists.",
                  no_args_is_help=True)
lists_app = typer.Typer(help="Versioned hash lists in the state directory (add, withdraw, show).", no_args_is_help=True)
app.add_typer(lists_app, name="lists")

HASH_COLUMNS = ["path", "kind", "pdq_hex", "quality", "md5", "sha256", "timestamp"]
MATCH_COLUMNS = ["path", "matched", "entry", "distance", "variant"]
StateOpt = typer.Option(None, "--state", help="State directory (default $KALASAG_STATE or ~/.kalasag).")
ConfigOpt = typer.Option(None, "--config", help="TOML file whose [media] table overrides the defaults.")


def _fail(msg: str) -> None:
    typer.echo(f"error: {' '.join(str(msg).split())}", err=True)
    raise typer.Exit(code=2)


def guarded(func):
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except (MediaError, OSError) as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            raise typer.Exit(code=130) from None
    return wrapper


def _progress(paths: list[Path], quiet: bool, label: str):
    """A rich progress bar on stderr for interactive runs over many files (never in pipes or --quiet)."""
    if quiet or len(paths) < 5 or not sys.stderr.isatty():
        return paths
    from rich.console import Console
    from rich.progress import track

    return track(paths, description=label, console=Console(stderr=True), transient=True)


def _check_format(fmt: str) -> None:
    if fmt not in ("csv", "json"):
        _fail(f"unknown --format {fmt!r} (expected csv or json)")


def _rows_out(rows: list[dict], columns: list[str], fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=1, default=str))
        return
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r[c] for c in columns])
    sys.stdout.flush()


@app.command("hash")
@guarded
def hash_cmd(
    paths: list[Path] = typer.Argument(..., help="Image or video files."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    fps: float = typer.Option(None, "--fps", help="Video frames sampled per second (default from config: 1)."),
    bank: bool = typer.Option(False, "--bank-variants", help="Also print each image's bank variants and regions "
                              "(extra rows with a `variant` column) for a list that Kalasag matches more robustly."),
    config: Path = ConfigOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Print `path,kind,pdq_hex,quality,md5,sha256,timestamp`: one row per image, one per sampled video frame.

    Example: [bold]kalasag media hash photos/*.jpg clip.mp4 --format csv[/bold]
    """
    _check_format(fmt)
    cfg = load_media_config(config, video_fps=fps)
    if bank:
        cfg = cfg.model_copy(update={"bank_variants": True})
    rows: list[dict] = []
    for p in _progress(paths, quiet, "hashing"):
        if detect_kind(p) == "image":
            h = hash_image(p)
            base = {"path": str(p), "kind": "image", "md5": h.md5, "sha256": h.sha256, "timestamp": None}
            rows.append({**base, "pdq_hex": h.pdq_hex, "quality": h.quality, "variant": "original" if bank else None,
                         "low_quality": h.quality < cfg.min_quality, "width": h.width, "height": h.height})
            if bank:
                rows += [{**base, "pdq_hex": v.hex(), "quality": q, "variant": name, "low_quality": q < cfg.min_quality}
                         for name, v, q in banked_hashes(load_rgb(p), cfg)]
        else:
            v = hash_video(p, cfg.video_fps)
            for f in v.frames:
                rows.append({"path": str(p), "kind": "video", "pdq_hex": f.pdq_hex, "quality": f.quality,
                             "md5": v.md5, "sha256": v.sha256, "timestamp": f"{f.timestamp:.3f}",
                             "low_quality": f.quality < cfg.min_quality, "frame_number": f.frame_number})
    _rows_out(rows, HASH_COLUMNS + (["variant"] if bank else []), fmt)


def _matcher(list_file: Path | None, list_format: str, state: Path | None, cfg) -> Matcher:
    if list_file is not None:
        return Matcher.from_list_file(list_file, cfg, list_format)
    store = MediaStore(state)
    if not store.lists():
        raise MediaError(f"no hash lists in {store.state_dir}; give --list FILE or import one with `lists import`")
    return Matcher.from_store(store, cfg)


@app.command("match")
@guarded
def match_cmd(
    paths: list[Path] = typer.Argument(..., help="Image or video files to check."),
    list_file: Path = typer.Option(None, "--list", help="Match against this list file directly (no import)."),
    list_format: str = typer.Option("auto", "--list-format", help="auto, hex, csv or te."),
    state: Path = StateOpt,
    fmt: str = typer.Option("csv", "--format", help="csv (one row per file) or json (every hit)."),
    distance: int = typer.Option(None, "--distance", help="PDQ match distance (default from config: 31)."),
    config: Path = ConfigOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Print `path,matched,entry,distance,variant`, one row per file (the best hit).

    Example: [bold]kalasag media match photos/*.jpg --list hashes.csv --format csv[/bold]
    """
    _check_format(fmt)
    cfg = load_media_config(config, match_distance=distance)
    m = _matcher(list_file, list_format, state, cfg)
    results = [m.match_file(p) for p in _progress(paths, quiet, "matching")]
    if fmt == "json":
        typer.echo(json.dumps([r.as_dict() for r in results], indent=1, default=str))
        return
    rows = []
    for r in results:
        b = r.best
        variant = b.variant if b else ("low_quality" if r.low_quality else "")
        rows.append({"path": r.path, "matched": "true" if r.matched else "false", "entry": b.entry if b else "",
                     "distance": b.distance if b else "", "variant": variant})
    _rows_out(rows, MATCH_COLUMNS, fmt)


@app.command("watch")
@guarded
def watch_cmd(
    source: str = typer.Argument(..., help="A stream URL or file PyAV can open."),
    list_file: Path = typer.Option(None, "--list", help="Match against this list file (no import)."),
    state: Path = StateOpt,
    fps: float = typer.Option(None, "--fps", help="Frames hashed per second (default video_query_fps)."),
    max_seconds: float = typer.Option(None, "--max-seconds", help="Stop after this much media time."),
    follow: bool = typer.Option(False, "--follow", help="SOURCE is a file still being written (e.g. MPEG-TS): "
                                "wait for new data; stop after --idle seconds without growth."),
    idle: float = typer.Option(5.0, "--idle", help="With --follow: seconds without growth that end the watch."),
    config: Path = ConfigOpt,
) -> None:
    """Hash frames as they arrive and print one JSON line per alert (entry, media times, latency).

    Example: [bold]kalasag media watch stream.ts --follow --state ~/.kalasag[/bold]
    """
    cfg = load_media_config(config, video_query_fps=fps)
    m = _matcher(list_file, "auto", state, cfg)
    if not source.startswith(("rtmp:", "rtsp:", "http:", "https:", "udp:", "tcp:", "srt:")) and not Path(source).exists():
        raise MediaError(f"{source}: no such file or stream")
    n = 0
    container = None
    if follow:
        import av

        from kalasag.media.watch import FollowFile

        try:
            container = av.open(FollowFile(source, idle_seconds=idle), mode="r")
        except av.error.FFmpegError as exc:
            raise MediaError(f"{source}: cannot open for --follow ({exc}); use a streamable container such as MPEG-TS") from None
    try:
        for alert in watch(source, m, max_seconds=max_seconds, container=container):
            n += 1
            typer.echo(json.dumps(alert.as_dict()))
    finally:
        if container is not None:
            container.close()
    typer.echo(f"watch finished: {n} alert(s)", err=True)


@lists_app.command("import")
@guarded
def lists_import(
    file: Path = typer.Argument(..., help="Hash list: plain hex, CSV with pdq_hex, or ThreatExchange/HMA export."),
    name: str = typer.Option(..., "--name", help="List name."),
    list_format: str = typer.Option("auto", "--format", help="auto, hex, csv or te."),
    negative: bool = typer.Option(False, "--negative", help="A list of known false positives (suppresses matches)."),
    category: str = typer.Option("", "--category"),
    source: str = typer.Option("", "--source"),
    state: Path = StateOpt,
) -> None:
    """Add a list file's entries to list NAME (a new version; existing entries stay).

    Example: [bold]kalasag media lists import hashes.csv --name known --state ~/.kalasag[/bold]
    """
    entries = read_list(file, list_format)
    res = MediaStore(state).import_entries(name, entries, negative=negative, category=category, source=source)
    typer.echo(f"list {res.list_name} version {res.version}: {res.added} added, {res.duplicates} already present")


@lists_app.command("add")
@guarded
def lists_add(
    paths: list[Path] = typer.Argument(..., help="Media files to hash and bank (only hashes are stored)."),
    name: str = typer.Option(..., "--name", help="List name."),
    negative: bool = typer.Option(False, "--negative"),
    category: str = typer.Option("", "--category"),
    source: str = typer.Option("", "--source"),
    state: Path = StateOpt,
    config: Path = ConfigOpt,
) -> None:
    """Hash media files and add their hashes (video: frames at video_fps) to list NAME. Images also get
    their bank variants and regions (config `bank_variants`), which make crops, overlays and
    rotations of them match; only hashes are stored.

    Example: [bold]kalasag media lists add clip.mp4 --name known --state ~/.kalasag[/bold]
    """
    from kalasag.media.listio import ListEntry

    cfg = load_media_config(config)
    entries = []
    for i, p in enumerate(paths, 1):
        if detect_kind(p) == "image":
            h = hash_image(p)
            entries.append(ListEntry(ref=p.name, kind="image", line=i, pdq=h.pdq, quality=h.quality, md5=h.md5,
                                     sha256=h.sha256, metadata={"width": h.width, "height": h.height},
                                     variants=banked_hashes(load_rgb(p), cfg)))
        else:
            v = hash_video(p, cfg.video_fps)
            entries.append(ListEntry(ref=p.name, kind="video", line=i, md5=v.md5, sha256=v.sha256,
                                     metadata={"fps": v.fps, "width": v.width, "height": v.height},
                                     frames=[(f.timestamp, f.pdq, f.quality) for f in v.frames]))
    res = MediaStore(state).import_entries(name, entries, negative=negative, category=category, source=source)
    typer.echo(f"list {res.list_name} version {res.version}: {res.added} added, {res.duplicates} already present")


@lists_app.command("withdraw")
@guarded
def lists_withdraw(
    name: str = typer.Option(..., "--name", help="List name."),
    entry: list[str] = typer.Option(None, "--entry", help="Entry reference to withdraw (repeatable)."),
    pdq: list[str] = typer.Option(None, "--pdq", help="PDQ hash to withdraw (repeatable)."),
    state: Path = StateOpt,
) -> None:
    """Withdraw entries (a new list version; the entries stop matching at once, no rebuild).

    Example: [bold]kalasag media lists withdraw --name known --entry entry-17 --state ~/.kalasag[/bold]
    """
    from kalasag.media.hashing import hex_to_bytes

    for h in pdq or []:
        hex_to_bytes(h)
    res = MediaStore(state).withdraw(name, refs=list(entry or []), pdq_hex=[h.strip().lower() for h in pdq or []])
    typer.echo(f"list {res.list_name} version {res.version}: {-res.added} withdrawn")


@lists_app.command("show")
@guarded
def lists_show(state: Path = StateOpt, fmt: str = typer.Option("csv", "--format")) -> None:
    """Print each list: name, negative, version, active entries, last update.

    Example: [bold]kalasag media lists show --state ~/.kalasag[/bold]
    """
    _check_format(fmt)
    _rows_out(MediaStore(state).lists(), ["name", "negative", "version", "active_entries", "updated_at"], fmt)
