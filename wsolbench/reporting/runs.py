"""Tables of runs from the results store, as Markdown, CSV or LaTeX."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from wsolbench.core.record import RunRecord
from wsolbench.reporting.tables import t_interval

SETTINGS = ["method", "dataset", "kshot", "freeze", "lambda", "batch_size", "epochs", "seed"]
METRICS = {
    "top1_cls": "Top-1 Cls",
    "top5_cls": "Top-5 Cls",
    "top1_loc": "Top-1 Loc",
    "top5_loc": "Top-5 Loc",
    "gt_known_loc": "GT-known Loc",
    "maxboxaccv2": "MaxBoxAccV2",
    "pxap": "PxAP",
    "piou": "pIoU",
    "flipped_maps": "flipped %",  # test maps brighter outside the object than inside
}


def runs_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run: its id, settings, frozen %, box threshold and metrics."""
    rows = []
    for r in records:
        row = {"run_id": r.run_id, **{k: r.config.get(k) for k in SETTINGS}}
        row["protocol"] = (r.protocol or {}).get("version")
        row["frame"] = (r.protocol or {}).get("frame")
        row["weights"] = weights_text(r.pretrained)
        row["warm-up"] = warm_up_text(r.config)
        row["frozen_%"] = r.frozen_percent
        row["thr"] = threshold_text(r.threshold)
        row.update({label: r.metrics.get(key) for key, label in METRICS.items()})
        rows.append(row)
    columns = [
        "run_id",
        *SETTINGS,
        "protocol",
        "frame",
        "weights",
        "warm-up",
        "frozen_%",
        "thr",
        *METRICS.values(),
    ]
    return pd.DataFrame(rows, columns=columns)


def render(df: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return df.to_csv(index=False, float_format="%.2f")
    table = "github" if fmt == "md" else "latex_booktabs"
    return tabulate(
        df, headers="keys", tablefmt=table, showindex=False, floatfmt=".2f", missingval="—"
    )


def seed_means(frame: pd.DataFrame, keys: list[str], ci: bool = False) -> pd.DataFrame:
    """One row per ``keys`` group (every setting but the seed): each metric as
    "mean ± sd" over the group's seeds (sample sd), or with ``ci`` "mean [95%
    t-interval]"; a single seed's value alone; and the number of seeds."""

    metrics = [label for label in METRICS.values() if label in frame]
    rows = []
    for group, runs in frame.groupby(keys, sort=False, dropna=False):
        values = group if isinstance(group, tuple) else (group,)
        # groupby hands a missing setting back as NaN: shown as missing, not "nan".
        row = {k: None if pd.isna(v) else v for k, v in zip(keys, values, strict=True)}
        for label in metrics:
            v = runs[label].dropna().astype(float)
            if ci and len(v) > 1:
                lo, hi = t_interval(list(v))
                spread = f" [{lo:.2f}, {hi:.2f}]"
            else:
                spread = f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else ""  # "seeds" says 1
            row[label] = f"{v.mean():.2f}{spread}" if len(v) else None
        row["seeds"] = len(runs)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*keys, *metrics, "seeds"])


def weights_text(pretrained: dict | None) -> str | None:
    """Where the starting weights came from and the start of their sha256."""
    if not pretrained:
        return None
    source, sha = pretrained.get("source", "file"), pretrained.get("sha256")
    return f"{source}:{sha[:8]}" if sha and source != "none" else source


def warm_up_text(config: dict) -> str | None:
    """Spatial-loss delay / ramp (shares of the run); None for methods without them."""
    delay, ramp = config.get("loss_delay"), config.get("loss_ramp")
    return None if delay is None else f"{delay:g}/{ramp:g}"


def threshold_text(threshold: dict | None) -> str | None:
    return f"{threshold['box']:.2f} ({threshold['picked_on']})" if threshold else None


def metrics_table(record: RunRecord) -> str:
    """The per-run summary printed after a run; lines a record lacks are left out."""
    m, t = record.metrics, record.timing
    rows = [(label, f"{m[key]:.2f}") for key, label in METRICS.items() if key in m]
    if "maxboxaccv2" in m:
        at = " / ".join(f"{m[f'maxboxacc_iou{d}']:.2f}" for d in (30, 50, 70))
        after = [label for label, _ in rows].index(METRICS["maxboxaccv2"]) + 1
        rows.insert(after, ("MaxBoxAcc at IoU 30 / 50 / 70", at))
    if "iou30" in m:
        rows.append(("IoU>=0.3 / >=0.7 at threshold", f"{m['iou30']:.2f} / {m['iou70']:.2f}"))
    if "baseline_whole_image" in m:
        rows.append(("Baseline: whole image, GT-known", f"{m['baseline_whole_image']:.2f}"))
        rows.append(("Baseline: centred mean box, GT-known", f"{m['baseline_centred_box']:.2f}"))
    if record.threshold:
        rows.append(("Box threshold (picked on)", threshold_text(record.threshold)))
    if record.frozen_percent is not None:
        rows.append(("Frozen parameters %", f"{record.frozen_percent:.1f}"))
    if t:
        times = f"{t['data_s']:.0f} / {t['train_s']:.0f} / {t['eval_s']:.0f}"
        rows.append(("Time s: data / train / eval", times))
    rows.append(("Wall time s", f"{record.wall_time_s:.0f}"))
    return tabulate(
        rows, headers=[record.run_id, "value"], tablefmt="github", disable_numparse=True
    )
