"""Run folders: the on-disk record of one pipeline run. The only code that knows a run's paths
and file formats.

- :mod:`core.runs.layout`: file names (:class:`F`), steps, states, the run-id rule;
- :mod:`core.runs.folder`: marker, status, log, step outputs (clear, check);
- :mod:`core.runs.run`: the :class:`Run` type, typed readers and writers;
- :mod:`core.runs.catalog`: open, list, delete runs under the runs root.

Nothing here imports torch (model files are read and written through ``core.heads`` on use).
"""

from core.runlock import LockedError, RunLock
from core.runs.catalog import RunInfo, delete_run, list_runs, open_run, run_in_root, run_info
from core.runs.folder import (
    CorruptRunError,
    NotARunFolderError,
    append_log,
    check_no_links,
    check_out_file,
    check_step_outputs,
    clear_step_outputs,
    create_run_dir,
    init_run_dir,
    is_run_dir,
    pid_alive,
    read_status,
    resolve_run_dir,
    starting_job,
    write_status,
)
from core.runs.layout import (
    CURATED,
    MARKER,
    MATRIX_KINDS,
    STATE_ICONS,
    STATES,
    STEP_OUTPUTS,
    STEPS,
    F,
    new_run_id,
    pair_key,
    parse_pair_key,
    runs_root,
    validate_run_id,
)
from core.runs.run import Run

__all__ = [
    "STEPS",
    "STATES",
    "STATE_ICONS",
    "MATRIX_KINDS",
    "CURATED",
    "MARKER",
    "STEP_OUTPUTS",
    "F",
    "CorruptRunError",
    "LockedError",
    "NotARunFolderError",
    "RunLock",
    "RunInfo",
    "Run",
    "runs_root",
    "validate_run_id",
    "new_run_id",
    "create_run_dir",
    "init_run_dir",
    "is_run_dir",
    "check_no_links",
    "check_out_file",
    "resolve_run_dir",
    "starting_job",
    "write_status",
    "read_status",
    "append_log",
    "pid_alive",
    "clear_step_outputs",
    "check_step_outputs",
    "pair_key",
    "parse_pair_key",
    "list_runs",
    "open_run",
    "run_in_root",
    "run_info",
    "delete_run",
]
