"""Kalasag: find payments for live-streamed child sexual exploitation (OSEC) and explain every alert."""

__version__ = "0.1.0"
