"""The model registry: every model of the workflow by name → adapter + location.

A model is declared under ``models:`` in the config::

    models:
      clap: {adapter: clap, source: tiny, location: laion/clap-htsat-unfused}
      audio_llm: {adapter: qwen2_audio, source: hub, location: Qwen/Qwen2-Audio-7B-Instruct}
      omni: {adapter: qwen2_5_omni_thinker, source: local, location: /data/Qwen2.5-Omni-7B}
      gpt4o: {adapter: openai_http, source: http, location: https://api.openai.com/v1,
              model: gpt-4o, api_key_env: OPENAI_API_KEY}

``source`` says where the weights come from:

- ``tiny``: built here, randomly initialised, from a small config of the *same classes*
  as the real model (``location`` names the checkpoint it stands in for);
- ``hub``: downloaded from the Hugging Face Hub (``location`` = repo id, optional
  ``revision``);
- ``local``: a folder the user already has (``location`` = its path);
- ``http``: an OpenAI-compatible endpoint (``location`` = base URL); the API key is read
  from the environment variable named by ``api_key_env`` when a request is made, and is
  never written to a file or a log. Without ``api_key_env`` requests carry no
  ``Authorization`` header (a keyless local server).

The ``models`` stage (:func:`prepare`) turns each entry into a folder
``resources/models/<name>/`` holding ``avtrust_model.json`` (the resolved entry) and,
for ``tiny`` and ``hub``, the weights; :func:`load` opens such a folder through the
adapter, i.e. through the same ``from_pretrained`` path whatever the source.
``trust_remote_code`` is off unless the entry turns it on.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avtrust.errors import AvtrustError, ConfigError, StorageError
from avtrust.io import dumps_json, is_disk_full, remove_stale_scratch, scratch_prefix, storage_error

PathLike = str | os.PathLike
MANIFEST = "avtrust_model.json"

# adapter name -> "module:Class"; imported lazily (torch is heavy, the Snakefile is not).
ADAPTERS = {
    "qwen2_5_omni_thinker": "avtrust.models.omni:OmniThinker",
    "qwen2_audio": "avtrust.models.audio_llm:AudioLLM",
    "clap": "avtrust.models.clap:Clap",
    "qwen3_embedding": "avtrust.models.embedding:TextEmbedder",
    "openai_http": "avtrust.models.http:OpenAIEndpoint",
}
SOURCES = ("tiny", "hub", "local", "http")
TINY_ADAPTERS = ("qwen2_5_omni_thinker", "qwen2_audio", "clap", "qwen3_embedding")


class ModelError(AvtrustError, ValueError):
    """A model cannot be resolved or loaded; the message names the model and the key."""


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``models:``."""

    name: str
    adapter: str
    source: str
    location: str
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: str = "auto"
    # openai_http only
    model: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 120.0
    options: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def spec_from_config(name: str, models: dict) -> ModelSpec:
    """The entry ``models.<name>``, checked; unknown names list the known ones."""
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise ModelError(
            f"unknown model {name!r}: not under `models` in the config (known: {known})"
        )
    entry = dict(models[name])
    where = f"models.{name}"
    adapter = entry.get("adapter")
    if adapter not in ADAPTERS:
        raise ModelError(
            f"{where}.adapter = {adapter!r} is not an adapter ({', '.join(sorted(ADAPTERS))})"
        )
    source = entry.get("source")
    if source not in SOURCES:
        raise ModelError(f"{where}.source = {source!r} is not one of {', '.join(SOURCES)}")
    if not entry.get("location"):
        raise ModelError(f"{where}.location is missing")
    if (source == "http") != (adapter == "openai_http"):
        raise ModelError(
            f"{where}: source 'http' goes with adapter 'openai_http' and only with it "
            f"(got source {source!r}, adapter {adapter!r})"
        )
    if source == "tiny" and adapter not in TINY_ADAPTERS:
        raise ModelError(f"{where}: no tiny build exists for adapter {adapter!r}")
    if adapter == "openai_http" and not entry.get("model"):
        # api_key_env may be left out: local servers (vLLM, llama.cpp) often take no key
        raise ModelError(f"{where}.model is required for an openai_http model")
    known = {f for f in ModelSpec.__dataclass_fields__ if f != "name"}
    options = {k: entry.pop(k) for k in list(entry) if k not in known}
    return ModelSpec(name=name, options=options, **entry)


def check_config(models: dict, uses: dict[str, tuple[str, str | tuple[str, ...]]]) -> None:
    """Every ``uses`` key (config path → (model name, allowed adapters)) names a declared
    model with a suitable adapter; raises ConfigError naming the key."""
    for name in models:
        try:
            spec_from_config(name, models)
        except ModelError as exc:
            raise ConfigError(f"config: {exc}") from exc
    for key, (name, adapters) in uses.items():
        adapters = (adapters,) if isinstance(adapters, str) else adapters
        if name not in models:
            raise ConfigError(
                f"config: {key} = {name!r} is not a model under `models` "
                f"({', '.join(sorted(models)) or 'none declared'})"
            )
        if models[name]["adapter"] not in adapters:
            raise ConfigError(
                f"config: {key} = {name!r} has adapter {models[name]['adapter']!r}; "
                f"expected {' or '.join(adapters)}"
            )


def local_path(spec: ModelSpec, root: PathLike = ".") -> Path:
    """The folder of a ``local`` model; a clear error if it is missing or not a model."""
    path = Path(os.path.expanduser(spec.location))
    if not path.is_absolute():
        path = Path(root) / path
    if not path.exists():
        raise ModelError(
            f"model {spec.name!r}: local path {str(path)!r} does not exist "
            f"(models.{spec.name}.location)"
        )
    if not any((path / f).is_file() for f in ("config.json", "modules.json")):
        raise ModelError(
            f"model {spec.name!r}: {str(path)!r} holds no config.json: not a saved model folder"
        )
    return path.resolve()


def prepare(spec: ModelSpec, out_dir: PathLike, *, seed: int = 0, log=None) -> Path:
    """Resolve ``spec`` into the folder ``out_dir`` (the ``models`` stage).

    Built or downloaded into a temporary sibling first and renamed into place, so an
    interrupted job leaves no half-written model.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(out_dir)  # what a killed earlier attempt left
    tmp = Path(tempfile.mkdtemp(prefix=scratch_prefix(out_dir), dir=out_dir.parent))
    try:
        manifest = {**spec.as_dict(), "path": "."}
        if spec.source == "tiny":
            from avtrust.models.tiny import build_tiny

            info = build_tiny(spec.adapter, tmp, seed=seed)
            manifest["tiny"] = info
            if log:
                log.info("built tiny %s (%s parameters)", spec.adapter, info["parameters"])
        elif spec.source == "hub":
            from huggingface_hub import snapshot_download

            if log:
                log.info("downloading %s@%s", spec.location, spec.revision or "main")
            snapshot_download(spec.location, revision=spec.revision, local_dir=str(tmp))
        elif spec.source == "local":
            manifest["path"] = str(local_path(spec))
        # http: nothing to fetch; the manifest names the endpoint (never the key).
        (tmp / MANIFEST).write_text(dumps_json(manifest), encoding="utf-8")
        for path in tmp.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        tmp.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError) and is_disk_full(exc):
            raise storage_error(out_dir, exc) from exc
        raise
    return out_dir


def read_manifest(model_dir: PathLike) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise ModelError(
            f"{str(model_dir)!r} is not a prepared model folder (no {MANIFEST}); "
            "run the models stage: snakemake resources/models/<name>"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def adapter_class(adapter: str):
    if adapter not in ADAPTERS:
        raise ModelError(f"unknown adapter {adapter!r} ({', '.join(sorted(ADAPTERS))})")
    module, _, cls = ADAPTERS[adapter].partition(":")
    return getattr(importlib.import_module(module), cls)


def weights_path(model_dir: PathLike, manifest: dict) -> Path:
    """Where the weights of a prepared model are (its folder, or the user's folder)."""
    path = Path(model_dir) if manifest["path"] == "." else Path(manifest["path"])
    if not path.exists():
        raise ModelError(
            f"model {manifest['name']!r}: local path {str(path)!r} does not exist "
            "(moved or deleted since the models stage ran?)"
        )
    return path


def load(model_dir: PathLike, *, device: str = "cpu", **kwargs):
    """Open a prepared model folder with its adapter (the one loading path of the workflow)."""
    manifest = read_manifest(model_dir)
    spec_fields = {k: manifest[k] for k in ModelSpec.__dataclass_fields__ if k in manifest}
    spec = ModelSpec(**spec_fields)
    cls = adapter_class(spec.adapter)
    if spec.source == "http":
        return cls.from_spec(spec, **kwargs)
    return cls.load(weights_path(model_dir, manifest), spec=spec, device=device, **kwargs)


def load_by_name(name: str, models: dict, root: PathLike = "resources/models", **kwargs):
    """Open model ``name`` of the config from its prepared folder under ``root``."""
    spec = spec_from_config(name, models)
    folder = Path(root) / spec.name
    if not folder.is_dir():
        raise ModelError(
            f"model {name!r} has not been prepared: {str(folder)!r} is missing "
            f"(run: snakemake {folder.as_posix()})"
        )
    return load(folder, **kwargs)


def torch_dtype(name: str):
    """``auto`` → the checkpoint's dtype; else a torch dtype by name."""
    if name == "auto":
        return "auto"
    import torch

    try:
        return getattr(torch, name)
    except AttributeError:
        raise ModelError(f"unknown dtype {name!r}") from None


def load_with_processor(model_class, path, spec: ModelSpec | None, device: str):
    """(model on ``device`` in eval mode, processor, device) from a prepared folder.

    The shared loading path of the processor-based adapters (CLAP, Qwen2-Audio):
    ``trust_remote_code`` only when the config entry turns it on.
    """
    from transformers import AutoProcessor

    remote = bool(spec and spec.trust_remote_code)
    processor = AutoProcessor.from_pretrained(str(path), trust_remote_code=remote)
    model = model_class.from_pretrained(
        str(path), dtype=torch_dtype(spec.dtype if spec else "auto"), trust_remote_code=remote
    )
    device = resolve_device(device)
    return model.to(device).eval(), processor, device


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available, else cpu."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
