"""sluice's preprocessing presets reproduce TensorFlow's reference preprocessing, pixel for pixel.

Each reference below is written here with TensorFlow's own ops, after the public definitions the
presets name (DESIGN.md "Preprocessing presets"):

* resnet-eval / resnet-train: tensorflow/tpu models/official/resnet/resnet_preprocessing.py. Eval:
  a centred square of side int(224 / (224 + CROP_PADDING=32) * min(h, w)) at offsets
  ((h - side) + 1) // 2, ((w - side) + 1) // 2, decoded with `tf.image.decode_and_crop_jpeg` (default
  dct_method), `tf.compat.v1.image.resize_bicubic` to 224x224 (TF1's kernel: align_corners and
  half_pixel_centers False, no antialiasing), then (x - MEAN_RGB) / STDDEV_RGB in 0..255 units
  (0.485, 0.456, 0.406) * 255 and (0.229, 0.224, 0.225) * 255, as tensorflow/tpu's input pipeline
  normalizes. Train: the same decode_and_crop_jpeg + resize_bicubic on the window sluice sampled
  (its per-sample origin: crop x/y/width/height), then `tf.image.flip_left_right` where the origin
  says flip.
* vgg-eval / vgg-train: slim research/slim/preprocessing/vgg_preprocessing.py. `tf.io.decode_jpeg`,
  aspect-preserving `resize_bilinear` (align_corners False) of the short side to 256 (train: the
  origin's resize side) with sizes rint(side * scale), central crop at ((h - 224) // 2, (w - 224) // 2)
  (train: the origin's window), flip, minus (123.68, 116.78, 103.94).
* cifar-eval / cifar-train: tensorflow/models official/r1/resnet/cifar10_main.py preprocess_image.
  Train: `tf.image.resize_with_crop_or_pad` to 40x40, the 32x32 window at the origin's offsets, flip;
  both: `tf.image.per_image_standardization`.

sluice's side is sluice.Loader (NHWC, float32; uint8 for the CIFAR pixels) over the `shards`
fixture's ImageNet-like JPEGs (about 500x375) and CIFAR-10 PNGs, in file order, one epoch; each
sample's record is found by its origin (file, record index) and read with tf.data.TFRecordDataset.

What is asserted (errors in 0..255 pixel units: sluice's normalized output de-normalized):
* cifar-eval and cifar-train equal per_image_standardization to float rounding (max 1e-5, normalized
  units), and the uint8 cifar-train pixels equal TF's pad + crop + flip exactly.
* vgg-eval and vgg-train equal slim's recipe to float rounding (max 1e-3).
* resnet-eval and resnet-train equal "TF decode_jpeg of the whole image, the window sliced out,
  resize_bicubic, normalize" to float rounding (max 1e-3). Against the recipe's own
  decode_and_crop_jpeg they agree to 1e-3 everywhere except the output columns whose bicubic taps
  read the window's first or last column; there TF's cropped decode itself differs from its whole
  decode (libjpeg-turbo's fancy chroma upsampling treats the cropped region's edge as the image's
  edge), so all of the difference is that; mean error over all pixels <= 0.01.
* With image_size 112 the resnet windows are at least twice the output, so sluice decodes them
  DCT-scaled (1/2, 1/4, 1/8, documented in preset.h); that output equals TF's
  `decode_jpeg(ratio=d)` of the same scaled window + resize_bicubic to 1e-3, which attributes the
  whole (large, aliasing-vs-prefiltering) difference from the full-resolution recipe to that choice.
* The bounds are tight enough to catch real bugs: the test also builds mutated references (window
  shifted by one pixel, flip ignored, bilinear for bicubic, half-pixel centres, antialiasing, the
  accurate IDCT, normalization constants in BGR order or without the std) and asserts each misses the bound by far.

Why: a model trained on sluice's batches must see the inputs the published TensorFlow recipe would
have given it; a pixel-offset crop, a swapped flip or a different kernel would silently cost
accuracy. README.md "Measured against TensorFlow" lists the measured numbers.
"""

import numpy as np
import pytest
import tensorflow as tf

from conftest import sluice_batches, shard_files

MEAN_RGB = np.array([0.485, 0.456, 0.406], np.float32) * np.float32(255)
STDDEV_RGB = np.array([0.229, 0.224, 0.225], np.float32) * np.float32(255)
VGG_MEANS = np.array([123.68, 116.78, 103.94], np.float32)
CROP_PADDING = 32
EXACT = 1e-3   # 0..255 units: float rounding of resize + normalize + de-normalize
CIFAR_EXACT = 1e-5  # normalized units
BATCH, BATCHES = 16, 2  # 32 images per preset


def _split(shards, kind, split):
    return [f for f in shard_files(shards[kind]) if f.rsplit("/", 1)[-1].startswith(split + "-")]


def _records(files):
    """{(file index, record index): serialized tf.Example} as TensorFlow reads the shards."""
    out = {}
    for i, f in enumerate(files):
        for j, r in enumerate(tf.data.TFRecordDataset(str(f))):
            out[(i, j)] = r.numpy()
    return out


_FEATURES = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
             "image/class/label": tf.io.FixedLenFeature([], tf.int64)}


class Samples:
    """sluice's batch for a preset plus, per sample, TF's parse of the record it came from."""

    def __init__(self, work, name, files, preset, **kw):
        kw.setdefault("dtype", "float32")
        self.d = sluice_batches(f"{work}/preprocessing_{name}.npz", files, preset, BATCH, limit=BATCHES,
                                layout="nhwc", shuffle=False, epochs=1, **kw)
        assert [str(f) for f in self.d["files"]] == [str(f) for f in files]
        recs = _records(files)
        self.examples = []
        for k in range(len(self)):
            ex = tf.io.parse_single_example(recs[(int(self.d["origin_file"][k]),
                                                  int(self.d["origin_record"][k]))], _FEATURES)
            self.examples.append(ex)
            assert int(ex["image/class/label"]) == int(self.d["labels"][k])

    def __len__(self):
        return len(self.d["images"])

    def bytes(self, k):
        return self.examples[k]["image/encoded"]

    def window(self, k):
        return tuple(int(self.d["origin_crop_" + n][k]) for n in ("x", "y", "width", "height"))

    def flip(self, k):
        return bool(self.d["origin_flip"][k])


@pytest.fixture(scope="module")
def samples(shards, work):
    cache = {}

    def get(name):
        if name not in cache:
            inet_val, inet_train = _split(shards, "imagenet", "validation"), _split(shards, "imagenet", "train")
            cifar = _split(shards, "cifar_png", "test")
            spec = {"resnet-eval": (inet_val, {}), "resnet-train": (inet_train, {}),
                    "vgg-eval": (inet_val, {}), "vgg-train": (inet_train, {}),
                    "cifar-eval": (cifar, {}), "cifar-train": (cifar, {}),
                    "cifar-train-u8": (cifar, {"dtype": "uint8"}),
                    "resnet-eval-112": (inet_val, {"image_size": 112}),
                    "resnet-train-112": (inet_train, {"image_size": 112})}[name]
            preset = name.replace("-u8", "").replace("-112", "")
            cache[name] = Samples(work, name, spec[0], preset, **spec[1])
        return cache[name]

    return get


# ---- the references, TF ops only ----

def resnet_center_window(image_bytes):
    """resnet_preprocessing's _decode_and_center_crop window: (x, y, side, side)."""
    shape = tf.image.extract_jpeg_shape(image_bytes)
    h, w = shape[0], shape[1]
    side = tf.cast((224 / (224 + CROP_PADDING)) * tf.cast(tf.minimum(h, w), tf.float32), tf.int32)
    y, x = ((h - side) + 1) // 2, ((w - side) + 1) // 2
    return int(x), int(y), int(side), int(side)


def resnet_image(image_bytes, window, flip, size=224, dct_method="", decode="crop", resize="bicubic"):
    """Recipe pixels (0..255, float32) of one window: decode_and_crop_jpeg + TF1 resize_bicubic
    (+ flip). Variants for attribution and mutation checks: decode="full" slices the window out of
    the whole-image decode_jpeg; resize="bilinear" | "half_pixel" | "antialias" change the kernel."""
    x, y, w, h = window
    if decode == "crop":
        img = tf.image.decode_and_crop_jpeg(image_bytes, [y, x, h, w], channels=3, dct_method=dct_method)
    else:
        img = tf.io.decode_jpeg(image_bytes, channels=3, dct_method=dct_method)[y:y + h, x:x + w]
    if resize == "bicubic":
        out = tf.compat.v1.image.resize_bicubic(img[None], [size, size])[0]
    elif resize == "bilinear":
        out = tf.compat.v1.image.resize_bilinear(img[None], [size, size])[0]
    elif resize == "half_pixel":
        out = tf.image.resize(img, [size, size], method="bicubic", antialias=False)
    else:
        out = tf.image.resize(img, [size, size], method="bicubic", antialias=True)
    if flip:
        out = tf.image.flip_left_right(out)
    return out.numpy()


def resnet_normalize(image, mean=MEAN_RGB, std=STDDEV_RGB):
    return (image - mean) / std


def vgg_image(image_bytes, side, window, flip):
    """slim vgg_preprocessing: aspect-preserving bilinear resize of the short side to `side`, the
    224x224 window (x, y) of it, flip, mean subtraction. Also returns the resized size."""
    img = tf.io.decode_jpeg(image_bytes, channels=3)
    h, w = tf.cast(tf.shape(img)[0], tf.float32), tf.cast(tf.shape(img)[1], tf.float32)
    scale = tf.cond(h > w, lambda: side / w, lambda: side / h)
    nh, nw = tf.cast(tf.math.rint(h * scale), tf.int32), tf.cast(tf.math.rint(w * scale), tf.int32)
    resized = tf.compat.v1.image.resize_bilinear(img[None], [nh, nw], align_corners=False)[0]
    x, y = window
    crop = tf.slice(resized, [y, x, 0], [224, 224, 3])
    if flip:
        crop = tf.image.flip_left_right(crop)
    return (crop - VGG_MEANS).numpy(), (int(nh), int(nw))


def cifar_image(png, window=None, flip=False):
    """cifar10_main.preprocess_image: (train) pad to 40x40, the 32x32 window at (x, y), flip; the
    uint8-range pixels before standardization."""
    img = tf.cast(tf.io.decode_png(png, channels=3), tf.float32)
    if window is not None:
        img = tf.image.resize_with_crop_or_pad(img, 40, 40)
        x, y = window
        img = tf.image.crop_to_bounding_box(img, y, x, 32, 32)
        if flip:
            img = tf.image.flip_left_right(img)
    return img


def _err255(sluice_normalized, reference_normalized, std):
    """Absolute error in 0..255 units of two normalized images."""
    return np.abs(sluice_normalized - reference_normalized) * std


def _edge_columns(width, size=224):
    """Output columns of a legacy (no half-pixel) bicubic resize from `width` to `size` whose four
    taps floor(j * width / size) - 1 .. + 2 read source column 0 or width - 1."""
    scale = np.float32(width) / np.float32(size)
    i = np.floor(np.arange(size, dtype=np.float32) * scale).astype(int)
    return np.nonzero((i - 1 <= 0) | (i + 2 >= width - 1))[0]


# ---- CIFAR ----

def test_cifar_eval_is_per_image_standardization(samples):
    s = samples("cifar-eval")
    worst = 0.0
    for k in range(len(s)):
        assert s.window(k) == (4, 4, 32, 32) and not s.flip(k)
        ref = tf.image.per_image_standardization(cifar_image(s.bytes(k))).numpy()
        worst = max(worst, float(np.abs(s.d["images"][k] - ref).max()))
    assert worst <= CIFAR_EXACT, worst


def test_cifar_train_is_pad_crop_flip_then_standardization(samples):
    s, u8 = samples("cifar-train"), samples("cifar-train-u8")
    flips = set()
    worst = 0.0
    for k in range(len(s)):
        x, y, w, h = s.window(k)
        assert (w, h) == (32, 32) and 0 <= x <= 8 and 0 <= y <= 8
        assert u8.window(k) == s.window(k) and u8.flip(k) == s.flip(k)  # same seed, same draws
        flips.add(s.flip(k))
        pixels = cifar_image(s.bytes(k), (x, y), s.flip(k))
        np.testing.assert_array_equal(u8.d["images"][k], pixels.numpy().astype(np.uint8))
        ref = tf.image.per_image_standardization(pixels).numpy()
        worst = max(worst, float(np.abs(s.d["images"][k] - ref).max()))
        # the bound sees a one-pixel shift and an ignored flip
        shifted = tf.image.per_image_standardization(cifar_image(s.bytes(k), (x + 1 if x < 8 else x - 1, y),
                                                                   s.flip(k)))
        unflipped = tf.image.per_image_standardization(cifar_image(s.bytes(k), (x, y), not s.flip(k)))
        assert np.abs(s.d["images"][k] - shifted.numpy()).max() > 100 * CIFAR_EXACT
        assert np.abs(s.d["images"][k] - unflipped.numpy()).max() > 100 * CIFAR_EXACT
    assert worst <= CIFAR_EXACT, worst
    assert flips == {False, True}


# ---- ResNet (tensorflow/tpu) ----

def _check_resnet(s, k, size=224):
    """sluice's sample k vs the recipe on its window; returns the errors (0..255 units) against
    decode_and_crop_jpeg and against the whole-image decode."""
    window, flip = s.window(k), s.flip(k)
    out = s.d["images"][k]
    crop_err = _err255(out, resnet_normalize(resnet_image(s.bytes(k), window, flip, size)), STDDEV_RGB)
    full_err = _err255(out, resnet_normalize(resnet_image(s.bytes(k), window, flip, size, decode="full")),
                       STDDEV_RGB)
    assert full_err.max() <= EXACT, (k, window, full_err.max())
    edges = _edge_columns(window[2], size)
    if flip:
        edges = size - 1 - edges
    interior = np.delete(crop_err, edges, axis=1)
    assert interior.max() <= EXACT, (k, window, interior.max())
    return crop_err


def test_resnet_eval_matches_tpu_recipe(samples):
    s = samples("resnet-eval")
    errs = []
    for k in range(len(s)):
        assert s.window(k) == resnet_center_window(s.bytes(k)) and not s.flip(k)
        errs.append(_check_resnet(s, k))
    errs = np.stack(errs)
    assert errs.mean() <= 0.01, errs.mean()
    # Tightness: each of these mutations of the reference misses the bound by far (checked on the
    # first 8 images: the mean error must exceed 20x the bound's 0.01).
    mutations = {
        "window one pixel right": dict(shift=(1, 0)),
        "window one pixel down": dict(shift=(0, 1)),
        "flipped": dict(flip=True),
        "bilinear": dict(resize="bilinear"),
        "half-pixel centres (tf.image.resize)": dict(resize="half_pixel"),
        "antialias": dict(resize="antialias"),
        "INTEGER_ACCURATE IDCT": dict(dct_method="INTEGER_ACCURATE"),
        "constants in BGR order": dict(mean=MEAN_RGB[::-1], std=STDDEV_RGB[::-1]),
        "mean subtracted, no std": dict(std=np.ones(3, np.float32)),
    }
    for name, m in mutations.items():
        e = []
        for k in range(8):
            x, y, w, h = s.window(k)
            dx, dy = m.get("shift", (0, 0))
            ref = resnet_image(s.bytes(k), (x + dx, y + dy, w, h), m.get("flip", False),
                               dct_method=m.get("dct_method", ""), resize=m.get("resize", "bicubic"))
            ref = resnet_normalize(ref, m.get("mean", MEAN_RGB), m.get("std", STDDEV_RGB))
            e.append(_err255(s.d["images"][k], ref, STDDEV_RGB))
        assert np.mean(e) > 0.2, (name, np.mean(e))


def test_resnet_train_matches_tpu_recipe_on_its_window(samples):
    s = samples("resnet-train")
    errs, flips = [], set()
    for k in range(len(s)):
        x, y, w, h = s.window(k)
        ih, iw = (int(v) for v in tf.image.extract_jpeg_shape(s.bytes(k))[:2])
        assert 0 <= x and 0 <= y and x + w <= iw and y + h <= ih
        if (x, y, w, h) != resnet_center_window(s.bytes(k)):  # else: the recipe's fallback
            # sample_distorted_bounding_box's constraints: area in [0.08, 1], aspect in [3/4, 4/3]
            # (up to the rounding of width = round(height * ratio))
            assert 0.08 * ih * iw - w - h <= w * h <= ih * iw
            assert 0.75 - 1 / h <= w / h <= 4 / 3 + 1 / h
        flips.add(s.flip(k))
        errs.append(_check_resnet(s, k))
    assert np.mean(errs) <= 0.01, np.mean(errs)
    assert flips == {False, True}


def test_resnet_dct_scaled_windows_are_tf_decode_jpeg_ratio(samples):
    """At image_size 112 most windows are >= 224 wide and high, so sluice decodes them at 1/2 (or
    1/4, 1/8): libjpeg's DCT scaling, documented in preset.h. The output is then TF's
    decode_jpeg(ratio=d), the window [floor(x / d), ceil((x + w) / d)) of it, resize_bicubic."""
    scaled = 0
    for name in ("resnet-eval-112", "resnet-train-112"):
        s = samples(name)
        for k in range(len(s)):
            x, y, w, h = s.window(k)
            d = max(r for r in (1, 2, 4, 8) if r == 1 or (-(-w // r) >= 112 and -(-h // r) >= 112))
            scaled += d > 1
            img = tf.io.decode_jpeg(s.bytes(k), channels=3, ratio=d)
            img = img[y // d:-(-(y + h) // d), x // d:-(-(x + w) // d)]
            ref = tf.compat.v1.image.resize_bicubic(img[None], [112, 112])[0]
            if s.flip(k):
                ref = tf.image.flip_left_right(ref)
            err = _err255(s.d["images"][k], resnet_normalize(ref.numpy()), STDDEV_RGB)
            assert err.max() <= EXACT, (name, k, d, err.max())
    assert scaled >= 32, scaled


# ---- VGG (slim) ----

def test_vgg_eval_matches_slim_recipe(samples):
    s = samples("vgg-eval")
    worst = 0.0
    for k in range(len(s)):
        x, y, w, h = s.window(k)
        assert (w, h) == (224, 224) and int(s.d["origin_resize_side"][k]) == 256 and not s.flip(k)
        ref, (nh, nw) = vgg_image(s.bytes(k), 256, (x, y), False)
        assert (x, y) == ((nw - 224) // 2, (nh - 224) // 2)
        worst = max(worst, float(np.abs(s.d["images"][k] - ref).max()))
        if k < 8:  # tightness: a one-pixel shift of the crop misses the bound by far
            shifted, _ = vgg_image(s.bytes(k), 256, (x + 1, y), False)
            assert np.abs(s.d["images"][k] - shifted).mean() > 100 * EXACT
    assert worst <= EXACT, worst


def test_vgg_train_matches_slim_recipe_on_its_window(samples):
    s = samples("vgg-train")
    worst, flips, sides = 0.0, set(), set()
    for k in range(len(s)):
        x, y, w, h = s.window(k)
        side = int(s.d["origin_resize_side"][k])
        assert (w, h) == (224, 224) and 256 <= side <= 512
        ref, (nh, nw) = vgg_image(s.bytes(k), side, (x, y), s.flip(k))
        assert x + 224 <= nw and y + 224 <= nh
        worst = max(worst, float(np.abs(s.d["images"][k] - ref).max()))
        flips.add(s.flip(k))
        sides.add(side)
        if k < 8:  # tightness: the flip ignored, or the short side off by one
            other, _ = vgg_image(s.bytes(k), side, (x, y), not s.flip(k))
            assert np.abs(s.d["images"][k] - other).mean() > 100 * EXACT
            other, _ = vgg_image(s.bytes(k), side + 1, (x, y), s.flip(k))
            assert np.abs(s.d["images"][k] - other).mean() > 100 * EXACT
    assert worst <= EXACT, worst
    assert flips == {False, True} and len(sides) > 8
