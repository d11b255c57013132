"""Fake LLM upstreams for `reconciler verify`: real HTTP servers on 127.0.0.1 (see server.py)."""

from .server import ANTHROPIC, AZURE, FAMILIES, OPENAI, OPENROUTER, FakeUpstream, Seen

__all__ = ["ANTHROPIC", "AZURE", "FAMILIES", "OPENAI", "OPENROUTER", "FakeUpstream", "Seen"]
