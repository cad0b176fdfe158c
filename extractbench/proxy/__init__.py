"""Proxy mode: the defense stack in front of any remote OpenAI-compatible or Anthropic
endpoint (see :mod:`.app`), and the ``extractbench proxy`` command (:mod:`.command`)."""

from extractbench.proxy.app import ProxyState, create_proxy_app
from extractbench.proxy.command import ProxyError, add_proxy_command, check_upstream

__all__ = ["ProxyError", "ProxyState", "add_proxy_command", "check_upstream", "create_proxy_app"]
