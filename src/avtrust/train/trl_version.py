"""The one TRL release avtrust's trainers are written against: CAVPref and GRPO override
private methods of TRL's trainers, so another release is refused, not half-used."""

TRL_VERSION = "1.16.0"  # pyproject.toml pins the same


def check_trl() -> None:
    """RuntimeError naming both versions when the installed TRL is another release."""
    import trl

    if trl.__version__ != TRL_VERSION:
        raise RuntimeError(
            f"avtrust's trainers override private methods of trl {TRL_VERSION}; "
            f"trl {trl.__version__} is installed (pip install trl=={TRL_VERSION})"
        )
