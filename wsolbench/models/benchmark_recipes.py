"""The WSOL benchmark's training recipes for its CNN methods (Choe et al., CVPR 2020;
clovaai/wsolevaluation), as its ``main.py``, ``config.py``, ``data_loaders.py`` and
``wsol/`` run them. CAM, HaS, CutMix and ADL declare these (``models.cam.CAMBase``).

Learning rate and weight decay are the code's defaults (``untuned``) except where a
tuned set is known: the one its README prints (OpenImages, VGG16, CAM) and one quoted
by follow-up work (CUB, ResNet-50, CAM). The per-method tuned sets sit in a spreadsheet
linked from its README, which could not be read here."""

from __future__ import annotations

from dataclasses import replace

from wsolbench.core.recipe import SHARED_CUB, Recipe, Tuned, Value

_WE = "clovaai/wsolevaluation"
_MAIN = f"{_WE} main.py"
_CFG = f"{_WE} config.py"
_README = f"{_WE} README.md"
_UNUSED = "unused: no spatial loss (CAM family)"


def _steps(every: int, epochs: int) -> list[int]:
    """The epochs (from 1) at whose start ``adjust_learning_rate(epoch + 1)`` fires:
    ``epoch != 0 and epoch % lr_decay_frequency == 0``."""
    return [e for e in range(1, epochs + 1) if e % every == 0]


def _schedule(epochs: int, every: int, source: str) -> dict[str, Value]:
    return {
        "epochs": Value(epochs, f"{source}: {epochs} epochs"),
        "lr_steps": Value(
            _steps(every, epochs),
            f"{_MAIN} adjust_learning_rate: x0.1 at epoch % {every} == 0 (lr_decay_frequency "
            f"{every}, {source}), epochs from 1",
        ),
    }


_COMMON = {
    "backbone": SHARED_CUB.values["backbone"],  # only for CAM on a ViT (--backbone)
    "cnn_backbone": Value(
        "resnet50.tv_in1k", f"{_WE} wsol/resnet.py model_urls: torchvision's resnet50 weights"
    ),
    "pretrained": Value("hub", f"{_CFG}: --pretrained default True"),
    "batch_size": Value(32, f"{_README}: train+eval example, --batch_size 32"),
    "lr": Value(0.01, f"untuned: {_CFG} --lr default 0.01"),
    "weight_decay": Value(1e-4, f"untuned: {_CFG} --weight_decay default 1e-4"),
    "optimizer": Value("sgd", f"{_MAIN} _set_optimizer: torch.optim.SGD"),
    "momentum": Value(0.9, f"{_CFG}: --momentum default 0.9"),
    "nesterov": Value(True, f"{_MAIN} _set_optimizer: nesterov=True"),
    "decay_all": Value(True, f"{_MAIN} _set_optimizer: weight_decay on both groups (plain L2)"),
    "fast_layers": Value(
        "benchmark",
        f"{_MAIN} _FEATURE_PARAM_LAYER_PATTERNS: resnet ['layer4.', 'fc.'] at the classifier "
        "rate; vgg / inception: all but the pretrained feature layers",
    ),
    "lr_classifier_ratio": Value(10.0, f"{_CFG}: --lr_classifier_ratio default 10"),
    "schedule": Value("step", f"{_MAIN} main: adjust_learning_rate(epoch + 1) before each epoch"),
    "lr_factor": Value(0.1, f"{_MAIN} adjust_learning_rate: param_group['lr'] *= 0.1"),
    "warmup_epochs": Value(0.0, f"{_MAIN}: no warm-up"),
    "resize": Value(
        "pil", f"{_WE} data_loaders.py get_data_loader: transforms.Resize on PIL images"
    ),
    "frame": Value("resize", f"{_WE} data_loaders.py: val/test transforms.Resize((224, 224))"),
    "classifier_init": Value(
        "normal", f"{_WE} wsol/util.py initialize_weights: nn.Linear N(0, 0.01), bias 0"
    ),
    "keep_classifier": Value(False, f"{_WE} wsol/resnet.py load_pretrained_model: fc removed"),
    "drop_path": Value(0.0, "unused: no stochastic depth in the benchmark's CNNs"),
    "lambda": Value(0.25, _UNUSED),
    "loss_delay": Value(0.0, _UNUSED),
    "loss_ramp": Value(0.0, _UNUSED),
}

_ABOUT = "the WSOL benchmark's recipe for its CNN methods"

BENCHMARK_CUB = Recipe(
    name="benchmark-cub",
    dataset="cub",
    about=f"{_ABOUT} on CUB",
    trust="untuned",
    values={**_COMMON, **_schedule(50, 15, f"{_README} CUB schedule")},
    tuned={
        ("cam", "resnet50"): Tuned(
            "third-party",
            {
                "lr": Value(
                    2.3222617e-4,
                    "third-party: CUB ResNet-50 CAM, quoted by follow-up work from the "
                    "benchmark's spreadsheet (tuned with large_feature_map TRUE, which "
                    "wsolbench does not build yet)",
                ),
                "weight_decay": Value(1e-4, "third-party: CUB ResNet-50 CAM, as lr"),
            },
        )
    },
)
BENCHMARK_IMAGENET = replace(
    BENCHMARK_CUB,
    name="benchmark-imagenet",
    dataset="imagenet",
    about=f"{_ABOUT} on ILSVRC (the pretrained 1000-class classifier kept)",
    values={
        **_COMMON,
        **_schedule(10, 3, f"{_README} ILSVRC schedule"),
        "keep_classifier": Value(
            True,
            f"{_WE} wsol/resnet.py load_pretrained_model: fc kept when dataset_name is "
            "ILSVRC (cam / adl architectures)",
        ),
    },
    tuned={},
)
BENCHMARK_OPENIMAGES = replace(
    BENCHMARK_CUB,
    name="benchmark-openimages",
    dataset="openimages",
    about=f"{_ABOUT} on OpenImages30k",
    values={**_COMMON, **_schedule(10, 3, f"{_README} example, --lr_decay_frequency 3")},
    tuned={
        ("cam", "vgg16"): Tuned(
            "published",
            {
                "lr": Value(0.00227913316, f"published: {_README} example, --lr 0.00227913316"),
                "weight_decay": Value(5e-4, f"published: {_README} example, --weight_decay 5e-4"),
            },
        )
    },
)

BENCHMARK = {r.dataset: r for r in (BENCHMARK_CUB, BENCHMARK_IMAGENET, BENCHMARK_OPENIMAGES)}
