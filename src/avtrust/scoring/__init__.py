"""Score stage: similarities (CLAP, AVSM, Qwen3-Embedding), calibrated β, the
train/test split, CAVPref preference pairs and RL-CoMM reference reasoning.

``similarity`` and ``split`` need numpy only; the rest loads models through
``avtrust.models``.
"""
