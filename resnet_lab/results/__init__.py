"""The results store: each finished training run as one JSON record, and the studies read from it.

store: the records (schema, save, load, list); studies, laptop: the depth studies' runs.
"""

from resnet_lab.results.store import (
    DEFAULT_STORE,
    SCHEMA,
    ResultsError,
    RunRecord,
    default_store,
    list_runs,
    load_run,
    record_from_run,
    save_finished,
    save_run,
    shipped_store,
    validate,
    validate_store,
)

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA",
    "ResultsError",
    "RunRecord",
    "default_store",
    "list_runs",
    "load_run",
    "record_from_run",
    "save_finished",
    "save_run",
    "shipped_store",
    "validate",
    "validate_store",
]
