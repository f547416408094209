"""What a configuration that names real data still lacks, said before anything runs.

A dry run of a real configuration (``snakemake -n --configfile config/paper.yaml``)
plans every job whether or not the data are there; the first job that needs a missing
folder, a placeholder URL or an unset API key then fails hours into a cluster run.
:func:`check` looks for those gaps in the resolved config, without reading any data:

- data folders and files the config names that do not exist (``source: local`` paths
  and annotation copies, ``benchmark.import`` files and folders, accelerate configs);
- values still ``TO-BE-FILLED`` (annotation URLs and their pinned sha256);
- models neither prepared under ``resources/models/`` nor present where the config
  says (a Hub model not downloaded yet, a local folder that is missing or holds no
  saved model, an endpoint's API key variable that is not set);
- GPU counts of the config that the Slurm profile's ``set-resources`` replaces;
- the download tools a ``source: youtube`` dataset needs on the machine that runs its
  jobs: yt-dlp importable, and for YouTube itself a JavaScript runtime (``deno``) on
  ``PATH`` for yt-dlp's challenge solver.

Each finding names the key and says how to fix it. The synthetic default has no real
source and gets no findings: nothing of this applies to it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from avtrust.datasets.download.http import PLACEHOLDER
from avtrust.datasets.download.local import WHERE
from avtrust.overlays import dataset_kind

PathLike = str | os.PathLike

# Config key of the GPU count each GPU rule asks for (its `resources: gpu=`): the
# profile's `set-resources` replaces it. tests/unit/test_preflight.py checks this
# table against workflow/rules/*.smk.
RULE_GPUS = {
    "score_pairs": ("scoring", "gpus"),
    "reference_reasoning": ("scoring", "gpus"),
    "train": ("training", "gpus"),
    "rlcomm_train": ("rlcomm", "gpus"),
    "evaluate_shard": ("evaluation", "gpus"),
    "judge_m2": ("evaluation", "gpus"),
}
# What the config's GPU count decides besides the Slurm request.
GPU_MEANING = {
    "training": "training.processes: 0 starts one process per GPU given, so the global "
    "batch (batch_size x GPUs x grad_accum) follows the profile",
    "rlcomm": "rlcomm.processes: 0 starts one process per GPU given",
}


@dataclass(frozen=True)
class Finding:
    """One gap: the config (or profile) key, what is wrong, how to fix it."""

    key: str
    problem: str
    fix: str

    def lines(self) -> list[str]:
        return [f"  {self.key}: {self.problem}", f"      fix: {self.fix}"]


def real_sources(config: Mapping) -> list[str]:
    """Datasets of real data (not generated here) and imported official files."""
    datasets = config.get("datasets") or {}
    out = [n for n in datasets if dataset_kind(datasets, n) == "real"]
    for bench, tasks in ((config.get("benchmark") or {}).get("import") or {}).items():
        out += [f"benchmark.import.{bench}.{task}" for task in tasks or {}]
    return out


def check(
    config: Mapping,
    *,
    root: PathLike = ".",
    profile: Mapping | None = None,
    profile_name: str = "the profile",
    profile_in_use: bool = False,
    environ: Mapping[str, str] | None = None,
) -> list[Finding]:
    """The gaps of ``config`` (resolved, as the rules see it) before a real run.

    ``root``: the working directory relative paths are read from; ``profile``: the
    Slurm profile's settings (its ``set-resources``), named ``profile_name`` in the
    messages; ``profile_in_use``: False when it is the profile a later cluster run would
    use, and then a rule the config runs without GPUs (a CPU run) is not compared;
    ``environ``: the environment jobs inherit (default ``os.environ``).
    Returns nothing for a config without real sources.
    """
    if not real_sources(config):
        return []
    environ = os.environ if environ is None else environ
    root = Path(root)
    return [
        *_data_paths(config, root),
        *_placeholders(config),
        *_models(config, root, environ),
        *_gpu_overrides(config, profile or {}, profile_name, profile_in_use),
        *_download_tools(config, environ),
    ]


def report(findings: list[Finding]) -> str:
    """The findings as lint-style lines for the top of a dry run ('' when none)."""
    if not findings:
        return ""
    head = (
        f"preflight: {len(findings)} thing{'s' if len(findings) != 1 else ''} to settle "
        "before a real run (the plan below is made anyway; jobs that need them would fail):"
    )
    return "\n".join([head, *(line for f in findings for line in f.lines())])


def _path(root: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else root / path


def _missing(root: Path, values: list[str], *, folder: bool) -> list[str]:
    exists = Path.is_dir if folder else Path.exists
    return [v for v in values if not exists(_path(root, v))]


def _data_paths(config: Mapping, root: Path) -> Iterator[Finding]:
    for name, spec in (config.get("datasets") or {}).items():
        if spec.get("source") != "local":
            continue
        paths = spec.get("path")
        paths = paths if isinstance(paths, list) else [paths] if paths else []
        absent = _missing(root, paths, folder=True)
        if absent:
            where = WHERE.get(spec.get("format"), "its distributor")
            yield Finding(
                f"datasets.{name}.path",
                f"{_listed(absent)} {'does' if len(absent) == 1 else 'do'} not exist",
                f"get the media from {where}, then point datasets.{name}.path at your "
                "copy (README, Real datasets)",
            )
        copies = [a["path"] for a in spec.get("annotations") or [] if "path" in a]
        absent = _missing(root, copies, folder=False)
        if absent:
            yield Finding(
                f"datasets.{name}.annotations",
                f"{_listed(absent)} {'does' if len(absent) == 1 else 'do'} not exist",
                "put the file there, or replace the entry by {url, sha256} to download it",
            )
    imports = (config.get("benchmark") or {}).get("import") or {}
    for bench, tasks in imports.items():
        for task, entry in (tasks or {}).items():
            absent = [
                f"{key} {entry[key]}"
                for key, folder in (("json", False), ("media", True))
                if key in entry and _missing(root, [entry[key]], folder=folder)
            ]
            if absent:
                yield Finding(
                    f"benchmark.import.{bench}.{task}",
                    f"{', '.join(absent)} not found",
                    "point json at the released file and media at the folder of its clips "
                    "(README, Official files)",
                )
    for section in ("training", "rlcomm"):
        path = (config.get(section) or {}).get("accelerate_config")
        if path and not _path(root, path).is_file():
            yield Finding(
                f"{section}.accelerate_config",
                f"{path} not found (relative paths are read from the working directory)",
                "run from the checkout (config/accelerate/ is there) or give an absolute path",
            )


def _listed(values: list[str], at_most: int = 3) -> str:
    shown = ", ".join(str(v) for v in values[:at_most])
    return shown + (f" and {len(values) - at_most} more" if len(values) > at_most else "")


def _leaves(value, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _placeholders(config: Mapping) -> Iterator[Finding]:
    """One finding per field left as a placeholder (all sha256 together, all URLs
    together), naming each key with its count, e.g. datasets.avqa.annotations (2)."""
    groups: dict[str, dict[str, int]] = {}
    for path, value in _leaves(config):
        if isinstance(value, str) and PLACEHOLDER in value:
            field = str(path[-1])
            # the key up to the list the entry sits in (annotations[0].url -> annotations)
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path) - 1)
            key = ".".join(str(p) for p in path[:cut])
            counts = groups.setdefault(field, {})
            counts[key] = counts.get(key, 0) + 1
    for field, counts in groups.items():
        total = sum(counts.values())
        what = f"{total} {field}{'s' if total > 1 and field != 'sha256' else ''}"
        if field == "sha256":
            fix = (
                "the first run downloads each such file, prints its sha256 and stops: "
                "check the file is the one you expect, paste the hash, rerun"
            )
        elif field == "url":
            fix = (
                "put the download links you were given, or {path: ...} entries for copies "
                "you already hold"
            )
        else:
            fix = "fill it in (or remove the entry)"
        keys = ", ".join(f"{k} ({n})" if n > 1 else k for k, n in counts.items())
        yield Finding(keys, f"{what} still {PLACEHOLDER}", fix)


def _models(config: Mapping, root: Path, environ: Mapping[str, str]) -> Iterator[Finding]:
    to_download = []
    for name, entry in (config.get("models") or {}).items():
        key = f"models.{name}"
        prepared = (root / "resources" / "models" / name / "avtrust_model.json").is_file()
        source = entry.get("source")
        if source == "hub" and not prepared:
            to_download.append(name)
        elif source == "local":
            folder = _path(root, str(entry.get("location")))
            saved = any((folder / f).is_file() for f in ("config.json", "modules.json"))
            if not folder.is_dir() or not saved:
                problem = "does not exist" if not folder.is_dir() else "holds no config.json"
                yield Finding(
                    f"{key}.location",
                    f"{folder} {problem}",
                    "point it at a folder written by save_pretrained, or use source: hub "
                    "with the model's Hugging Face id",
                )
        elif source == "http" and entry.get("api_key_env"):
            variable = entry["api_key_env"]
            if not environ.get(variable):
                yield Finding(
                    f"{key}.api_key_env",
                    f"environment variable {variable} is not set",
                    f"export {variable}=<your key> in the shell that starts snakemake "
                    "(jobs inherit it); a keyless server needs no api_key_env",
                )
    if to_download:
        yield Finding(
            "models",
            f"{', '.join(to_download)} (source: hub) not downloaded yet into resources/models/",
            "prepare_model downloads them; where compute nodes have no internet, run "
            "`snakemake --cores 4 --configfile <yours> --until prepare_model` on the login "
            "node first (README, Running on a cluster)",
        )


def _download_tools(config: Mapping, environ: Mapping[str, str]) -> Iterator[Finding]:
    """yt-dlp and, for YouTube URLs, deno (on the jobs' PATH) for each youtube dataset."""
    youtube = {
        name: spec
        for name, spec in (config.get("datasets") or {}).items()
        if spec.get("source") == "youtube"
    }
    if not youtube:
        return

    def keys(names) -> str:
        return ", ".join(f"datasets.{name}" for name in names)

    if importlib.util.find_spec("yt_dlp") is None:
        yield Finding(
            keys(youtube),
            "yt-dlp is not installed in this environment",
            "install the project with its dependencies (`pip install -e .`; yt-dlp and "
            "yt-dlp-ejs are pinned in pyproject.toml) or use envs/media.yaml",
        )
    on_youtube = [
        name
        for name, spec in youtube.items()
        if "youtube.com" in (spec.get("url_template") or "https://www.youtube.com/")
    ]
    if on_youtube and shutil.which("deno", path=environ.get("PATH", "")) is None:
        yield Finding(
            keys(on_youtube),
            "no `deno` on PATH: yt-dlp cannot solve YouTube's JavaScript challenges, so "
            "most videos would fail to download",
            "install deno (https://deno.land, or envs/media.yaml) where the download jobs "
            "run and put it on PATH",
        )


def _gpu_overrides(
    config: Mapping, profile: Mapping, profile_name: str, in_use: bool
) -> Iterator[Finding]:
    resources = profile.get("set-resources") or {}
    judge = ((config.get("evaluation") or {}).get("judge") or {}).get("model")
    for rule, (section, key) in RULE_GPUS.items():
        given = (resources.get(rule) or {}).get("gpu")
        if given is None or section not in config:
            continue
        asked = config[section].get(key)
        if rule == "judge_m2" and judge is None:
            continue  # no judge model: a GPU given anyway idles, the job still runs
        if not in_use and not asked:
            continue  # a CPU config: the cluster profile is not what it will run with
        try:
            if asked is None or int(given) == int(asked):
                continue
        except (TypeError, ValueError):  # not a count (a typo the profile's run reports)
            continue
        meaning = GPU_MEANING.get(section)
        yield Finding(
            f"{section}.{key}",
            f"{asked} GPU(s) for rule {rule}, but {profile_name} sets gpu: {given}, which "
            "wins" + (f"; {meaning}" if meaning else ""),
            f"make them agree: {rule}'s gpu under set-resources in {profile_name}, or "
            f"{section}.{key} in your config",
        )
