"""rlcourse: the companion package of a lecture on deep reinforcement learning."""

__version__ = "0.1.0"
