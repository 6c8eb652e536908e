"""The evaluation protocol in words, as every record carries it: what a map is, and
each metric's rule, under protocol ``PROTOCOL_VERSION``."""

from __future__ import annotations

from wsolbench import PROTOCOL_VERSION

PROTOCOL = {
    "version": PROTOCOL_VERSION,
    "maps": "the method's grid map resized to the frame (bilinear; bicubic in the resize "
    "frame, as the benchmark's inference), then min-max scaled to [0, 1]; this map is "
    "what export-maps writes and every metric below reads",
    "box_rule": "GT-known / Top-1 / Top-5 Loc, SAT authors: map min-max scaled "
    "(+1e-5), foreground = map > t, largest 8-connected component, box to max+1, no "
    "foreground = whole frame; IoU +1; GT-known = best IoU over GT boxes >= 0.5; one "
    "threshold of 0.00..0.99 step 0.01, picked as box_threshold_on says",
    "maxboxacc": "MaxBoxAccV2, WSOL benchmark (multi_contour_eval, multi_iou_eval): uint8 "
    "map, cv2.threshold at int(t * max) (strictly above) for t in np.arange(0, 1, 0.01), "
    "EVERY RETR_TREE contour's boundingRect (x, y, x+w, y+h) with x1, y1 clipped to "
    "W-1, H-1; best IoU over contours and GT boxes; best threshold per IoU 0.3 / 0.5 / "
    "0.7 on the split scored; their mean",
    "pxap": "PxAP, WSOL benchmark: histograms of map values at object / background "
    "pixels, right edges np.arange(0, 1, 0.01) then 1, 2, 3; AP = sum of "
    "precision[1:] * diff(recall); pIoU = best IoU of the binarised map over those edges",
    "masks": "WSOL benchmark: each instance mask resized nearest to the frame, grey > 0 "
    "is object, instances united; ignore = ignore mask minus object, counted for neither",
}

# The Loc rule of a run whose recipe names TS-CAM's (``evaluation.tscam_rule``): its
# GT-known / Top-1 / Top-5 Loc replace the SAT rule's, which stay as sat_*.
TSCAM_RULE = (
    "GT-known / Top-1 / Top-5 Loc, TS-CAM authors (lib/cams_deit.py): grid map resized "
    "with cv2 bilinear, min-max scaled, uint8; pixels above int({thr} * max); the "
    "contour of largest cv2.contourArea, its boundingRect (x, y, x+w, y+h), none = "
    "(0, 0, 1, 1); GT boxes int(max(x/W*224, 0)) .. int(min(x1/W*224, 223)) (CUB: "
    "x, y, w, h truncated first); IoU +1; GT-known IoU >= 0.5, Top-1/5 IoU > 0.5; the "
    "fixed threshold {thr}; the SAT rule's values as sat_gt_known_loc, sat_top1_loc, "
    "sat_top5_loc"
)
