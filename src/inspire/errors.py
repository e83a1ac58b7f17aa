"""One exception family for everything the user can get wrong or the world can break.

`InspireError` is a user-facing error: the command line prints its message as one line on
stderr and exits with `exit_code` (2 for user errors), without a traceback.
"""

from __future__ import annotations


class InspireError(Exception):
    """An error with a one-line message meant for the musician, not a traceback."""

    exit_code = 2


class UserInputError(InspireError):
    """A path, flag or value given by the user is wrong (nonexistent, malformed, impossible)."""


class AudioReadError(InspireError):
    """An audio file cannot be read or holds unusable samples."""


class DatasetError(InspireError):
    """A run folder's prepared data is missing, inconsistent or prepared with other settings."""


class CheckpointError(InspireError):
    """A checkpoint is missing, corrupt, or was made with an incompatible config."""


class ConfigError(InspireError):
    """A config field, preset or override is unknown or has an impossible value."""


class DiskFullError(InspireError):
    """Writing failed because the disk is full; the previous files are intact (exit 2 like every
    error the musician can act on: free space and run the same command again)."""


class BusyError(InspireError):
    """Another job is writing the same run or folder right now."""
