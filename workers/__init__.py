"""Long-lived worker processes."""
