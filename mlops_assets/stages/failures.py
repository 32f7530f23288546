"""Errors a user can act on become a Dagster Failure with a one-line description; bugs stay tracebacks."""

import contextlib
from collections.abc import Iterator

import dagster as dg


@contextlib.contextmanager
def user_failures(asset: str) -> Iterator[None]:
    """Inside a stage: a bad file, a missing upstream partition or an OS problem (permissions, full disk,
    read-only folder) fails the step with one line naming `asset`, the path and what to do; no retry."""
    from mlops_assets.files import describe_os_error
    from mlops_assets.ingest.cleaning import CleaningFailed
    from mlops_assets.ingest.dialect import UnreadableFile
    from mlops_assets.resources.warehouse import WarehouseBusy
    from mlops_assets.tables import MissingInput, TableMismatch

    try:
        yield
    except dg.Failure:
        raise
    except (UnreadableFile, CleaningFailed, MissingInput, TableMismatch) as error:
        raise dg.Failure(description=f"{asset}: {error}", allow_retries=False) from None
    except WarehouseBusy as error:
        raise dg.Failure(description=f"{asset}: {error}", allow_retries=True) from None
    except OSError as error:
        raise dg.Failure(description=f"{asset}: {describe_os_error(error)}", allow_retries=False) from None
