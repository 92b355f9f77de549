"""``make demo``: the main job on embedded defaults.

Stylises a photo bundled with scikit-image with ``examples/monet.jpg`` through the
offline ``vgg16_hed`` loss network and writes ``out/demo.png`` (photo | result).
"""

from __future__ import annotations

import sys

from tuner.cli import main as tuner_main


def main() -> int:
    from nst.images import bundled_photos

    photo = bundled_photos()["chelsea"]
    return tuner_main(["render", "--style", "examples/monet.jpg", "--content", str(photo), "--size", "256",
                       "--steps", "150", "--side-by-side", "-o", "out/demo.png"])


if __name__ == "__main__":
    sys.exit(main())
