"""conv ops."""
__all__ = []
