"""Per-rule logging for the workflow scripts.

``rule_logging(snakemake)`` sends Python logging, warnings, tqdm progress bars and
anything else written to stderr into the rule's ``log:`` file, and records an
uncaught exception there before re-raising it, so each job's story is in one place. The
package's own errors (:class:`~avtrust.errors.AvtrustError`: bad annotations, unreadable
media, missing downloads, a full disk) are recorded as their message alone, without a
traceback, and end the job with that message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import traceback
from collections.abc import Iterator

from avtrust.errors import AvtrustError

# Where a job ran: recorded in every rule log, so a cluster run shows which Slurm job
# and which GPUs each step got (variables that are unset are left out).
PLACEMENT_VARS = (
    "SLURM_JOB_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_GPUS",  # batch step
    "SLURM_STEP_GPUS",  # srun step (where Snakemake's Slurm jobs run the rule)
    "CUDA_VISIBLE_DEVICES",
)


def placement() -> dict[str, str]:
    """The host and the Slurm job / GPU variables that are set in this process."""
    found = {name: os.environ[name] for name in PLACEMENT_VARS if name in os.environ}
    return {"host": socket.gethostname(), **found}


@contextlib.contextmanager
def rule_logging(smk) -> Iterator[logging.Logger]:
    log_path = smk.log[0] if len(smk.log) else None
    rule = getattr(smk, "rule", "avtrust")
    if log_path is None:
        logging.basicConfig(level=logging.INFO)
        yield logging.getLogger(rule)
        return
    with open(log_path, "w", encoding="utf-8", buffering=1) as handle:
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        old_stderr = sys.stderr
        sys.stderr = handle
        logger = logging.getLogger(rule)
        logger.info("wildcards: %s", dict(smk.wildcards.items()))
        logger.info("placement: %s", placement())
        try:
            yield logger
        except AvtrustError as exc:
            # An error about the user's input, config or disk: its message names the file,
            # record or key to fix, and a traceback would only bury it. The job still
            # fails, with that message on stderr as well.
            logger.error("%s: %s", type(exc).__name__, exc)
            raise SystemExit(f"{rule}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            handle.write(traceback.format_exc())
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)
