"""Names vulture cannot see being used (``make lint`` runs ``vulture src vulture_allowlist.py``)."""

import plsnap
from plsnap import archive, config, locks, metrics, replay, summary

plsnap.__getattr__  # PEP 562: the lazy public API
plsnap.__dir__
archive.layout.parse_partition_path  # public helper: the hour of a partition path
archive.format.decode_lines  # public helper: every line of a partition file
config.documented_keys  # the example config is checked against it
metrics._QuietHandler.log_message  # overrides the access log of wsgiref
replay.AtResult.in_gap  # public API
locks.episodes  # public API: the episodes of a sequence of samples
cli._Parser._get_formatter  # overrides argparse's, which argparse calls
