"""Real services and clients for integration tests: dockerd, docker-registry, skopeo, umoci, bwrap.

Each service is started by the test run, owns a private directory (under ``$PYBUILD_TEST_STATE_DIR``
when set, so ``.ci/run`` can clean up after a killed run) and is stopped by its context manager.
"""
