"""The authors' image pipeline: boxes and masks follow the image into the frame."""

import numpy as np
import torch

from wsolbench.data.imaging import (
    boxes_to_frame,
    centre_frame,
    crop,
    mask_to_frame,
    resize_square,
    ten_crops,
    to_tensor,
    train_view,
)


def test_box_scaled_shifted_truncated_and_clipped_by_hand():
    # 72x32 image: x scale 256/72, y scale 8, crop offset 16.
    f = centre_frame(72, 32)
    got = boxes_to_frame(np.array([[8.0, 6.0, 28.0, 22.0]]), f)
    # x0 = floor(8 * 3.556 - 16) = 12, y0 = 6 * 8 - 16 = 32,
    # x1 = floor(28 * 3.556 - 16) = floor(83.56) = 83, y1 = 22 * 8 - 16 = 160.
    assert got.tolist() == [[12, 32, 83, 160]]
    # A whole-image box on 100x100 leaves the crop on every side: clipped to 0..223.
    whole = boxes_to_frame(np.array([[0.0, 0.0, 99.0, 99.0]]), centre_frame(100, 100))
    assert whole.tolist() == [[0, 0, 223, 223]]


def test_mask_resized_nearest_then_centre_cropped_by_hand():
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 3] = 1  # becomes the block x 192..255, y 0..63 at 256; crop shifts by 16
    got = mask_to_frame(mask, centre_frame(4, 4))
    assert got.shape == (224, 224)
    assert got.sum() == 48 * 48
    assert got[0, 176] == 1 and got[0, 175] == 0
    assert got[47, 223] == 1 and got[48, 223] == 0


def test_ten_crops_are_corners_centre_and_mirrors():
    img = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    big = resize_square(img)
    crops = ten_crops(big)
    assert crops.shape == (10, 3, 224, 224)
    assert torch.equal(crops[0], to_tensor(crop(big, 0, 0)))
    assert torch.equal(crops[3], to_tensor(crop(big, 32, 32)))
    assert torch.equal(crops[4], to_tensor(crop(big, 16, 16)))  # the evaluation view
    assert torch.equal(crops[5], crops[0].flip(-1))


def test_train_view_is_a_random_crop_of_the_resized_image():
    img = np.random.default_rng(1).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    views = [train_view(img, torch.Generator().manual_seed(s)) for s in range(6)]
    assert all(v.shape == (3, 224, 224) for v in views)
    assert torch.equal(views[0], train_view(img, torch.Generator().manual_seed(0)))
    assert len({v.sum().item() for v in views}) > 1
    big = resize_square(img)
    crops = [to_tensor(crop(big, x, y)) for x in range(33) for y in range(33)]
    crops += [c.flip(-1) for c in crops]
    assert any(torch.equal(views[0], c) for c in crops)
