"""Stage 1: read raw/ into documents; files that cannot be used are reported, not raised."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.ingest import IngestResult

# Errors that another try will not mend: a missing raw/ folder, a path that is not a folder.
_PERMANENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def _transient_io_error(task, task_run, state) -> bool:
    """Retry only on I/O errors that can pass (a network share hiccup), never on a bug or a missing folder."""
    try:
        state.result()
    except _PERMANENT:
        return False
    except OSError:
        return True
    except BaseException:
        return False
    return False


@task(
    name="ingest-documents",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_transient_io_error,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def ingest_documents(settings: Settings) -> IngestResult:
    """Every .txt/.md/.html under raw/ as a Document; rejected files and warnings with their reasons."""
    return pipeline.read_raw(settings)
