"""Fixtures of the weight-cache tests: online mode with no back-off, a local HTTP server
serving :data:`_hub_files.PAYLOAD` at ``/w.bin``, and a socket guard for offline mode."""

from __future__ import annotations

import socket

import pytest

from _httpserver import FileServer
from _hub_files import PAYLOAD
from bigganctl.weights import hub


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("BIGGANCTL_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "BACKOFF", 0.0)
    monkeypatch.setattr(hub, "CONNECT_TIMEOUT", 5.0)


@pytest.fixture
def server(online):
    with FileServer() as srv:
        srv.state.files["/w.bin"] = PAYLOAD
        yield srv


@pytest.fixture
def no_sockets(monkeypatch):
    """Fail the test if anything opens a socket or resolves a name."""
    opened = []

    def refuse(*args, **kwargs):
        opened.append(args)
        raise AssertionError("a socket was opened in offline mode")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return opened
