"""Where wsolbench's own files are: the installed package's folder (its data:
paper/, sweeps/, pretrained/) and the folder above it (in a source checkout, the
plugin folders methods/ and datasets/, and slurm/)."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SOURCE_DIR = PACKAGE_DIR.parent
