"""Folders edgekit writes (artifacts, bundles, checkpoints): atomic, locked, and never a user's.

Standard library only: the slim runtime imports ``edgekit.artifact``, which must stay torch-free,
and the writers (convert, finetune, distill, benchmarks) share these rules.

- **Atomic**: everything is written to ``.NAME.tmp-XXXX`` beside the destination and renamed into
  place only when the block succeeds; on any exception (SIGTERM included: a handler turns it into
  ``SystemExit``) the temporary folder is removed and the previous output is left as it was.
- **Marked**: every finished folder carries ``.edgekit-output.json`` (format ``edgekit-output``,
  kind, edgekit version, and the list of files edgekit put there). A folder is replaced only if it
  is empty, or marked and holding nothing beyond what its marker lists, or an output written before
  markers existed that still parses as edgekit's and holds only what edgekit writes (``_legacy_*``).
- **Never an input**: a destination equal to, inside, or containing a protected path (the model,
  the student, the data, a work folder) is refused, as are files, symlinks, ``/``, the home folder,
  mount points and read-only places. ``check_destination`` runs these checks up front, before any
  slow work; ``atomic_directory`` runs them again when it starts and before it replaces anything.
- **Locked**: one writer per destination, through an ``fcntl.flock`` on ``.NAME.lock`` beside it. A
  second writer fails at once (it would only redo or overwrite the first one's work). While holding
  the lock, a writer removes temporary folders of the same destination left by killed runs. The
  lock file exists only while a run holds it (a killed run leaves it, unlocked and harmless).
  Without ``fcntl`` (Windows) there is no lock and stale temporary folders are left for the user.
"""

from edgekit.outputs.atomic import atomic_directory, seal
from edgekit.outputs.destination import check_destination, check_parent_folder
from edgekit.outputs.locking import destination_lock, lock_path, remove_stale_temp_folders, temp_folders
from edgekit.outputs.ownership import (
    KINDS,
    MARKER_FORMAT,
    MARKER_NAME,
    OutputError,
    read_marker,
)

__all__ = ["KINDS", "MARKER_FORMAT", "MARKER_NAME", "OutputError", "atomic_directory", "check_destination",
           "check_parent_folder", "destination_lock", "lock_path", "read_marker", "remove_stale_temp_folders",
           "seal", "temp_folders"]  # fmt: skip
