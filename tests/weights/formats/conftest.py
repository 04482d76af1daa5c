"""The BigGAN format tests' shared checkpoints: built once a session (tests/_biggan_util.py)."""

import pytest

import _biggan_util


@pytest.fixture(scope="session")
def small_files(tmp_path_factory):
    return _biggan_util.small_files(tmp_path_factory)


@pytest.fixture(scope="session")
def small_models(tmp_path_factory):
    return _biggan_util.small_models(tmp_path_factory)


@pytest.fixture(scope="session")
def full_random_states():
    return _biggan_util.full_random_states()
