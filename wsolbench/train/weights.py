"""Where a run's starting weights come from: ``hub`` (the backbone's ImageNet weights from
timm's registry, through huggingface_hub's standard cache: ``HF_HOME``, honouring
``HF_HUB_OFFLINE=1``; for a backbone whose weights ship inside wsolbench, those),
``none`` (from scratch) or a checkpoint file. A run's identity holds the sha256 of the
file read, never its path."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from wsolbench.core.digests import file_digest
from wsolbench.core.errors import UserError
from wsolbench.core.paths import PACKAGE_DIR
from wsolbench.models.benchmark_nets import HUB_TAGS, BenchmarkNet
from wsolbench.train.checkpoints import load_pretrained, load_state, read_state_dict

# Weights made by `wsolbench pretrain` and shipped in the package, with their manifests.
SHIPPED = PACKAGE_DIR / "pretrained"

# timm's own preference: safetensors where the hub repo has it, else the pickle.
HUB_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Weights:
    """Resolved starting weights: where they come from, the file, its sha256."""

    source: str  # "hub", "shipped", "none" or "file"
    path: Path | None = None
    sha256: str = "none"
    repo: str | None = None  # hub repository id, e.g. timm/deit_small_patch16_224.fb_in1k
    revision: str | None = None  # hub snapshot (commit) the file was read from

    def describe(self) -> dict:
        """For the run record: what people need to find the same weights again."""
        return {
            "source": self.source,
            "file": str(self.path) if self.path else None,
            "sha256": self.sha256,
            "repo": self.repo,
            "revision": self.revision,
        }


def shipped(backbone: str) -> Weights | None:
    """The weights shipped for ``backbone``, checked against their manifest's sha256;
    None when wsolbench ships none for it."""
    path = SHIPPED / f"{backbone}.safetensors"
    if not path.is_file():
        return None
    manifest = json.loads(path.with_suffix(".json").read_text())
    digest = file_digest(path)
    if digest != manifest["sha256"]:
        raise UserError(
            f"{path}: sha256 {digest[:12]}... differs from its manifest's "
            f"{manifest['sha256'][:12]}...; reinstall wsolbench"
        )
    made_at = manifest.get("git", {}).get("commit")  # the commit that trained it
    return Weights("shipped", path, digest, "wsolbench/pretrained", made_at)


def hub_repo(backbone: str) -> str:
    """The hub repository timm loads ``backbone``'s default pretrained weights from."""
    # A bare benchmark architecture takes torchvision's weights, as the benchmark does.
    cfg = timm.models.get_pretrained_cfg(HUB_TAGS.get(backbone, backbone))
    if cfg is None or not cfg.hf_hub_id:
        raise UserError(
            f"pretrained: timm has no hub weights for backbone '{backbone}'; pass "
            "--pretrained none (from scratch) or --pretrained FILE"
        )
    return cfg.hf_hub_id


def cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def not_cached(backbone: str, repo: str) -> UserError:
    return UserError(
        f"pretrained: weights of {backbone} ({repo}) are not in the Hugging Face cache "
        f"{cache_dir()} and cannot be downloaded here; run `wsolbench weights fetch "
        f"{backbone}` where there is internet and share that cache, point HF_HOME at a "
        "cache that has them, or pass --pretrained FILE (--pretrained none: from scratch)"
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers at all, asked once with a short timeout, so an
    offline machine fails in one line instead of huggingface_hub's retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def hub_file(backbone: str, cached_only: bool = False) -> tuple[str, Path]:
    """(repo, cached file) of the backbone's hub weights, downloading them into the
    cache if they are not there and the hub can be reached (never with
    ``cached_only``: sweep tasks on compute nodes)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError

    repo = hub_repo(backbone)
    # The cache first, with no request at all: a cached file is used as it is (its
    # sha256 is the run's identity), and nodes without internet never wait on one.
    for name in HUB_FILES:
        cached = try_to_load_from_cache(repo, name)
        if isinstance(cached, str):
            return repo, Path(cached)
    if cached_only or not hub_reachable():
        raise not_cached(backbone, repo)
    for name in HUB_FILES:
        try:
            return repo, Path(hf_hub_download(repo, name))
        except EntryNotFoundError:
            continue  # the repository has no file of that name: try the next
        except Exception:  # offline, no network: one answer for all
            raise not_cached(backbone, repo) from None
    raise not_cached(backbone, repo)


def resolve(pretrained: str, backbone: str, cached_only: bool = False) -> Weights:
    """``hub``, ``none`` or a file -> resolved weights (the file found and hashed)."""
    if pretrained == "none":
        return Weights("none")
    if pretrained == "hub":
        own = shipped(backbone)
        if own is not None:
            return own
        repo, path = hub_file(backbone, cached_only)
        return Weights("hub", path, file_digest(path), repo, path.parent.name)
    path = Path(pretrained)
    if not path.is_file():
        raise UserError(f"pretrained: {path}: weights file not found")
    return Weights("file", path.resolve(), file_digest(path))


def load_weights(
    model: nn.Module, weights: Weights, backbone: str, keep_classifier: bool = False
) -> dict | None:
    """Load resolved weights into a freshly built model; returns the record's entry.
    ``keep_classifier``: the hub weights' ImageNet classifier goes into ``model.fc``
    too (the WSOL benchmark on ILSVRC)."""
    if keep_classifier and weights.source != "hub":
        raise UserError(
            f"keep_classifier: needs the hub's ImageNet weights, not pretrained {weights.source}"
        )
    if weights.source == "none":
        return {**weights.describe(), "loaded": 0}
    if weights.source == "hub" and isinstance(model, BenchmarkNet):
        report = _load_benchmark_net(model, weights.path, keep_classifier)
    elif weights.source == "hub":
        report = _load_through_timm(model, weights.path, backbone, keep_classifier)
    else:
        report = load_pretrained(model, weights.path)
    return {**weights.describe(), **report}


def _load_through_timm(model: nn.Module, path: Path, backbone: str, keep_classifier: bool) -> dict:
    """timm builds the backbone and loads the cached file with its own loader (key
    filters, position embeddings resampled to our grid); its tensors are then copied
    into the method's network, whose module names are timm's."""
    size = getattr(model, "image_size", None)
    extra = {"img_size": size} if size else {}
    net = timm.create_model(
        backbone,
        pretrained=True,
        pretrained_cfg_overlay={"file": str(path)},
        **({} if keep_classifier else {"num_classes": 0}),
        **extra,
    )
    report = load_state(model, net.state_dict(), str(path))
    if keep_classifier:
        report["classifier"] = _keep_classifier(model, net.get_classifier(), path)
    return report


def _load_benchmark_net(model: nn.Module, path: Path, keep_classifier: bool) -> dict:
    """The hub file's tensors straight into one of the WSOL benchmark's networks, renamed
    as its loaders rename them: the names of torchvision's VGG16, InceptionV3 and
    ResNet-50, which timm's files keep, so no timm network is built (VGG16's 4096-wide
    classifier alone is 120M parameters the benchmark drops)."""
    state = read_state_dict(path)
    report = load_state(model, state, str(path))
    if keep_classifier:
        weight, bias = state.get("fc.weight"), state.get("fc.bias")
        if weight is None or bias is None:
            raise UserError(f"keep_classifier: {path.name} holds no fc classifier")
        source = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            source.weight.copy_(weight)
            source.bias.copy_(bias)
        report["classifier"] = _keep_classifier(model, source, path)
    return report


def _keep_classifier(model: nn.Module, source: nn.Module, path: Path) -> str:
    """Copy the pretrained classifier into ``model.fc`` where the shapes agree."""
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear) or not isinstance(source, nn.Linear):
        raise UserError("keep_classifier: this network has no linear classifier to keep")
    if fc.weight.shape != source.weight.shape:
        raise UserError(
            f"keep_classifier: {path.name}'s classifier is {tuple(source.weight.shape)}, "
            f"this network's {tuple(fc.weight.shape)} (1000 ImageNet classes over the "
            "trunk's features are needed; pass --no-keep-classifier)"
        )
    with torch.no_grad():
        fc.weight.copy_(source.weight)
        fc.bias.copy_(source.bias)
    return f"kept: {tuple(source.weight.shape)} from the pretrained weights"


def cached_weights() -> list[tuple[str, str, float, str]]:
    """(model, file, MB, sha256) of every timm weights file in the cache."""
    from huggingface_hub import scan_cache_dir

    try:
        repos = scan_cache_dir().repos
    except Exception:  # no cache folder yet
        return []
    rows = []
    for repo in sorted(repos, key=lambda r: r.repo_id):
        if not repo.repo_id.startswith("timm/"):
            continue
        for rev in repo.revisions:
            for f in sorted(rev.files, key=lambda f: f.file_name):
                if f.file_name in HUB_FILES:
                    mb = round(f.size_on_disk / 2**20, 1)
                    rows.append((repo.repo_id[5:], f.file_name, mb, file_digest(f.file_path)))
    return rows
