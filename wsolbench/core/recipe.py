"""Training recipes as data: every value a run's training loop and data pipeline take,
each with the place it came from.

A recipe belongs to a (method family, dataset) pair. Method plugins declare their
authors' recipes (``Method.recipes``); the ``shared`` recipe of each dataset is one
recipe for every method (wsolbench's, the SAT authors' values), kept for same-recipe
comparisons. Keys are run-config keys, so a recipe is a run config file's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from wsolbench.core.errors import UserError

# How far a value can be trusted, from its source.
TRUST = {
    "published": "the authors' code, config or README",
    "third-party": "quoted by follow-up work, not by the authors",
    "untuned": "the authors' code defaults; no tuned value is published",
    "wsolbench": "wsolbench's own choice (no published recipe for this case)",
}


@dataclass(frozen=True)
class Value:
    """One recipe value and where it came from (repository, file and key or line)."""

    value: Any
    source: str


@dataclass(frozen=True)
class Tuned:
    """Values tuned for one (method, backbone) pair, and how far they can be trusted."""

    trust: str
    values: Mapping[str, Value]


@dataclass(frozen=True)
class Recipe:
    """A named recipe: run-config values with their sources. ``tuned``: sets for one
    (method, backbone prefix), e.g. ``("cam", "vgg16")``, applied over the rest;
    ``trust`` is the recipe's own (see ``TRUST``)."""

    name: str
    dataset: str
    about: str
    values: Mapping[str, Value]
    trust: str = "published"
    tuned: Mapping[tuple[str, str], Tuned] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {k: v.value for k, v in self.values.items()}

    def derive(self, name: str, about: str, trust: str | None = None, **changes: Value) -> Recipe:
        """A copy under another name with some values replaced."""
        return replace(
            self,
            name=name,
            about=about,
            values={**self.values, **changes},
            trust=trust or self.trust,
        )

    def for_run(self, method: str, backbone: str | None) -> tuple[dict[str, Value], str]:
        """The values for ``method`` on ``backbone`` (a tuned set over the rest, when
        one matches) and their trust."""
        for (m, prefix), tuned in self.tuned.items():
            if m == method and backbone and backbone.startswith(prefix):
                return {**self.values, **tuned.values}, tuned.trust
        return dict(self.values), self.trust


WSOLBENCH = "wsolbench"


def _ours(why: str) -> str:
    return f"{WSOLBENCH}: {why}"


# wsolbench's recipe for its embedded synthetic data, the same for every method.
SYNTHETIC = Recipe(
    name="synthetic",
    dataset="synthetic",
    about="wsolbench's recipe for the embedded synthetic data, every method alike",
    trust="wsolbench",
    values={
        "backbone": Value("wsolbench_vit_micro_patch8_64", _ours("the shipped micro ViT trunk")),
        "cnn_backbone": Value("wsolbench_resnet_micro_64", _ours("the shipped micro ResNet")),
        "epochs": Value(3, _ours("README 'Pretrained regime': fine-tuning the shipped trunk")),
        "batch_size": Value(64, _ours("README 'Pretrained regime'")),
        "lr": Value(1e-3, _ours("README 'Pretrained regime'")),
        "lambda": Value(0.15, _ours("README 'Pretrained regime': the objects' mean area")),
        "loss_delay": Value(0.65, _ours("README 'Pretrained regime': spatial losses late")),
        "loss_ramp": Value(0.65, _ours("README 'Pretrained regime'")),
        "frame": Value("native", _ours("64x64 images scored whole, as drawn")),
        "pretrained": Value("hub", _ours("the trunk shipped with wsolbench")),
    },
)

_SAT = "wpy1999/SAT train.py"
# The shared recipe on real data: the SAT authors' CUB values (wsolbench's recipe for
# every method before recipes had names), with OpenCV's resize as wsolbench has it.
SHARED_CUB = Recipe(
    name="shared",
    dataset="cub",
    about="one recipe for every method: the SAT authors' CUB values, OpenCV resize",
    trust="wsolbench",
    values={
        "backbone": Value("deit_small_patch16_224", f"{_SAT}: --arch deit_sat_small_patch16_224"),
        "cnn_backbone": Value(
            "resnet50.tv_in1k", _ours("torchvision's ResNet-50, as the benchmark")
        ),
        "epochs": Value(30, f"{_SAT}: --epochs default 30"),
        "batch_size": Value(256, f"{_SAT}: --batch_size default 256"),
        "lr": Value(1e-4, f"{_SAT}: --lr default 1e-4"),
        "weight_decay": Value(0.05, f"{_SAT}: --weight_decay default 5e-2"),
        "drop_path": Value(0.1, f"{_SAT}: --drop_path default 0.1"),
        "schedule": Value("constant", f"{_SAT}: cosine_scheduler built, never applied"),
        "lambda": Value(0.25, f"{_SAT}: --area_thr default 0.25"),
        "loss_delay": Value(0.0, f"{_SAT}: every loss from the first step"),
        "loss_ramp": Value(0.0, f"{_SAT}: every loss from the first step"),
        "frame": Value("crop", "wpy1999/SAT DataLoader/CUB_200_2011.py: Resize 256, CenterCrop"),
        "pretrained": Value("hub", f"{_SAT}: pretrained=True (DeiT ImageNet weights)"),
    },
)
_SAT_IN = "wpy1999/SAT train_ImageNet.py"
SHARED_IMAGENET = SHARED_CUB.derive(
    "shared",
    "one recipe for every method: the SAT authors' ILSVRC values, OpenCV resize",
    epochs=Value(5, f"{_SAT_IN}: --epochs default 5"),
    batch_size=Value(512, f"{_SAT_IN}: --batch_size 512 (4 GPUs x 128)"),
    lr=Value(1.5e-5, f"{_SAT_IN}: --lr default 1.5e-5"),
    **{"lambda": Value(0.35, f"{_SAT_IN}: --area_thr default 0.35")},
)
SHARED = {
    "synthetic": SYNTHETIC,
    "cub": SHARED_CUB,
    "imagenet": replace(SHARED_IMAGENET, dataset="imagenet"),
    "openimages": replace(
        SHARED_CUB.derive(
            "shared",
            "one recipe for every method: CUB's schedule, ILSVRC's area target (no "
            "published OpenImages recipe)",
            **{"lambda": Value(0.35, _ours("ILSVRC's area target; none published"))},
        ),
        dataset="openimages",
    ),
    "wsol": replace(SHARED_CUB, dataset="wsol"),
}


def shared_recipe(dataset: str) -> Recipe:
    """The dataset's shared recipe (CUB's for a dataset that names none)."""
    return SHARED.get(dataset) or replace(SHARED_CUB, dataset=dataset)


def find_recipe(
    name: str | None, dataset: str, method: str, declared: Mapping[str, Recipe]
) -> Recipe:
    """The recipe a run takes. ``declared``: the method's, by dataset. None: the
    method's own for this dataset, else the shared one; ``shared``: the shared one;
    any other name: the method's recipe of that name, for this dataset."""
    shared = shared_recipe(dataset)
    if dataset == "synthetic":
        if name not in (None, "shared", shared.name):
            raise UserError(f"recipe: dataset synthetic has one recipe, 'synthetic', not '{name}'")
        return shared
    own = declared.get(dataset)
    if name is None:
        return own or shared
    if name == "shared":
        return shared
    if own is not None and own.name == name:
        return own
    known = ", ".join(sorted({"shared", *(r.name for r in [own] if r)}))
    raise UserError(f"recipe: '{name}' is not a recipe of {method} on {dataset} (known: {known})")


def describe(recipe: Recipe, values: Mapping[str, Value], trust: str) -> dict[str, Any]:
    """What the run record says of its recipe: name, trust and every value's source."""
    return {
        "name": recipe.name,
        "about": recipe.about,
        "trust": trust,
        "sources": {k: v.source for k, v in values.items()},
    }
