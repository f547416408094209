"""Model layer: the registry (name → adapter + location), tiny offline builds, adapters.

``avtrust.models.registry`` is light to import (no torch); the adapters import torch and
transformers when a model is loaded.
"""

from avtrust.models.registry import (
    ADAPTERS,
    ModelError,
    ModelSpec,
    load,
    load_by_name,
    prepare,
    spec_from_config,
)

__all__ = [
    "ADAPTERS",
    "ModelError",
    "ModelSpec",
    "load",
    "load_by_name",
    "prepare",
    "spec_from_config",
]
