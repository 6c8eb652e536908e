"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input from the user (a flag, a config file, a dataset file, a checkpoint)."""


def where(source: str | None, field: str) -> str:
    """Format the location of a bad value, e.g. ``run.yaml: lambda``."""
    return f"{source}: {field}" if source else field
