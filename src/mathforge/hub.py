"""Fail fast without a network: one DNS lookup decides whether hub libraries may try the network at all."""

from __future__ import annotations

import functools


@functools.cache
def hub_reachable() -> bool:
    """Whether the hub's host resolves: a one-off lookup, far faster than letting every request retry."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname, 443)
    except OSError:
        return False
    return True


def offline_unless_hub_reachable() -> None:
    """Switch datasets/transformers to offline mode when the hub cannot be reached.

    They then use their local caches if those hold what is asked for, and otherwise fail at once, instead of
    after minutes of retries.
    """
    if hub_reachable():
        return
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    try:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
    except ImportError:
        pass
