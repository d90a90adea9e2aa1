"""``workbench demo``: real conversations and scripted sessions, captured through the real wrapper."""

from .replay import DemoTraffic, FakeProvider, replay_oasst, replay_simulated

__all__ = ["DemoTraffic", "FakeProvider", "replay_oasst", "replay_simulated"]
