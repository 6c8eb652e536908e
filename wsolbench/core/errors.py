"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input from the user (a flag, a config file, a dataset file, a checkpoint)."""

    def one_line(self) -> str:
        """The message alone. A DataLoader worker re-raises it with the worker's
        traceback prepended; the last line holds the original message."""
        text = str(self).strip()
        if "\n" in text:
            text = text.splitlines()[-1].split("UserError: ", 1)[-1]
        return text


def where(source: str | None, field: str) -> str:
    """Format the location of a bad value, e.g. ``run.yaml: lambda``."""
    return f"{source}: {field}" if source else field
