"""Training: SFT, DPO and CAVPref and RL-CoMM on the Omni thinker.

Shared modules: :mod:`config` (a dataclass per method), :mod:`data` (rows → one
concatenated multimodal batch), :mod:`lora`, :mod:`checkpoint` (outputs, resume state,
:func:`~avtrust.train.checkpoint.load_policy`), :mod:`curves` (log.jsonl + plot) and
:mod:`launch` (the ``accelerate launch`` argument list).
"""
