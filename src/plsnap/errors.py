"""The one exception tree of plsnap.

Every error that can reach a user is a :class:`PlsnapError`; each class carries the process exit code that
``plsnap`` uses for it, so the CLI maps errors to exit codes in one place (``cli.main``)::

    PlsnapError (1)                   runtime failure
    ├── UsageError (2)                bad command-line value (time string, option)
    ├── ConfigError (2)               bad config file, key, value or password source
    ├── NoDataError (3)               no archive data for the requested time or instance
    ├── SourceError (1)               the database could not be sampled (connect, auth, timeout, query)
    └── ArchiveError (1)              the archive could not be written or is locked by another writer
        └── DiskFullError (1)         the write failed for lack of space (ENOSPC, EDQUOT)
"""

from __future__ import annotations


class PlsnapError(Exception):
    """Base class: a failure with a one-line message meant for the user."""

    exit_code = 1


class UsageError(PlsnapError):
    """A command-line value is malformed."""

    exit_code = 2


class ConfigError(PlsnapError):
    """The configuration is invalid; the message names the file and the key."""

    exit_code = 2


class NoDataError(PlsnapError):
    """The archive holds nothing for the requested instant, window or instance."""

    exit_code = 3


class SourceError(PlsnapError):
    """Sampling the server failed: connect, authentication, timeout or query error."""


class ArchiveError(PlsnapError):
    """Writing the archive failed, or another writer holds its lock."""


class DiskFullError(ArchiveError):
    """A write failed because the filesystem (or quota) is full."""
