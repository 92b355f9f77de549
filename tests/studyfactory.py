"""The fixture-study builders, which live in :mod:`tuner.testing` so benchmarks can use them too."""

from tuner.testing import FIXTURE_NETWORKS, fixture_scores, make_demo_study, make_run, make_study  # noqa: F401
