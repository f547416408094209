"""Checkpoints of a trained method, its resume state and the policy loader.

Output (``results/checkpoints/{method}/model/``, written by rank 0 only): the PEFT
adapter (``adapter_config.json`` + weights) or the full weights with the tokenizer and
preprocessor files, plus ``avtrust_checkpoint.json`` ({method, base_model, base_dir,
adapter, seed, steps, config_hash}).

Resume state (``results/train_state/{method}/``, not a Snakemake output, so a killed
job's cleanup keeps it): the Trainer's ``checkpoint-<step>/`` folders (weights,
optimizer, scheduler, RNG of every process, log history), the precomputed reference
log-probs and ``run.json`` with the hash of the run's configuration. A rerun with the
same configuration continues from the last checkpoint; with another configuration the
state is discarded. After a successful run the state is deleted unless
``training.keep_state`` is on.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from avtrust.errors import AvtrustError
from avtrust.io import write_json_atomic
from avtrust.models.omni_inputs import VIDEO_SAMPLING_FILE

PathLike = str | os.PathLike
META = "avtrust_checkpoint.json"
RUN = "run.json"
# Files of a base model folder a full-weights checkpoint needs to be loadable on its own.
PROCESSING_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.json",
    "chat_template.jinja",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
    # the video pixel budget and frame rate the model was trained with (the tiny models)
    VIDEO_SAMPLING_FILE,
)


class CheckpointError(AvtrustError, ValueError):
    """A checkpoint folder is missing or malformed; the message names it."""


def _is_complete(checkpoint: Path) -> bool:
    """The Trainer writes ``trainer_state.json`` last, in one go: a checkpoint is complete
    when that file exists and parses (a kill during its write leaves it torn)."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(state_dir: PathLike) -> str | None:
    """The ``checkpoint-<step>`` folder with the highest step that is complete."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        return None
    done = []
    for d in state_dir.glob("checkpoint-*"):
        suffix = d.name.split("-", 1)[1]
        if suffix.isdigit() and _is_complete(d):
            done.append((int(suffix), d))
    return str(max(done)[1]) if done else None


def prepare_state(state_dir: PathLike, run_hash: str, log=None) -> str | None:
    """Make ``state_dir`` the resume state of the run with ``run_hash``.

    Returns the checkpoint to resume from (None: start afresh). State made under
    another configuration (or without ``run.json``) is removed first.
    """
    state_dir = Path(state_dir)
    run_file = state_dir / RUN
    if state_dir.exists():
        old = json.loads(run_file.read_text()).get("config_hash") if run_file.is_file() else None
        if old != run_hash:
            if log:
                log.info("discarding resume state %s (config %s != %s)", state_dir, old, run_hash)
            shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_file, {"config_hash": run_hash})
    resume = last_checkpoint(state_dir)
    if log:
        log.info("resume from %s" if resume else "no checkpoint to resume from%s", resume or "")
    return resume


def finish_state(state_dir: PathLike, keep: bool) -> None:
    """After success: remove the resume state unless asked to keep it."""
    if not keep and Path(state_dir).exists():
        shutil.rmtree(state_dir)


def write_meta(
    out_dir: PathLike,
    *,
    method: str,
    base_model: str,
    base_dir: PathLike,
    adapter: bool,
    seed: int,
    steps: int,
    config_hash: str,
) -> Path:
    """``avtrust_checkpoint.json`` (and, for full weights, the base folder's tokenizer
    and preprocessor files) next to saved weights."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not adapter:
        for name in PROCESSING_FILES:
            if (Path(base_dir) / name).is_file():
                shutil.copy2(Path(base_dir) / name, out_dir / name)
    meta = {
        "method": method,
        "base_model": base_model,
        "base_dir": Path(base_dir).as_posix(),
        "adapter": adapter,
        "seed": seed,
        "steps": steps,
        "config_hash": config_hash,
    }
    write_json_atomic(out_dir / META, meta)
    return out_dir


def write_checkpoint(model, out_dir: PathLike, **meta) -> Path:
    """Save ``model`` (a PEFT model saves its adapter) and its metadata to ``out_dir``."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    return write_meta(out_dir, **meta)


def read_meta(model_dir: PathLike) -> dict:
    path = Path(model_dir) / META
    if not path.is_file():
        raise CheckpointError(f"{str(model_dir)!r} is not a training checkpoint ({META} missing)")
    return json.loads(path.read_text())


def load_policy(
    model_dir: PathLike, device: str = "cpu", models_root: PathLike = "resources/models"
):
    """The trained policy as an :class:`avtrust.models.omni.OmniThinker` (adapter merged).

    The base model is the folder recorded in the checkpoint (``base_dir``) or, when that
    is gone, ``models_root/<base_model>``.
    """
    from avtrust.models import registry
    from avtrust.models.omni import OmniThinker

    meta = read_meta(model_dir)
    base_dir = Path(meta["base_dir"])
    if not (base_dir / registry.MANIFEST).is_file():
        base_dir = Path(models_root) / meta["base_model"]
    if not (base_dir / registry.MANIFEST).is_file():
        raise CheckpointError(
            f"{str(model_dir)!r}: its base model {meta['base_model']!r} is neither at "
            f"{meta['base_dir']!r} nor under {str(models_root)!r}"
        )
    if meta["adapter"]:
        from peft import PeftModel

        policy = registry.load(base_dir, device=device)
        merged = PeftModel.from_pretrained(policy.model, str(model_dir)).merge_and_unload()
        policy.model = merged.eval()
        return policy
    manifest = registry.read_manifest(base_dir)
    fields = {k: manifest[k] for k in registry.ModelSpec.__dataclass_fields__ if k in manifest}
    return OmniThinker.load(model_dir, spec=registry.ModelSpec(**fields), device=device)
