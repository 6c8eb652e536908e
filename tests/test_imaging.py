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


def _photo(path, w=333, h=211):
    """A real JPEG with detail at every scale, so that antialiasing shows."""
    from PIL import Image

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[40:120, 60:250] = (250, 30, 20)
    Image.fromarray(img).save(path, quality=90)
    return path


def _split(path, resize, frame="resize"):
    from wsolbench.data.annotations import Item
    from wsolbench.data.imagefiles import FileSplit

    it = Item(path.name, 0)
    it.boxes = [[60.0, 40.0, 250.0, 120.0]]
    split = FileSplit([it], path.parent, 1, "test", train=False)
    split.frame, split.resize = frame, resize
    return split


def test_pil_pipeline_is_torchvisions_on_a_pil_image(tmp_path):
    """The authors' loaders: Image.open(path).convert('RGB'), transforms.Resize((224,
    224)) (resize frame) or Resize((256, 256)) + CenterCrop(224) (crop frame),
    ToTensor, Normalize. torchvision's own transforms on the same file are the
    expected values; OpenCV's bilinear (no antialiasing) differs."""
    from PIL import Image
    from torchvision import transforms

    path = _photo(tmp_path / "img.jpg")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    norm = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    resize = transforms.Resize
    views = {
        "resize": transforms.Compose([resize((224, 224)), *norm]),
        "crop": transforms.Compose([resize((256, 256)), transforms.CenterCrop(224), *norm]),
    }
    for frame, tv in views.items():
        want = tv(Image.open(path).convert("RGB"))
        got = _split(path, "pil", frame)[0]["image"]
        assert torch.allclose(got, want, atol=1e-5), frame
        cv2_view = _split(path, "cv2", frame)[0]["image"]
        assert (cv2_view - want).abs().max() > 0.1, frame


def test_pil_train_view_resizes_as_torchvision(tmp_path):
    """Train: Resize((256, 256)) then a 224 crop; with a crop at (0, 0) and no flip the
    view is the resized image's top-left corner."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    path = _photo(tmp_path / "img.jpg")
    big = TF.resize(Image.open(path).convert("RGB"), [256, 256])
    assert np.array_equal(resize_square(np.asarray(Image.open(path).convert("RGB")), how="pil"),
                          np.asarray(big))  # fmt: skip
