"""avtrust: audio-visual reliability benchmarks, training and evaluation."""

__version__ = "0.1.0"
