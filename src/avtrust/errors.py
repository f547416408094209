"""Exceptions that carry enough context for a user to fix their input."""


class AvtrustError(Exception):
    """Base class for every error the package raises on purpose."""


class AnnotationError(AvtrustError, ValueError):
    """An annotation file is malformed; the message names the file, record and key."""


class MediaError(AvtrustError, RuntimeError):
    """A media file could not be probed, decoded or written; the message names the file."""


class ConfigError(AvtrustError, ValueError):
    """The workflow configuration is inconsistent beyond what the JSON Schema can check."""


class DownloadError(AvtrustError, RuntimeError):
    """A dataset file or folder could not be fetched; the message says what to do."""


class StorageError(AvtrustError, OSError):
    """An output could not be written for lack of space (full disk, quota); the message
    names the file. Never recorded as a per-sample reject: the job stops, nothing is left
    under the output's name, and a rerun once space is freed redoes it."""
