"""Where things are: ``<data_dir>/<instance>/<YYYY-MM-DD>/<HH>.jsonl.zst`` (UTC hours), and which instance a
command means.

A *partition* is one UTC hour: its file ``HH.jsonl.zst`` plus any damaged files set aside beside it
(``HH.jsonl.zst.damaged``, ``HH.jsonl.zst.damaged.2``, ...), and its rollup ``HH.rollup.json.zst`` (a summary
derived from them, never data). Readers read the data files; retention counts and deletes all of them together.
Anything else in the archive is foreign: listed, reported and never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from plsnap.archive.fs import SafeDir
from plsnap.errors import ArchiveError, ConfigError, NoDataError

INSTANCE_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
DATE_DIR_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
PARTITION_RE = re.compile(r"^(\d{2})\.jsonl\.zst$")
DAMAGED_RE = re.compile(r"^(\d{2})\.jsonl\.zst\.damaged(?:\.(\d{1,4}))?$")
ROLLUP_RE = re.compile(r"^(\d{2})\.rollup\.json\.zst$")
TEMP_RE = re.compile(r"^\.(?:\d{2}\.jsonl\.zst|\d{2}\.rollup\.json\.zst|\.plsnap\.[a-z]+)\.[0-9a-f]{8}\.tmp$")
SUFFIX = ".jsonl.zst"
ROLLUP_SUFFIX = ".rollup.json.zst"
DAMAGED_SUFFIX = ".damaged"
LOCK_NAME = ".plsnap.lock"
HEARTBEAT_NAME = ".plsnap.heartbeat"
OWN_HIDDEN = (LOCK_NAME, HEARTBEAT_NAME)
DEFAULT_INSTANCE = "default"
PARTITION_SPAN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Partition:
    """One UTC hour of the archive.

    ``path`` is the hour's file (``has_main`` False when only damaged files remain); ``damaged`` names the
    damaged files set aside beside it; ``rollup`` the rollup's name when there is one; ``size`` is the bytes
    of all of them; ``start`` the hour's first instant (UTC).
    """

    path: Path
    start: datetime
    size: int
    damaged: tuple[str, ...] = ()
    has_main: bool = True
    rollup: str | None = None

    @property
    def end(self) -> datetime:
        """The first instant after this partition (exclusive), UTC."""
        return self.start + PARTITION_SPAN

    @property
    def date_name(self) -> str:
        """The date folder's name."""
        return self.path.parent.name

    @property
    def names(self) -> tuple[str, ...]:
        """Every data file of the partition, the hour's file first."""
        return ((self.path.name,) if self.has_main else ()) + self.damaged

    @property
    def all_names(self) -> tuple[str, ...]:
        """Every file of the partition: the rollup first (so that a crash while deleting them never leaves a
        rollup without its data), then the data files."""
        return ((self.rollup,) if self.rollup else ()) + self.names

    @property
    def rollup_name(self) -> str:
        """The name the partition's rollup has (or would have)."""
        return f"{self.start:%H}{ROLLUP_SUFFIX}"

    @property
    def paths(self) -> list[Path]:
        """Every file of the partition, as paths."""
        return [self.path.parent / name for name in self.names]


@dataclass(frozen=True, slots=True)
class Foreign:
    """Something in the archive that plsnap did not write (or cannot use), and why it is left alone."""

    path: Path
    reason: str
    #: True when it holds (or stands where there should be) history that cannot be read: a date folder or
    #: partition file that is a symlink, a directory, a FIFO, a device, or a date folder that cannot be opened.
    unreadable: bool = False


@dataclass(frozen=True, slots=True)
class Listing:
    """What an instance directory holds: partitions oldest first, and everything else."""

    partitions: list[Partition]
    foreign: list[Foreign]


def validate_instance(name: str) -> str:
    """Return ``name`` if it is a valid instance name, else raise ConfigError."""
    if not INSTANCE_RE.match(name) or name in {".", ".."}:
        raise ConfigError(f"instance name {name!r} is invalid: use 1-128 characters of A-Z a-z 0-9 . _ -")
    return name


def hour_start(moment: datetime) -> datetime:
    """The start of the UTC hour containing ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def partition_names(moment: datetime) -> tuple[str, str]:
    """(date folder, file name) of the partition holding snapshots taken at ``moment``."""
    start = hour_start(moment)
    return start.strftime("%Y-%m-%d"), f"{start:%H}{SUFFIX}"


def rollup_name(file_name: str) -> str:
    """The rollup's name for a partition file name (``03.jsonl.zst`` -> ``03.rollup.json.zst``)."""
    return file_name.removesuffix(SUFFIX) + ROLLUP_SUFFIX


def partition_path(instance_dir: Path, moment: datetime) -> Path:
    """The partition file that holds snapshots taken at ``moment``."""
    date_name, file_name = partition_names(moment)
    return instance_dir / date_name / file_name


def parse_partition_path(path: Path) -> datetime | None:
    """The start instant of a partition path, or None if the path is not a partition name."""
    return _hour_of(path.parent.name, path.name, PARTITION_RE)


def _hour_of(date_name: str, name: str, pattern: re.Pattern[str]) -> datetime | None:
    return _hour_in(_day_of(date_name), name, pattern)


def _day_of(date_name: str) -> datetime | None:
    """Midnight UTC of a date folder's name, or None if it is not a valid date."""
    match_date = DATE_DIR_RE.match(date_name)
    if not match_date:
        return None
    try:
        year, month, day = (int(g) for g in match_date.groups())
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None


def _hour_in(day: datetime | None, name: str, pattern: re.Pattern[str]) -> datetime | None:
    match_hour = pattern.match(name)
    if day is None or not match_hour:
        return None
    hour = int(match_hour.group(1))
    return day.replace(hour=hour) if hour < 24 else None


def damaged_name(file_name: str, taken: set[str]) -> str:
    """A free name for setting ``file_name`` aside as damaged: ``.damaged``, then ``.damaged.2``, ..."""
    candidate = file_name + DAMAGED_SUFFIX
    number = 2
    while candidate in taken:
        candidate = f"{file_name}{DAMAGED_SUFFIX}.{number}"
        number += 1
    return candidate


def list_partitions(instance: SafeDir | Path) -> Listing:
    """Every partition of an instance directory, oldest first, and every foreign entry (never followed)."""
    if isinstance(instance, Path):
        try:
            opened = SafeDir.open_root(instance, writable=False)
        except FileNotFoundError:
            return Listing([], [])
        with opened:
            return list_partitions(opened)
    partitions: list[Partition] = []
    foreign: list[Foreign] = []
    try:
        entries = instance.entries()
    except OSError as exc:
        raise ArchiveError(f"cannot list {instance.path}: {exc.strerror}") from None
    for entry in entries:
        path = instance.child_path(entry.name)
        if entry.name in OWN_HIDDEN:
            continue
        if TEMP_RE.match(entry.name):
            continue
        if not DATE_DIR_RE.match(entry.name):
            foreign.append(Foreign(path, "not a plsnap file"))
            continue
        if entry.kind != "dir":
            reason = "a symlink (never followed)" if entry.kind == "symlink" else "not a directory"
            foreign.append(Foreign(path, reason, unreadable=True))
            continue
        try:
            folder = instance.subdir(entry.name)
        except FileNotFoundError:
            continue
        except ArchiveError as exc:
            foreign.append(Foreign(path, str(exc), unreadable=True))
            continue
        with folder:
            _list_date_dir(folder, entry.name, partitions, foreign)
    partitions.sort(key=lambda p: p.start)
    return Listing(partitions, foreign)


@dataclass(slots=True)
class _Hour:
    main: str | None = None
    size: int = 0
    damaged: list[str] = field(default_factory=list)
    rollup: str | None = None


def _list_date_dir(folder: SafeDir, date_name: str, partitions: list[Partition], foreign: list[Foreign]) -> None:
    hours: dict[datetime, _Hour] = {}
    day = _day_of(date_name)
    for child in folder.entries():
        if TEMP_RE.match(child.name):
            continue
        start = _hour_in(day, child.name, PARTITION_RE)
        rollup = None if start else _hour_in(day, child.name, ROLLUP_RE)
        hour = start or rollup or _hour_in(day, child.name, DAMAGED_RE)
        if hour is None:
            foreign.append(Foreign(folder.child_path(child.name), "not a plsnap file"))
            continue
        if child.kind != "file":
            path = folder.child_path(child.name)
            kind = {"symlink": "a symlink (never followed)", "dir": "a directory"}.get(child.kind, "not a file")
            if rollup is not None:  # derived data: windows read the raw rows instead, and nothing is lost
                foreign.append(Foreign(path, f"is {kind} where a partition's rollup should be"))
            else:
                foreign.append(Foreign(path, f"is {kind} where a partition file should be", unreadable=True))
            continue
        slot = hours.setdefault(hour, _Hour())
        slot.size += child.size
        if start is not None:
            slot.main = child.name
        elif rollup is not None:
            slot.rollup = child.name
        else:
            slot.damaged.append(child.name)
    for hour, slot in hours.items():
        if slot.main is None and not slot.damaged:
            assert slot.rollup is not None
            foreign.append(Foreign(folder.child_path(slot.rollup), "a rollup without its partition"))
            continue
        partitions.append(
            Partition(
                path=folder.path / (slot.main or f"{hour:%H}{SUFFIX}"),
                start=hour,
                size=slot.size,
                damaged=tuple(sorted(slot.damaged, key=_damaged_order)),
                has_main=slot.main is not None,
                rollup=slot.rollup,
            )
        )


def _damaged_order(name: str) -> int:
    match = DAMAGED_RE.match(name)
    return int(match.group(2) or 1) if match else 0


def is_instance_dir(directory: SafeDir) -> bool:
    """True when a directory looks like a plsnap instance: it has a lock/heartbeat file or a date folder."""
    try:
        entries = directory.entries()
    except OSError:
        return False
    return any(e.name in OWN_HIDDEN or (e.kind == "dir" and DATE_DIR_RE.match(e.name)) for e in entries)


def resolve_instance(data_dir: Path, requested: str | None) -> tuple[Path, str]:
    """(data directory, instance name) that a reading command means: one rule for every command.

    ``requested`` (``--instance``, else ``[archive] instance``) wins; otherwise the only instance under the data
    directory. When ``data_dir`` is itself an instance directory (holds date folders), it is used. NoDataError
    when nothing matches, naming what was found.
    """
    if requested:
        validate_instance(requested)
        return data_dir, requested
    try:
        root = SafeDir.open_root(data_dir, writable=False)
    except (FileNotFoundError, NotADirectoryError):
        raise NoDataError(f"no archive at {data_dir}: the directory does not exist (check --data-dir)") from None
    except ArchiveError as exc:
        raise NoDataError(str(exc)) from None
    with root:
        if is_instance_dir(root) and not _has_instances(root):
            return root.path.parent, root.path.name
        candidates = _instances(root)
    if len(candidates) == 1:
        return data_dir, candidates[0]
    if not candidates:
        raise NoDataError(
            f"no plsnap archive under {data_dir}: no instance directory holding partitions (check --data-dir)"
        )
    raise NoDataError(f"several instances under {data_dir} ({', '.join(candidates)}): choose one with --instance")


def _has_instances(root: SafeDir) -> bool:
    return bool(_instances(root))


def _instances(root: SafeDir) -> list[str]:
    names = []
    for entry in root.entries():
        if entry.kind != "dir" or not INSTANCE_RE.match(entry.name) or DATE_DIR_RE.match(entry.name):
            continue
        try:
            with root.subdir(entry.name) as child:
                if is_instance_dir(child):
                    names.append(entry.name)
        except (ArchiveError, FileNotFoundError):
            continue
    return names


def open_instance(data_dir: Path, instance: str, *, writable: bool, create: bool | None = None) -> SafeDir:
    """Open ``<data_dir>/<instance>`` (created when ``create``, which defaults to ``writable``); NoDataError when
    it is missing and not created."""
    validate_instance(instance)
    create = writable if create is None else create
    try:
        root = SafeDir.open_root(data_dir, writable=writable, create=create)
    except (FileNotFoundError, NotADirectoryError):
        raise NoDataError(f"no archive at {data_dir}: the directory does not exist (check --data-dir)") from None
    with root:
        try:
            return root.subdir(instance, create=create)
        except FileNotFoundError:
            raise NoDataError(f"no archive for instance {instance!r} under {root.path}") from None
