"""The curated table of Debian packages that carry photographs, and which of their files to take.

:mod:`trainer.sample_data` fetches these packages and builds the training photo set from
the files :data:`PICKS` names (see its docstring for the filters and the output folder).
The table is curated by eye: it names folders and files that are photographs, leaving
out drawings, renders and paintings that sit next to them in the same packages.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = ("people", "animals", "buildings", "landscapes", "objects")

@dataclass(frozen=True)
class Package:
    """A Debian package that carries photos, with a one-line licence summary for the log and the docs."""

    name: str
    short: str  # prefix of the output file names
    licence: str


@dataclass(frozen=True)
class Pick:
    """Files of one package that are photographs of one category.

    ``pattern`` is matched (``fnmatch``) against paths inside the package, such as
    ``usr/share/kphotoalbum/demo/*.jpg``. ``ARCHIVE!INNER`` reaches into a Qt resource file
    (``.rcc``): GCompris keeps its pictures in those. The first pick that matches a file
    decides its category, so exceptions go before the general rule. ``rotate`` turns photos
    that are stored sideways (KPhotoAlbum's demo records the angle in its index instead).
    """

    package: str
    pattern: str
    category: str
    rotate: int = 0  # degrees clockwise


PACKAGES = (
    Package("gcompris-qt-data", "gcompris",
            "GPL-3+ as the package default; many photos carry their own CC-BY, CC-BY-SA or public-domain entry"),
    Package("kphotoalbum", "kphotoalbum", "GPL-2+ (the demo album ships under the program's licence)"),
    Package("lomiri-wallpapers-16.04", "lomiri", "CC-BY-4.0, CC-BY-SA-4.0 or CC0-1.0 per photo (photographer named)"),
    Package("mate-backgrounds", "mate", "GPL-2+"),
    Package("palapeli-data", "palapeli", "GPL-2+"),
    Package("python-matplotlib-data", "matplotlib", "matplotlib licence (PSF-style); the photo is a US Navy public-domain portrait"),
    Package("python3-sklearn", "sklearn", "CC-BY-2.0 (Flickr photographers named in the copyright file)"),
)

_GC = "usr/share/gcompris-qt/rcc/"
_GC_ACT = "*/src/activities/"


def _gc(rcc: str, inner: str, category: str) -> Pick:
    return Pick("gcompris-qt-data", f"{_GC}{rcc}.rcc!{_GC_ACT}{inner}", category)


def _kpa(name: str, category: str, rotate: int = 0) -> Pick:
    return Pick("kphotoalbum", f"usr/share/kphotoalbum/demo/{name}.jpg", category, rotate)


_DETAILS_PHOTOS = ("Chenonceau", "EgeskovSlotSpejling", "EilanDonanCastle", "FanoeWindmill", "GizahPyramids", "NDP",
                   "Nagoya", "Neuschwanstein", "OperaSidney", "TajMahal", "TourEiffel", "TowerBridgeLondon")

PICKS: tuple[Pick, ...] = (
    # GCompris: photos of animals, monuments, musicians and a few objects (webp inside .rcc files).
    _gc("erase", "erase/resource/*.webp", "animals"),
    _gc("explore_farm_animals", "explore_farm_animals/resource/animals/*.webp", "animals"),
    _gc("explore_world_animals", "explore_world_animals/resource/animals/*.webp", "animals"),
    _gc("explore_monuments", "explore_monuments/resource/usa/canyondeChelly.webp", "landscapes"),
    _gc("explore_monuments", "explore_monuments/resource/*/*.webp", "buildings"),
    *(_gc("details", f"details/resource/image/{name}_background.webp", "buildings") for name in _DETAILS_PHOTOS),
    *(_gc("explore_world_music", f"explore_world_music/resource/music/{name}.webp", "objects")
      for name in ("africa", "america", "middleeast")),  # instruments on their own
    _gc("explore_world_music", "explore_world_music/resource/music/*.webp", "people"),
    _gc("categorization", "categorization/resource/images/others/*.webp", "objects"),
    _gc("categorization", "categorization/resource/images/tools/*.webp", "objects"),
    _gc("categorization", "categorization/resource/images/renewable/*.webp", "objects"),
    _gc("categorization", "categorization/resource/images/fishes/*.webp", "animals"),
    _gc("categorization", "categorization/resource/images/monuments/*.webp", "buildings"),
    _gc("clickgame", "clickgame/resource/sea*.webp", "landscapes"),
    # KPhotoAlbum's demo album: friends, pets and holidays.
    *(_kpa(n, "people") for n in ("anne_helene", "bar55", "bar55_2", "cold_water", "grand_canyon_2", "jesper",
                                  "jesper_2", "new_wave_2", "pool", "qt-logo")),
    _kpa("new_wave_1", "people", 90), _kpa("wayne", "people", 90), _kpa("grand_canyon_1", "people", 180),
    _kpa("pool_2", "objects", 270),
    *(_kpa(n, "animals") for n in ("blackie", "donna", "donna_2", "spiff", "spiff_2")),
    *(_kpa(n, "landscapes") for n in ("grand_canyon_3", "skagen", "skagen_2", "snow", "sunset")),
    # Ubuntu's 16.04 wallpaper contest photos (the others in that package are graphics).
    *(Pick("lomiri-wallpapers-16.04", f"usr/share/backgrounds/{n}_by_*.jpg", "landscapes")
      for n in ("aitzgorri", "picosdeeuropa", "sunset", "life", "seeding", "Bridge")),
    *(Pick("lomiri-wallpapers-16.04", f"usr/share/backgrounds/{n}_by_*.jpg", "objects")
      for n in ("Wine", "Picture_0B", "Picture_1A")),
    *(Pick("lomiri-wallpapers-16.04", f"usr/share/backgrounds/{n}_by_*.jpg", "animals")
      for n in ("Dragonfly", "friends", "free")),
    # MATE's nature backgrounds (its other folders are graphics).
    *(Pick("mate-backgrounds", f"usr/share/backgrounds/mate/nature/{n}.jpg", "landscapes")
      for n in ("Dune", "GreenMeadow", "Storm")),
    Pick("mate-backgrounds", "usr/share/backgrounds/mate/nature/LadyBird.jpg", "animals"),
    Pick("mate-backgrounds", "usr/share/backgrounds/mate/nature/*.jpg", "objects"),
    # KDE's jigsaw puzzles, matplotlib's and scikit-learn's sample photos.
    Pick("palapeli-data", "usr/share/palapeli/collection/castle-maintenon.jpg", "buildings"),
    Pick("palapeli-data", "usr/share/palapeli/collection/cincinnati-bridge.jpg", "buildings"),
    Pick("palapeli-data", "usr/share/palapeli/collection/citrus-fruits.jpg", "objects"),
    Pick("palapeli-data", "usr/share/palapeli/collection/european-honey-bee.jpg", "animals"),
    Pick("palapeli-data", "usr/share/palapeli/collection/panther-chameleon-female.jpg", "animals"),
    Pick("python-matplotlib-data", "usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg", "people"),
    Pick("python3-sklearn", "usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg", "buildings"),
    Pick("python3-sklearn", "usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg", "objects"),
)

#: Fewer photos than this after filtering means a package's layout changed: the run says so.
MIN_PHOTOS = 100
