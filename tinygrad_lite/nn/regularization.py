"""Gradient clipping and penalties."""
__all__ = []
