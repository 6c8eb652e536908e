"""Where wsolbench's own files are: the installed package's folder (its data:
paper/, sweeps/, pretrained/) and the folder above it (in a source checkout, the
plugin folders methods/ and datasets/, and slurm/); and the folders a write makes."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SOURCE_DIR = PACKAGE_DIR.parent


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, innermost first: what making
    ``folder`` creates, so that a failed write can take them away again."""
    return [d for d in (folder, *folder.parents) if not d.exists()]


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders, innermost first, while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
